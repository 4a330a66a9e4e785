"""The intrinsic reward's networks per collection step: target and predictor as two passes, or as one.

    python benchmarks/reward_passes.py --device cpu --envs 16 128 --out benchmarks/results/<machine>-reward-passes

Per step the loop runs three networks on the N envs' states: the policy on the 4-frame stack, and RND's target
and predictor on the newest frame, normalised. The policy reads other inputs (four raw frames; the distillation
nets read one frame normalised and clipped), so it cannot share a pass with them; target and predictor read the
same input and have the same convolutions and first linear layer (arch "a": 3 convs, then 9216 -> 512), so those
can run as one pass, the two networks' weights stacked on a leading axis and called through ``torch.func.vmap``
with the input shared (the first convolution becomes one convolution with both networks' filters, the later
ones grouped convolutions of two groups, the linear layer one batched product). The predictor's two further
linear layers follow on its half. ``two passes`` is what ``Distillation.reward`` runs (in both layouts: NHWC is
the default, ``perf.channels_last``); ``one pass`` the fused form. Outputs are checked equal up to rounding.
Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stacked_update import step_time
from throughput import machine_info, machine_line, result_header, summarize

from rlsweep.models import build_distillation_nets
from rlsweep.models.distillation import DistillationNet
from rlsweep.training.seeding import select_device


class OnePass(nn.Module):
    """Target and predictor of one architecture in one pass: their encoders and first linear layers stacked."""

    def __init__(self, target: DistillationNet, predictor: DistillationNet) -> None:
        super().__init__()
        encoders, _ = stack_module_state([target.encoder, predictor.encoder])  # type: ignore[arg-type]
        self.encoders = {name: t.contiguous() for name, t in encoders.items()}
        first = [target.linear_layers()[0], predictor.linear_layers()[0]]
        self.weight = torch.stack([f.weight for f in first]).transpose(1, 2).contiguous().detach()  # (2, in, out)
        self.bias = torch.stack([f.bias for f in first]).unsqueeze(1).detach()  # (2, 1, out)
        self.skeleton = (copy.deepcopy(target.encoder).to("meta"),)
        self.rest = predictor.head[1:]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        encode = vmap(lambda p, x: functional_call(self.skeleton[0], p, (x,)), in_dims=(0, None))
        first = torch.baddbmm(self.bias, encode(self.encoders, x), self.weight)  # (2, B, out)
        return first[0], self.rest(first[1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--envs", type=int, nargs="+", default=[16, 128])
    p.add_argument("--side", type=int, default=96)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the variants")
    p.add_argument("--out", required=True, help="output path without suffix")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    device = select_device(args.device)
    torch.manual_seed(0)
    target, predictor = (net.to(device) for net in build_distillation_nets("a", (1, args.side, args.side)))
    nhwc = [copy.deepcopy(net).to(memory_format=torch.channels_last) for net in (target, predictor)]  # type: ignore[call-overload]
    one = OnePass(target, predictor)

    def two_passes(nets: list[nn.Module], x: Tensor) -> tuple[Tensor, Tensor]:
        return nets[0](x), nets[1](x)

    result: dict[str, Any] = result_header("reward_passes.py", "reward passes", args.note, machine_info(device), argv)
    result["envs"] = {}
    for n in args.envs:
        x = torch.rand(n, 1, args.side, args.side, device=device) * 4 - 2  # normalised and clipped frames
        x_nhwc = x.contiguous(memory_format=torch.channels_last)
        variants = {
            "two passes, NCHW": lambda x=x: two_passes([target, predictor], x),
            "two passes, NHWC (default)": lambda x=x_nhwc: two_passes(nhwc, x),
            "one pass (vmap)": lambda x=x: one(x),
        }
        with torch.no_grad():
            want = two_passes([target, predictor], x)
            got = one(x)
            diff = max((a - b).abs().max().item() for a, b in zip(want, got, strict=True))
            samples: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name, fn in variants.items():
                    samples[name] += step_time(fn, device, args.repeats)
        result["envs"][str(n)] = {
            "max_abs_difference": diff,
            "variants": {name: summarize(s) for name, s in samples.items()},
        }
        print(f"[reward_passes] {n} envs: " + ", ".join(
            f"{name} {statistics.median(s) * 1e3:.2f} ms" for name, s in samples.items()), file=sys.stderr)  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# r_int's networks per collection step: two passes or one ({result['date']})",
        "",
        machine_line(result["machine"], args.note),
        f'- RND arch "a" target and predictor on N normalised {args.side}x{args.side} frames, no grad; '
        f"{args.rounds} interleaved rounds of {args.repeats} timed calls per variant",
        "",
        "| envs | variant | ms per step, median [min, max] | vs default |",
        "| --- | --- | --- | --- |",
    ]
    for n, res in result["envs"].items():
        base = res["variants"]["two passes, NHWC (default)"]["median"]
        for name, s in res["variants"].items():
            lines.append(f"| {n} | {name} | {s['median'] * 1e3:.2f} [{s['min'] * 1e3:.2f}, {s['max'] * 1e3:.2f}] "
                         f"| {base / s['median']:.2f}x |")  # fmt: skip
    diffs = ", ".join(f"{n} envs {r['max_abs_difference']:.1e}" for n, r in result["envs"].items())
    lines += ["", f"Largest difference between the two forms' outputs: {diffs}", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
