"""One update step of k seeds: stacked networks (``seeds_per_process``) against the same work seed by seed.

    python benchmarks/stacked_update.py --device cpu --seeds 2 --out benchmarks/results/cpu-2core-<date>-stacked-update

A step is what dominates the update: model A's forward and backward on a minibatch of 4x96x96 frames and the RND
predictor's on the newest frame, for each of k seeds. ``stacked`` runs the k seeds as one
:class:`rlsweep.compute.stacked.SeedStack` each (``torch.func.vmap``: batched, i.e. grouped, convolutions); ``loop``
runs
k lone networks one after another in the same process. The end-to-end comparison against separate processes is
``compare.py --concurrent k --variant "k seeds=seeds_per_process=k"``; this isolates the networks' share of it.
Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import machine_info, machine_line, result_header, summarize

from rlsweep.compute.stacked import SeedStack
from rlsweep.models import build_distillation_nets, build_policy
from rlsweep.training.seeding import select_device


def step_time(step: Any, device: torch.device, repeats: int) -> list[float]:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):  # warm-up: allocator, oneDNN / cuDNN plans
        step()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--minibatch", type=int, default=512)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", required=True, help="output path without suffix")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    device = select_device(args.device)
    k, mb = args.seeds, args.minibatch
    torch.manual_seed(0)
    policies = [build_policy("A", (4, 96, 96), 18, 0.1).to(device) for _ in range(k)]
    predictors = [build_distillation_nets("a", (1, 96, 96))[1].to(device) for _ in range(k)]
    frames = torch.rand(k * mb, 4, 96, 96, device=device)
    newest = frames[:, -1:].contiguous()

    def loop() -> None:
        for j in range(k):
            rows = slice(j * mb, (j + 1) * mb)
            out = policies[j](frames[rows])
            loss = out.logits.logsumexp(-1).mean() + out.value_ext.pow(2).mean()
            (loss + predictors[j](newest[rows]).pow(2).mean()).backward()

    policy_stack, predictor_stack = SeedStack(policies), SeedStack(predictors)

    def stacked() -> None:
        out = policy_stack(frames)
        per_seed = lambda x: x.reshape(k, -1).mean(1)  # noqa: E731 - each seed's own loss, summed
        loss = per_seed(out.logits.logsumexp(-1)) + per_seed(out.value_ext.pow(2))
        loss = loss + per_seed(predictor_stack(newest).pow(2))
        loss.sum().backward()

    result: dict[str, Any] = result_header("stacked_update.py", f"{k} seeds", args.note, machine_info(device), argv)
    result.update({"seeds": k, "minibatch": mb, "variants": {}})
    for name, fn in (("loop", loop), ("stacked", stacked), ("loop again", loop), ("stacked again", stacked)):
        result["variants"][name] = summarize(step_time(fn, device, args.repeats))
    loop_s = statistics_median(result, "loop")
    stacked_s = statistics_median(result, "stacked")
    result["stacked_over_loop_time"] = stacked_s / loop_s
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = [
        f"# One update step of {k} seeds: stacked against seed by seed ({result['date']})",
        "",
        machine_line(result["machine"], args.note),
        f"- step: model A forward + backward on {mb} frames of 4x96x96 and the RND predictor on the newest frame, "
        f"per seed; {args.repeats} timed steps after 2 warm-up steps, each variant twice, interleaved",
        "",
        "| variant | seconds per step, median [min, max] | samples/s |",
        "| --- | --- | --- |",
    ]
    for name, s in result["variants"].items():
        lines.append(f"| {name} | {s['median']:.3f} [{s['min']:.3f}, {s['max']:.3f}] | {k * mb / s['median']:,.0f} |")
    lines += ["", f"Stacked takes **{result['stacked_over_loop_time']:.2f}x** the time of the loop.", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


def statistics_median(result: dict[str, Any], name: str) -> float:
    """The median over both measurements of a variant (``name`` and ``name again``)."""
    samples = result["variants"][name]["samples"] + result["variants"][f"{name} again"]["samples"]
    return float(sorted(samples)[len(samples) // 2])


if __name__ == "__main__":
    main()
