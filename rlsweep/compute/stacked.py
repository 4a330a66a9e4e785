"""Several seeds of one configuration trained in one process (``seeds_per_process=k``): the stacked pieces.

The k seeds' networks are one module each (:class:`SeedStack`): their parameters stacked on a leading seed axis
(``torch.func.stack_module_state``) and called through ``torch.func.vmap``, so one kernel does the work of k
where a single seed's batch is too small to fill a GPU. Everything else of the loop (storage, GAE, the envs)
sees one run with k x N envs, seed-major: env ``j * N + n`` is env n of seed j, and a network's input of
k x B rows is k blocks of B, one per seed. What keeps the seeds apart:

- each seed's networks start from its own seed (built as for a lone run, then stacked);
- losses are averaged per seed (:func:`seed_mean`) and summed over seeds, so each seed's gradient is its own
  loss's; gradient clipping is per seed (:func:`clip_grad_norm_per_seed`); Adam is element-wise, so one Adam
  over stacked parameters is k independent Adams;
- minibatches are drawn per seed from that seed's samples (:func:`seed_rows`);
- running statistics (observation and reward normalisers) are kept per seed;
- each seed's checkpoint is a lone run's checkpoint (:func:`seed_states`), so a seed can be resumed alone, in
  another group, or evaluated like any run;
- SND's target losses are per seed too: each seed's pairs, views and batch statistics (VICReg's variance and
  covariance, ST-DIM's scores) come from its own block (:func:`per_seed`, or the stacked loss heads);
- random draws (actions, minibatch indices, the predictor mask, the warm-up's random actions, SND-V's pairs and
  augmentations) come from each seed's own generator (:func:`seed_generator`), which starts where a lone run's
  global generator would be and is drawn from in a lone run's order; its state is saved in the seed's
  checkpoint where a lone run saves the global one.

So a seed's numbers do not depend on which seeds share its process, nor on k: seed j gives the same numbers bit
for bit whichever seeds train beside it, and those of seed j trained alone up to the rounding of the batched
kernels (tests/integration/test_seeds_per_process.py: within 1e-5 relative on the CPU; about 1e-7 against a lone
run in the stack's NCHW layout, ``perf.channels_last=false``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap
from torch.utils._pytree import tree_map


class SeedStack(nn.Module):
    """k networks of one architecture as one module: input (k B, ...) -> output (k B, ...), seed-major blocks."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("a SeedStack needs at least two networks")
        self.seeds = len(members)
        params, buffers = stack_module_state(list(members))
        self._names = list(params)
        self._buffer_names = list(buffers)
        # Registered under flattened names, so .parameters() yields the stacked leaves in the members' own order:
        # an optimiser's state then lines up with a lone network's, index for index (optimizer_states).
        # Contiguous (NCHW) whatever layout the members had (perf.channels_last): vmap runs the k convolutions as
        # one grouped convolution, and one layout keeps a seed's numbers independent of how its network was built.
        for name, p in params.items():
            self.register_parameter(_flat(name), nn.Parameter(p.contiguous(), requires_grad=p.requires_grad))
        for name, b in buffers.items():
            self.register_buffer(_flat(name), b)
        # The shape without storage, called with each seed's slice of the stacked tensors. Kept out of the module
        # tree (a tuple), so it neither shows up in .parameters() nor moves with .to().
        self._skeleton = (copy.deepcopy(members[0]).to("meta"),)

    def _tensors(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        params = {name: getattr(self, _flat(name)) for name in self._names}
        buffers = {name: getattr(self, _flat(name)) for name in self._buffer_names}
        return params, buffers

    def forward(self, *xs: Tensor) -> Any:
        return self.call("forward", *xs)

    def call(self, method: str, *xs: Tensor, **options: Any) -> Any:
        """The members' ``method`` on each seed's block of every input (each (k B, ...)); outputs seed-major,
        (k B, ...) for per-sample outputs and (k,) for a per-seed scalar (a loss). ``options`` go to every seed
        as they are (e.g. SND-STD's ``conv_index`` for ``forward_with_map``)."""
        k = self.seeds
        for x in xs:
            if x.shape[0] % k:
                raise ValueError(f"a batch of {x.shape[0]} rows does not split into {k} seeds")
        bound = _Method(self._skeleton[0], method)

        def one_seed(params: dict[str, Tensor], buffers: dict[str, Tensor], *blocks: Tensor) -> Any:
            named = {f"net.{name}": t for name, t in {**params, **buffers}.items()}
            return functional_call(bound, named, blocks, options)

        params, buffers = self._tensors()
        out = vmap(one_seed)(params, buffers, *(x.reshape(k, -1, *x.shape[1:]) for x in xs))
        return tree_map(lambda t: t.reshape(-1, *t.shape[2:]), out)

    def each(self, method: str, blocks: Sequence[Tensor], **options: Any) -> list[Any]:
        """The members' ``method`` on one block per seed, blocks of any sizes: seed j's network (its slice of the
        stacked tensors) on ``blocks[j]``, one call after another. For inputs that do not split into k equal
        blocks, e.g. each seed's rows kept by its own predictor mask; each call is a lone network's on its rows
        (k kernels where :meth:`call` runs one). Gradients reach the stacked parameters, seed j's in slice j."""
        if len(blocks) != self.seeds:
            raise ValueError(f"{len(blocks)} blocks for {self.seeds} seeds")
        bound = _Method(self._skeleton[0], method)
        params, buffers = self._tensors()
        slices = {f"net.{name}": t.unbind(0) for name, t in {**params, **buffers}.items()}  # one backward node each
        return [functional_call(bound, {name: ts[j] for name, ts in slices.items()}, (x,), options)
                for j, x in enumerate(blocks)]  # fmt: skip

    def state_dicts(self) -> list[dict[str, Tensor]]:
        """Each seed's network as a lone network's ``state_dict`` (same keys, same shapes)."""
        params, buffers = self._tensors()
        tensors = {**params, **buffers}
        return [{name: t[j].detach().clone() for name, t in tensors.items()} for j in range(self.seeds)]

    @torch.no_grad()
    def load_state_dicts(self, states: Sequence[dict[str, Tensor]]) -> None:
        """Load one lone network's ``state_dict`` per seed."""
        if len(states) != self.seeds:
            raise ValueError(f"{len(states)} states for {self.seeds} seeds")
        params, buffers = self._tensors()
        for name, t in {**params, **buffers}.items():
            t.copy_(torch.stack([s[name].to(t.device, t.dtype) for s in states]))


class _Method(nn.Module):
    """A network's method other than ``forward`` as a module's ``forward``, for ``functional_call``."""

    def __init__(self, net: nn.Module, method: str) -> None:
        super().__init__()
        self.net = net
        self.method = method

    def forward(self, *xs: Tensor, **options: Any) -> Any:
        return getattr(self.net, self.method)(*xs, **options)


def _flat(name: str) -> str:
    return name.replace(".", "__")


def stack(members: Sequence[nn.Module]) -> nn.Module:
    """One network for one seed, a :class:`SeedStack` for several."""
    return members[0] if len(members) == 1 else SeedStack(members)


def seed_states(part: Any, seeds: int) -> list[dict[str, Any]]:
    """One lone run's ``state_dict`` per seed of any part with state: a network built by :func:`stack`, an
    optimiser over its parameters, or anything with ``state_dicts`` of its own (the running statistics)."""
    if isinstance(part, torch.optim.Optimizer):
        return optimizer_states(part, seeds)
    if isinstance(part, nn.Module) and not isinstance(part, SeedStack):
        return [part.state_dict()]
    states: list[dict[str, Any]] = part.state_dicts()
    return states


def load_seed_states(part: Any, states: Sequence[dict[str, Any]]) -> None:
    """Load what :func:`seed_states` gave (one lone run's ``state_dict`` per seed) into ``part``."""
    if isinstance(part, torch.optim.Optimizer):
        load_optimizer_states(part, states)
    elif isinstance(part, nn.Module) and not isinstance(part, SeedStack):
        (state,) = states
        part.load_state_dict(state)
    else:
        part.load_state_dicts(states)


# ---- optimiser state -------------------------------------------------------------------------------------------
def optimizer_states(optimizer: torch.optim.Optimizer, seeds: int) -> list[dict[str, Any]]:
    """Per-seed ``state_dict`` s of an optimiser over stacked parameters, each a lone network's optimiser state.

    Adam's moments are per element, so seed j's are slice j; its step count is shared (the seeds step together).
    """
    state = optimizer.state_dict()
    if seeds == 1:
        return [state]
    return [
        {
            "state": {i: {key: _slice(v, j) for key, v in s.items()} for i, s in state["state"].items()},
            "param_groups": copy.deepcopy(state["param_groups"]),
        }
        for j in range(seeds)
    ]


def load_optimizer_states(optimizer: torch.optim.Optimizer, states: Sequence[dict[str, Any]]) -> None:
    """Load one lone run's optimiser ``state_dict`` per seed (what :func:`optimizer_states` gave) into an
    optimiser over one network (one state) or over stacked ones (the moments stacked along a new first axis)."""
    if len(states) == 1:
        optimizer.load_state_dict(states[0])
    else:
        first = states[0]
        stacked = {
            i: {key: (v if _shared(v) else torch.stack([s["state"][i][key] for s in states])) for key, v in per.items()}
            for i, per in first["state"].items()
        }
        optimizer.load_state_dict({"state": stacked, "param_groups": copy.deepcopy(first["param_groups"])})
    match_parameter_layouts(optimizer)


def match_parameter_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give every per-element state (Adam's moments) its parameter's memory layout, in place.

    ``load_state_dict`` keeps the layout the moments were saved in, and that of the network that saved them may
    not be this one's: a lone run's convolution weights are NHWC (``perf.channels_last``), stacked seeds' NCHW,
    and a checkpoint moves between the two when a seed trained in a group resumes alone or the reverse. The
    fused Adam kernel walks moments and parameter in memory order as if their layouts agreed: on the CPU a
    moment element then updates another weight than its own (measured: 0.06 off after one step at lr 0.1), on
    CUDA the kernel refuses the mismatch.
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if isinstance(value, Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _shared(v: Any) -> bool:
    """Whether an optimiser state entry is common to all seeds (Adam's step count) rather than per element."""
    return not isinstance(v, Tensor) or v.dim() == 0


def _slice(v: Any, j: int) -> Any:
    return v.clone() if _shared(v) else v[j].clone()


# ---- per-seed reductions and rows ------------------------------------------------------------------------------
def per_seed(fn: Callable[..., Any], seeds: int, *xs: Tensor) -> Any:
    """``fn`` of each seed's block of the inputs (each (k B, ...)), results stacked to (k, ...) leaf by leaf; for
    one seed ``fn(*xs)`` itself. For per-seed losses whose batch statistics vmap cannot batch (VICReg's boolean
    indexing), or that are cheap next to the networks."""
    if seeds == 1:
        return fn(*xs)
    outs = [fn(*blocks) for blocks in zip(*(x.chunk(seeds) for x in xs), strict=True)]
    return tree_map(lambda *leaves: torch.stack(leaves), outs[0], *outs[1:])


def seed_mean(x: Tensor, seeds: int) -> Tensor:
    """The mean of each seed's block of ``x`` (shape (seeds,)); for one seed the plain mean (0-dim), as before."""
    return x.mean() if seeds == 1 else x.reshape(seeds, -1).mean(dim=1)


def clip_grad_norm_per_seed(params: Iterable[nn.Parameter], max_norm: float, seeds: int) -> Tensor:
    """``nn.utils.clip_grad_norm_`` applied to each seed's slice of stacked parameters; returns the k norms."""
    params = list(params)
    if seeds == 1:
        return nn.utils.clip_grad_norm_(params, max_norm)
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.stack([g.reshape(seeds, -1).norm(dim=1) for g in grads]).norm(dim=0)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # clip_grad_norm_'s rule, per seed
    for g in grads:
        g.mul_(coef.reshape(seeds, *([1] * (g.dim() - 1))))
    return norms


def seed_rows(local: Sequence[Tensor], num_envs: int) -> Tensor:
    """Rows of a (T, k N) rollout flattened to (T k N,) for each seed's rows of its own (T, N) rollout.

    ``local[j]`` indexes seed j's samples as a lone run would (row = t N + n); the result is seed-major: the
    rows of seed 0, then of seed 1, ..., the layout :class:`SeedStack` splits its input by.
    """
    seeds = len(local)
    if seeds == 1:
        return local[0]
    return torch.cat([(idx // num_envs) * (seeds * num_envs) + j * num_envs + idx % num_envs
                      for j, idx in enumerate(local)])  # fmt: skip


def seed_minibatches(local_batches: Sequence[Iterator[Tensor]], num_envs: int) -> Iterator[Tensor]:
    """Each seed's minibatch row sets, drawn in lock-step and joined seed-major (see :func:`seed_rows`)."""
    for per_seed in zip(*local_batches, strict=True):
        yield seed_rows(per_seed, num_envs)


def by_seed(x: Tensor, steps: int, seeds: int) -> Tensor:
    """A rollout quantity of (T, k N) values (or flattened to T k N) as (k, T N): row j holds seed j's samples in
    its own rollout's order (row t N + n)."""
    return x.reshape(steps, seeds, -1).transpose(0, 1).reshape(seeds, -1)


# ---- per-seed random draws ------------------------------------------------------------------------------------
def seed_generator(device: torch.device, seed: int) -> torch.Generator:
    """A generator that continues where a lone run of ``seed`` would draw from next, called right after that
    seed's networks were initialised from the global generator: on the CPU a copy of the global generator's
    state; on CUDA the device's, which initialisation (on the CPU) has not touched since it was seeded."""
    generator = torch.Generator(device=device)
    if device.type == "cpu":
        generator.set_state(torch.get_rng_state())
    else:
        generator.manual_seed(seed)
    return generator


def generator_state(rng: dict[str, Any], generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """A lone run's RNG state (``rlsweep.training.seeding.rng_state``) with the seed's generator in the place of
    the global one it stands for; a lone resume of the seed continues its draws."""
    state = dict(rng)
    if device.type == "cpu":
        state["torch"] = generator.get_state()
    else:
        cuda = list(state.get("cuda") or [])
        cuda[device.index or 0] = generator.get_state()
        state["cuda"] = cuda
    return state


def load_generator_state(generator: torch.Generator, rng: dict[str, Any], device: torch.device) -> None:
    """Continue the seed's draws from its checkpoint. A checkpoint written on the other kind of device has no
    state for this generator (a CPU generator's state is not a CUDA one's): the generator keeps its seeding."""
    if device.type == "cpu":
        state = rng["torch"]
    else:
        cuda = rng.get("cuda") or []
        index = device.index or 0
        if index >= len(cuda):
            return
        state = cuda[index]
    generator.set_state(state.cpu())


def sample_actions(probs: Tensor, generators: Sequence[torch.Generator]) -> Tensor:
    """Each seed's actions from its own generator: ``Categorical(probs).sample()``'s draw, block by block."""
    blocks = probs.reshape(len(generators), -1, probs.shape[-1])
    return torch.cat([torch.multinomial(b, 1, True, generator=g).T.reshape(-1)
                      for b, g in zip(blocks, generators, strict=True)])  # fmt: skip


def seed_rand(shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device) -> Tensor:
    """Uniform [0, 1) of ``shape``, whose first axis is k seed-major blocks, each from its seed's generator."""
    k = len(generators)
    block = (shape[0] // k, *shape[1:])
    return torch.cat([torch.rand(block, device=device, generator=g) for g in generators])


def seed_value(stat: Tensor, seed: int) -> Tensor:
    """Seed ``seed``'s entry of a per-seed statistic ((k,) for k seeds, 0-dim for one)."""
    return stat if stat.dim() == 0 else stat[seed]
