"""Before/after of one iteration's learning alone: variants built side by side in one process, timed interleaved.

    python benchmarks/compare_update.py --device cpu \\
        --variant "per minibatch=perf.target_features_per_update=false" --variant "defaults="
    python benchmarks/compare_update.py --preset seed --device cuda \\
        --variant "defaults=" --variant "nchw=perf.channels_last=false"

What ``throughput.py`` times as "update: full iteration" (V(s_T), GAE for both streams, then the PPO epochs with
the motivation trained as the loop trains it, through ``rlsweep.training.loop.update``), for each variant's own
policy, updater, motivation and rollout storage, all filled with the same real observations. Round r times
every variant once, in turn, so drift in the machine's load falls on all of them alike; on a shared 2-core VM
this resolves differences of a few percent that ``compare.py``'s end-to-end children (separate processes, with
collection and start-up) cannot. A variant is ``NAME=[OVERRIDE ...]`` on top of the preset; all variants share
the env and ``ppo.num_envs`` (the observations), and the code is the working tree's (``compare.py`` compares
commits). Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import compare  # noqa: E402
import throughput as tp  # noqa: E402


def parse_variant(text: str) -> tuple[str, list[str]]:
    """compare.py's ``NAME=[OVERRIDE ...]``, without its ``@GIT_REF``: one process holds one commit's code."""
    variant = compare.parse_variant(text)
    if variant.ref:
        raise SystemExit(f"--variant {text!r}: expected NAME=[OVERRIDE ...] (another commit: compare.py)")
    return variant.name, variant.overrides


def markdown(res: dict[str, Any]) -> str:
    base = res["variants"][0]["iteration_s"]["median"]
    lines = [
        f"# rlsweep update before/after: {res['label']}",
        "",
        *tp.comparison_lines(res),
        f"- preset `{res['preset']}` ({' '.join(tp.PRESETS[res['preset']])}); {res['samples_per_iteration']} samples,"
        f" {res['minibatch_steps']} minibatch steps per iteration; {res['rounds']} interleaved rounds after one "
        "dropped",
        "",
        "| variant | overrides | update s/iteration, median [min, max] | samples/s | speed vs first |",
        "| --- | --- | --- | --- | --- |",
    ]
    for v in res["variants"]:
        s = v["iteration_s"]
        lines.append(
            f"| {v['name']} | `{' '.join(v['overrides']) or '-'}` | {s['median']:.3f} [{s['min']:.3f}, {s['max']:.3f}]"
            f" | {res['samples_per_iteration'] / s['median']:,.0f} | {base / s['median']:.3f}x |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--variant", action="append", required=True, help="NAME=[OVERRIDE ...] (repeatable)")
    p.add_argument("--preset", choices=sorted(tp.PRESETS), default="cpu")
    p.add_argument("--device", default="auto")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--out", default="", help="output path without suffix")
    p.add_argument("--label", default="", help="machine label in the file name")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    named = [parse_variant(t) for t in args.variant]
    if len({name for name, _ in named}) != len(named):
        raise SystemExit("--variant names must be unique")

    import torch

    from rlsweep.training.seeding import seed_everything, select_device

    device = select_device(args.device)
    machine = tp.machine_info(device)  # the load average before anything runs
    cfgs = [tp.compose_config([*tp.PRESETS[args.preset], "logger=none", f"device={args.device}", *o]) for _, o in named]
    first = cfgs[0]
    for (name, _), cfg in zip(named, cfgs, strict=True):
        if (cfg.env, cfg.ppo.num_envs) != (first.env, first.ppo.num_envs):
            raise SystemExit(f"--variant {name!r}: another env or ppo.num_envs than the first (use compare.py)")
    if first.torch_threads:
        torch.set_num_threads(first.torch_threads)
    env, frames = tp.bench_env(first.env, first.ppo.num_envs, first.seed, first.ppo.num_steps, 1)
    shape = tuple(env["obs_shape"])
    built = []
    for cfg in cfgs:
        seed_everything(cfg.seed, cfg.debug.deterministic, device)
        parts = tp.build_parts(cfg, shape, env["num_actions"], env["frame_channels"], device)
        tp.fill_rollout(cfg, parts, frames, device)
        built.append((cfg, parts))

    clock = tp.Clock(device)
    times: list[list[float]] = [[] for _ in built]
    for r in range(args.rounds + 1):
        for i, (cfg, parts) in enumerate(built):
            seconds = clock.time(lambda cfg=cfg, parts=parts: tp.learning_iteration(cfg, parts))
            if r:  # round 0 warms up (allocator, oneDNN primitive caches, compilation)
                times[i].append(seconds)
        if r:
            row = ", ".join(f"{name} {t[-1]:.3f} s" for (name, _), t in zip(named, times, strict=True))
            print(f"[compare_update] round {r}/{args.rounds}: {row}", file=sys.stderr, flush=True)

    machine["load_average_end"] = list(os.getloadavg())
    label = args.label or tp.machine_label(machine)
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"{label}-{dt.date.today()}-compare-update"
    out.parent.mkdir(parents=True, exist_ok=True)
    ppo = first.ppo
    samples = ppo.num_envs * ppo.num_steps
    res: dict[str, Any] = {
        **tp.result_header("compare_update.py", label, args.note, machine, argv),
        "preset": args.preset,
        "rounds": args.rounds,
        "samples_per_iteration": samples,
        "minibatch_steps": ppo.update_epochs * (samples // ppo.minibatch_size),
        "variants": [
            {"name": name, "overrides": o, "iteration_s": tp.summarize(t)}
            for (name, o), t in zip(named, times, strict=True)
        ],
    }
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    base = statistics.median(times[0])
    print(f"[compare_update] wrote {out}.json and {out}.md (first variant {base:.3f} s/iteration)", file=sys.stderr)


if __name__ == "__main__":
    main()
