"""The speed switches of ``perf.*`` (:class:`rlsweep.config.schema.PerfConfig`) and the small pieces they need.

Everything here changes how fast the method runs, not what it computes (up to floating-point rounding; bf16
autocast rounds more, which is why it is opt-in): the optimiser kernel (fused Adam), forward passes under bf16
autocast, ``torch.compile`` of the networks, observations uploaded through a pinned buffer, and, always on,
training statistics kept on the device until one read per iteration and frames scaled to [0, 1] in place. Each
switch is measured by ``benchmarks/compare.py``; results and defaults are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils._pytree import tree_map_only

from rlsweep.compute.stacked import SeedStack

#: Training statistics of one update: name -> 0-dim tensor on the run's device (no host sync until read).
Stats = dict[str, torch.Tensor]


def adam(params: Iterable[nn.Parameter], lr: float, eps: float = 1e-8, *, fused: bool = False) -> torch.optim.Adam:
    """torch's Adam; ``fused`` runs one kernel over all parameters instead of a Python loop over tensors.

    Same update rule; results differ from the loop only by floating-point rounding.
    """
    return torch.optim.Adam(params, lr=lr, eps=eps, fused=fused or None)


def unit_frames(frames: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 frames as float32 in [0, 1]: ``frames.float() / 255``, bit for bit, with the division in place
    (one float tensor instead of two: 21 against 36 ms for a minibatch of 512 84x84x4 frames on 2 CPU cores).

    ``channels_last``: the floats in NHWC order, for NHWC convolutions (``perf.channels_last``). The layout comes
    with the conversion, in the same pass; left to the first convolution, the reorder of its NCHW input cost
    more than that (model A, 512 frames of 4x96x96, 2 CPU cores: forward and backward 328 against 366 ms).
    """
    layout = torch.channels_last if channels_last else torch.preserve_format
    return frames.to(torch.float32, memory_format=layout, copy=True).div_(255.0)


#: /proc/cpuinfo flags of the instructions that compute in bf16 natively (AVX512-BF16, AMX).
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str] | None:
    """The CPU's feature flags from ``cpuinfo`` (the text of ``/proc/cpuinfo``, read when None); None where there
    are none to read (not Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return None


def cpu_has_bf16(cpuinfo: str | None = None) -> bool | None:
    """Whether this CPU computes in bf16 natively (``cpuinfo`` as for :func:`cpu_flags`); None where that cannot be
    read. Without it torch emulates bf16 through float32, and bf16 autocast makes the networks several times slower
    instead of faster (measured on an AVX2-only EPYC, 2 cores: a 9216 -> 448 linear layer's forward and backward
    on 128 rows 165 ms under bf16 against 29 ms in float32)."""
    flags = cpu_flags(cpuinfo)
    return None if flags is None else not BF16_CPU_FLAGS.isdisjoint(flags)


def bf16_warning(device: torch.device, mode: str) -> str | None:
    """The warning a run prints when ``perf.autocast=bf16`` would slow it down (a CPU without bf16), else None."""
    if mode != "bf16" or device.type != "cpu" or cpu_has_bf16() is not False:
        return None
    return (
        "perf.autocast=bf16 on a CPU without bf16 instructions (AVX512-BF16 or AMX): torch emulates bf16 "
        "there and the networks run several times slower than in float32; perf.autocast=none is faster"
    )


def stacked_cpu_warning(device: torch.device, seeds: int) -> str | None:
    """The warning a process of ``seeds`` stacked seeds (``seeds_per_process``) prints on the CPU, else None."""
    if seeds < 2 or device.type != "cpu":
        return None
    return (
        f"{seeds} seeds stacked in one process on the CPU: vmap runs their convolutions as grouped ones, which "
        "the CPU's kernels run slower than the same work as separate convolutions, and separate processes were "
        "faster in every CPU measurement (benchmarks/README.md); seeds_per_process=1 is faster here"
    )


def autocast(device: torch.device, mode: str) -> contextlib.AbstractContextManager[object]:
    """The context the networks' forward passes run in: bf16 autocast, or nothing for ``mode="none"``."""
    if mode == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def runs_nhwc(module: nn.Module, channels_last: bool) -> bool:
    """Whether ``module``'s convolutions run NHWC under ``perf.channels_last``. Stacked seeds' networks (5-D
    weights, one grouped convolution under vmap) keep their NCHW layout."""
    return channels_last and not isinstance(module, SeedStack)


