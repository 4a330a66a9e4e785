"""Before/after: end-to-end throughput of several variants of one configuration, on one machine, in one run.

    python benchmarks/compare.py --device cpu \\
        --variant "before=@9dc8a66" \\
        --variant "switches off=perf.fused_adam=false perf.overlap_env=false" \\
        --variant "defaults="
    python benchmarks/compare.py --preset seed --device cuda --concurrent 4 \\
        --variant "defaults=" --variant "compile=perf.compile=reduce-overhead" --variant "bf16=perf.autocast=bf16"

A variant is ``NAME=[@GIT_REF] [OVERRIDE ...]``: Hydra overrides on top of the preset (``benchmarks/throughput.py``
PRESETS) and optionally another commit of this repository, checked out into a temporary git worktree, so the
code before a change and after it are measured side by side. Every variant runs ``rlsweep.training.train`` in a
child process (throughput.py's end-to-end child: logger none, per-iteration ``perf/sps``, first iterations
dropped), interleaved over ``--rounds`` so that drift in the machine's load falls on all variants alike.

``--concurrent K`` also starts K children of each variant at once (``hydra.launcher.runs_per_gpu=K`` on one GPU,
or K runs sharing the cores) and reports their summed throughput next to one run's. Writes ``<out>.json`` and
``<out>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from throughput import PRESETS, comparison_lines, machine_info, machine_label, result_header, summarize  # noqa: E402


@dataclass
class Variant:
    name: str
    ref: str  # git ref ("" = the working tree)
    overrides: list[str]
    root: Path = REPO  # where its code lives
    sps: list[float] = field(default_factory=list)  # per measured iteration, pooled over rounds
    concurrent_sps: list[float] = field(default_factory=list)  # summed over K simultaneous runs, per round
    setup_s: list[float] = field(default_factory=list)  # child wall time minus the measured iterations


def parse_variant(text: str) -> Variant:
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise SystemExit(f"--variant {text!r}: expected NAME=[@GIT_REF] [OVERRIDE ...]")
    words = shlex.split(rest)
    ref = words.pop(0)[1:] if words and words[0].startswith("@") else ""
    return Variant(name.strip(), ref, words)


def checkout(ref: str, tmp: Path) -> Path:
    """A worktree of ``ref`` (detached) under ``tmp``, one per ref; removed with the temporary directory."""
    path = tmp / f"worktree-{ref.replace('/', '_')}"
    if not path.exists():
        proc = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(path), ref],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"cannot check out {ref!r}: {proc.stderr.strip()}")
    return path


def start_child(v: Variant, args: argparse.Namespace, out: Path, share: int) -> subprocess.Popen[str]:
    script = v.root / "benchmarks" / "throughput.py"
    cmd = [sys.executable, str(script), "--e2e-child", str(out), "--preset", args.preset, "--device", args.device]
    cmd += ["--e2e-iters", str(args.iters), "--e2e-warmup-iters", str(args.warmup_iters), *v.overrides]
    # The variant's checkout first; whatever else was on the path stays (the GPU machine's carried packages).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(v.root), os.environ.get("PYTHONPATH")) if p)}
    if share > 1:  # as the local launcher does for runs sharing a machine: an equal share of the cores each
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // share)))
    return subprocess.Popen(cmd, cwd=v.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_children(v: Variant, args: argparse.Namespace, tmp: Path, count: int) -> list[dict[str, Any]]:
    outs = [tmp / f"{v.name}-{time.monotonic_ns()}-{i}.json" for i in range(count)]
    procs = [start_child(v, args, o, count) for o in outs]
    results = []
    for proc, out in zip(procs, outs, strict=True):
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"variant {v.name!r} failed ({proc.returncode}):\n{stdout[-2000:]}{stderr[-4000:]}")
        results.append(json.loads(out.read_text()))
    return results


def markdown(res: dict[str, Any]) -> str:
    base = res["variants"][0]
    lines = [
        f"# rlsweep before/after: {res['label']}",
        "",
        *comparison_lines(res),
        f"- preset `{res['preset']}` ({' '.join(PRESETS[res['preset']])}); {res['rounds']} rounds x "
        f"{res['iters']} measured iterations per variant (after {res['warmup_iters']} dropped), interleaved",
        "",
        "| variant | code | overrides | agent steps/s, median [min, max] | vs first |"
        + (f" {res['concurrent']} at once, summed | x one run |" if res["concurrent"] > 1 else ""),
        "| --- | --- | --- | --- | --- |" + (" --- | --- |" if res["concurrent"] > 1 else ""),
    ]
    for v in res["variants"]:
        s = v["sps"]
        row = (
            f"| {v['name']} | {v['ref'] or 'working tree'} | `{' '.join(v['overrides']) or '-'}` | "
            f"{s['median']:,.1f} [{s['min']:,.1f}, {s['max']:,.1f}] | {s['median'] / base['sps']['median']:.2f}x |"
        )
        if res["concurrent"] > 1:
            c = v["concurrent_sps"]
            row += f" {c['median']:,.1f} [{c['min']:,.1f}, {c['max']:,.1f}] | {c['median'] / s['median']:.2f}x |"
        lines.append(row)
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--variant", action="append", required=True, help="NAME=[@GIT_REF] [OVERRIDE ...] (repeatable)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--common", default="", help="overrides for every variant, before the variant's own")
    p.add_argument("--device", default="auto")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds over all variants")
    p.add_argument("--iters", type=int, default=3, help="measured training iterations per child")
    p.add_argument("--warmup-iters", type=int, default=2, help="first iterations not measured (compilation, caches)")
    p.add_argument("--concurrent", type=int, default=1, help="also run K children at once per variant and round")
    p.add_argument("--out", default="", help="output path without suffix")
    p.add_argument("--label", default="", help="machine label in the file name")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    variants = [parse_variant(t) for t in args.variant]
    for v in variants:
        v.overrides = [*shlex.split(args.common), *v.overrides]
    if len({v.name for v in variants}) != len(variants):
        raise SystemExit("--variant names must be unique")

    from rlsweep.training.seeding import select_device  # the device a run with this ``device`` setting gets

    device = select_device(args.device)
    machine = machine_info(device)
    label = args.label or machine_label(machine)
    date = dt.date.today().isoformat()
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"{label}-{date}-compare"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rlsweep-compare-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            for v in variants:
                if v.ref:
                    v.root = checkout(v.ref, tmp)
            for r in range(args.rounds):
                for v in variants:
                    t0 = time.perf_counter()
                    (one,) = run_children(v, args, tmp, 1)
                    v.sps += one["sps"]["samples"]
                    measured = sum(one["phase_s_per_iteration"].get("collect", {}).get("samples", [])) + sum(
                        one["phase_s_per_iteration"].get("update", {}).get("samples", [])
                    )
                    v.setup_s.append(time.perf_counter() - t0 - measured)
                    median = statistics.median(one["sps"]["samples"])
                    print(f"[compare] round {r + 1}/{args.rounds} {v.name}: {median:,.1f} agent steps/s",
                          file=sys.stderr, flush=True)  # fmt: skip
                    if args.concurrent > 1:
                        many = run_children(v, args, tmp, args.concurrent)
                        v.concurrent_sps.append(sum(statistics.median(x["sps"]["samples"]) for x in many))
                        print(f"[compare]   {args.concurrent} at once: {v.concurrent_sps[-1]:,.1f} agent steps/s",
                              file=sys.stderr, flush=True)  # fmt: skip
        finally:
            if any(v.ref for v in variants):
                subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], check=False)
    machine["load_average_end"] = list(os.getloadavg())
    res: dict[str, Any] = {
        **result_header("compare.py", label, args.note, machine, argv),
        "preset": args.preset,
        "rounds": args.rounds,
        "iters": args.iters,
        "warmup_iters": args.warmup_iters,
        "concurrent": args.concurrent,
        "variants": [
            {
                "name": v.name,
                "ref": v.ref,
                "overrides": v.overrides,
                "sps": summarize(v.sps),
                "concurrent_sps": summarize(v.concurrent_sps) if v.concurrent_sps else None,
                "setup_and_dropped_iterations_s": summarize(v.setup_s),
            }
            for v in variants
        ],
    }
    Path(str(out) + ".json").write_text(json.dumps(res, indent=2) + "\n")
    Path(str(out) + ".md").write_text(markdown(res))
    print(markdown(res))
    print(f"[compare] wrote {out}.json and {out}.md", file=sys.stderr)


if __name__ == "__main__":
    main()