def prepare_modules(modules: Iterable[nn.Module], channels_last: bool, compile_mode: str) -> None:
    """Apply the layout and compilation switches to networks already on their device, in place."""
    modules = list(modules)
    if channels_last:
        # Weights in NHWC make every conv produce NHWC output (PyTorch follows the weight's layout), so inputs
        # need no conversion; flattening before the linear layers restores the NCHW order the weights expect.
        for module in modules:
            if runs_nhwc(module, channels_last):
                module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    compile_modules(modules, compile_mode)


#: ``perf.compile`` modes whose compiled networks replay CUDA graphs on a GPU.
CUDA_GRAPH_MODES = frozenset({"reduce-overhead", "max-autotune"})


def compile_modules(modules: Iterable[nn.Module], mode: str) -> None:
    """``torch.compile`` each module in place (state_dict keys unchanged), unless ``mode="none"``."""
    if mode == "none":
        return
    for module in modules:
        module.compile(mode=None if mode == "default" else mode)
        if mode in CUDA_GRAPH_MODES and any(p.is_cuda for p in module.parameters()):
            copy_outputs(module)


def copy_outputs(module: nn.Module) -> None:
    """Make a compiled module's calls return copies of what its CUDA graph wrote.

    A graph's outputs live in memory the next replay reuses, and outside a pending backward every call of a
    compiled network starts such a replay (torch.compiler.cudagraph_mark_step_begin's rule): under no_grad the
    predictor's call would overwrite the target features its loss still reads, and the reward's networks the
    policy's values and logits before the rollout stores them. A copy taken outside the compiled call is the
    caller's to keep; it costs one pass over the outputs, small next to the networks that made them.
    """
    compiled = module._compiled_call_impl  # set by Module.compile; Module.__call__ runs it
    if compiled is None:
        raise RuntimeError("copy_outputs needs a module compiled with Module.compile")

    def call(*args: object, **kwargs: object) -> object:
        return tree_map_only(torch.Tensor, torch.Tensor.clone, compiled(*args, **kwargs))

    module._compiled_call_impl = call


class Uploader:
    """uint8 observations from the envs (numpy) to the run's device.

    On the CPU this is a zero-copy view. On CUDA with ``pin`` the frames are copied once into a pinned host
    buffer and sent asynchronously, so the copy overlaps the work queued before it; before the buffer is
    refilled, the previous copy's event is awaited (free when it has long finished, as it has in the loop).
    """

    def __init__(self, device: torch.device, pin: bool) -> None:
        self.device = device
        self.pin = pin and device.type == "cuda"
        self._host: torch.Tensor | None = None
        self._sent: torch.cuda.Event | None = None  # marks the end of the last copy out of ``_host``

    def __call__(self, array: np.ndarray) -> torch.Tensor:
        if self.device.type == "cpu":
            # Safe to alias while the next env step runs: envpool hands out a new buffer per recv (tested).
            return torch.from_numpy(np.ascontiguousarray(array))
        if not self.pin:
            return torch.as_tensor(array, device=self.device)
        if self._sent is not None:
            self._sent.synchronize()
        if self._host is None or self._host.shape != array.shape:
            self._host = torch.empty(array.shape, dtype=torch.uint8, pin_memory=True)
        self._host.numpy()[...] = array
        out = self._host.to(self.device, non_blocking=True)
        self._sent = torch.cuda.Event()
        self._sent.record()
        return out


def to_floats(stats: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Read statistics back to the host in one transfer (one device sync instead of one per value)."""
    if not stats:
        return {}
    values = torch.stack([v.detach().float().reshape(()) for v in stats.values()])
    return dict(zip(stats, values.tolist(), strict=True))


def mean_stats(history: list[Stats]) -> Stats:
    """Per-key mean over the minibatch steps of an update, still on the device (per seed where the values are)."""
    keys = {k for stats in history for k in stats}
    return {k: torch.stack([s[k].detach().float() for s in history if k in s]).mean(dim=0) for k in sorted(keys)}
