"""Throughput of one rlsweep configuration on one device: the parts, their sum, and end-to-end training.

    python benchmarks/throughput.py                                   # CPU preset (see PRESETS), auto device
    python benchmarks/throughput.py --device cpu --repeats 3 model=A motivation=rnd ppo.num_envs=16 ppo.num_steps=32
    python benchmarks/throughput.py --preset seed --device cuda       # the seed's 128 envs x 128 steps, model A, RND
    python benchmarks/throughput.py --profile                         # also cProfile the end-to-end run

Any Hydra override of ``conf/config.yaml`` works (composed with Hydra's compose API, validated like a run).
Measured, each as the median over ``--repeats`` with min / max / IQR:

* ``env``: ``envs.step`` of the configured env (``rlsweep.envs.make_env``: envpool with the seed's wrapper for
  Atari) and of the synthetic ``fake`` env at the same frame shape, random actions.
* ``infer``: the loop's per-step work besides the env, on a batch of ``num_envs`` real observations: obs to
  the device, policy forward + sample + log-prob, the motivation's ``update_stats`` and ``reward``, the action
  back to the host, ``RolloutStorage.insert`` and ``insert_env`` (reward/done into host buffers). Sub-parts
  are timed on their own.
* ``update``: one iteration's learning on a full rollout: V(s_T), GAE for both streams, then rlsweep's own
  ``PPOUpdater.update`` with the motivation trained per minibatch (or in one pass), as the loop does.
* ``e2e``: ``rlsweep.training.train`` on a temporary run directory (logger none, checkpoint only at the end)
  in a child process; per-iteration ``perf/sps`` from its metrics.jsonl, first iteration(s) dropped.

Per agent step: t_env / N + t_infer / N + t_update / (T N); their inverse is the "sum of parts" limit in agent
steps per second and ``e2e_fraction`` = e2e sps / limit. Peak host memory is VmHWM (reset per phase through
/proc/self/clear_refs where the kernel allows it, else the process peak so far); peak device memory is
``torch.cuda.max_memory_allocated`` per phase on CUDA. Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime as dt
import io
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Presets are overrides applied before the command line's (which win). ``logger=none`` always: no W&B.
PRESETS: dict[str, list[str]] = {
    # CPU-sized: 16 envs x 32 steps = 512 samples per iteration, 4 epochs of 4 minibatches of 128 (16 PPO +
    # 16 predictor steps per iteration; the seed does 4 x 32 of 512). Model A, RND, Montezuma, as the seed.
    "cpu": [
        "model=A",
        "motivation=rnd",
        "env=montezuma",
        "ppo=seed",
        "ppo.num_envs=16",
        "ppo.num_steps=32",
        "ppo.minibatch_size=128",
    ],
    # The seed's configuration (ppo_rnd_a0): 128 envs x 128 steps, 4 epochs of 32 minibatches of 512.
    "seed": ["model=A", "motivation=rnd", "env=montezuma", "ppo=seed", "critic_init=0.1", "normalise_int_reward=false"],
    # CleanRL ppo_rnd_envpool.py's networks, 84x84 frames and hyperparameters at vs_cleanrl.py's size: 16 envs x
    # 128 steps, 4 epochs of 4 minibatches of 512, predictor mask per sample keeping 25 %.
    "cleanrl": ["experiment=cleanrl_rnd"],
}


# ---- configuration ---------------------------------------------------------------------------------------------
def compose_config(overrides: list[str]) -> Any:
    """The typed ``rlsweep.config.Config`` for ``overrides``, composed and checked as a launch does."""
    from rlsweep.config.files import typed_config
    from rlsweep.launching.plan import compose_point

    return typed_config(compose_point(overrides))


# ---- measurement helpers ---------------------------------------------------------------------------------------
def summarize(samples: list[float]) -> dict[str, Any]:
    s = sorted(samples)
    q1, q3 = (statistics.quantiles(s, n=4, method="inclusive")[::2]) if len(s) >= 2 else (s[0], s[0])
    return {"median": statistics.median(s), "min": s[0], "max": s[-1], "q1": q1, "q3": q3, "n": len(s), "samples": s}


def scaled(summary: dict[str, Any], factor: float) -> dict[str, Any]:
    """The same statistics of ``samples * factor`` (a per-call time as a per-agent-step time, ...)."""
    return summarize([x * factor for x in summary["samples"]])


class Clock:
    """Wall time with the device synchronised at both ends (CUDA work is asynchronous)."""

    def __init__(self, device: Any) -> None:
        import torch

        self.sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def time(self, fn: Callable[[], Any], calls: int = 1) -> float:
        """Seconds per call of ``fn`` over ``calls`` calls."""
        self.sync()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        self.sync()
        return (time.perf_counter() - t0) / calls


class Memory:
    """Peak host RSS (VmHWM) and peak device memory per phase."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.can_reset = self._reset_host()

    @staticmethod
    def _reset_host() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
            return True
        except OSError:
            return False

    @staticmethod
    def _status(key: str) -> float:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024  # kB -> MiB
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def start(self) -> None:
        self._reset_host()
        if self.device.type == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)

    def read(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {
            "host_peak_rss_mib": self._status("VmHWM"),
            "host_rss_mib": self._status("VmRSS"),
            "device_peak_alloc_mib": None,
        }
        if self.device.type == "cuda":
            import torch

            out["device_peak_alloc_mib"] = torch.cuda.max_memory_allocated(self.device) / 2**20
            out["device_peak_reserved_mib"] = torch.cuda.max_memory_reserved(self.device) / 2**20
        return out


# ---- machine ---------------------------------------------------------------------------------------------------
#: The CPU's vector extensions that decide the networks' kernels: one "AMD EPYC" VM had AVX512 with native bf16
#: (bf16 autocast 1.5x float32), the next AVX2 only (bf16 autocast 6-10x slower than float32), under one name.
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def host_info() -> dict[str, Any]:
    """The machine itself, for every benchmark's result file: host, CPU model and vector extensions (also in the
    model string, so every table shows them), cores (all and usable), memory."""
    from rlsweep.compute.perf import cpu_flags

    cpu = platform.processor() or "unknown"
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    features = [f for f in CPU_FEATURES if f in (cpu_flags(cpuinfo) or ())]
    if features:
        cpu = f"{cpu} ({', '.join(features)})"
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "hostname": platform.node(),
        "cpu_model": cpu,
        "cpu_features": features,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": mem_gib,
    }


def machine_info(device: Any) -> dict[str, Any]:
    import numpy as np
    import torch

    info: dict[str, Any] = {
        **host_info(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": str(device),
        "load_average_start": list(os.getloadavg()),
    }
    try:
        from rlsweep.envs.pool import import_envpool

        info["envpool"] = import_envpool().__version__
    except Exception:  # envpool is optional for synthetic-only configs
        info["envpool"] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["cuda"] = torch.version.cuda
    return info


def machine_label(machine: dict[str, Any]) -> str:
    """Short name for result files: gpu-<model> or cpu-<N>core."""
    return f"gpu-{machine['gpu'].split()[-1].lower()}" if "gpu" in machine else f"cpu-{os.cpu_count()}core"


def result_header(
    script: str, label: str, note: str, machine: dict[str, Any], argv: list[str] | None
) -> dict[str, Any]:
    """The fields every result file starts with: what ran, where and when."""
    return {
        "label": label,
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "command": ["python", f"benchmarks/{script}", *(argv if argv is not None else sys.argv[1:])],
        "note": note,
        "machine": machine,
    }


def machine_line(machine: dict[str, Any], note: str) -> str:
    """One Markdown bullet for a micro-benchmark's machine: CPU, cores, device, torch and threads, load, note."""
    m = machine
    return (
        f"- machine: {m['cpu_model']}, {m['cpu_count']} cores; device {m['device']}; torch {m['torch']}, "
        f"{m['torch_threads']} threads; load average at start {m['load_average_start']}"
        + (f" — {note}" if note else "")
    )


def comparison_lines(res: dict[str, Any]) -> list[str]:
    """The lines under a before/after table's title (compare.py, compare_update.py): what ran and when, on which
    machine, under what load."""
    m = res["machine"]
    gpu = f" ({m['gpu']}, CUDA {m['cuda']})" if "gpu" in m else ""
    return [
        f"{res['date']} · `{' '.join(res['command'])}`",
        "",
        f"- machine: {m['cpu_model']}, {m['cpu_count']} logical cores, {m['memory_gib']} GiB; device {m['device']}"
        f"{gpu}; torch {m['torch']}",
        f"- load average at start {m['load_average_start']}, at end {m.get('load_average_end')}"
        + (f" — {res['note']}" if res.get("note") else ""),
    ]


# ---- phases ----------------------------------------------------------------------------------------------------
def bench_env(env_cfg: Any, num_envs: int, seed: int, steps: int, repeats: int) -> tuple[dict[str, Any], Any]:
    """Seconds per ``envs.step`` of ``num_envs`` envs; also returns the last ``steps`` observations (uint8)."""
    import numpy as np

    from rlsweep.envs import make_env

    t0 = time.perf_counter()
    envs = make_env(env_cfg, num_envs, seed)
    make_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    try:
        obs = envs.reset()
        frames = [obs]
        for _ in range(5):  # threads started, caches warm
            envs.step(rng.integers(0, envs.num_actions, size=num_envs))
        samples = []
        episodes = 0
        for _ in range(repeats):
            actions = [rng.integers(0, envs.num_actions, size=num_envs) for _ in range(steps)]
            frames = []
            t0 = time.perf_counter()
            for a in actions:
                result = envs.step(a)
                frames.append(result.obs)
                episodes += len(result.episodes)
            samples.append((time.perf_counter() - t0) / steps)
        out = {
            "id": str(env_cfg.id),
            "obs_shape": list(envs.obs_shape),
            "num_actions": envs.num_actions,
            "frame_channels": envs.frame_channels,
            "steps_per_repeat": steps,
            "make_s": make_s,
            "episodes_ended": episodes,
            "step_s": summarize(samples),
            "per_agent_step_s": scaled(summarize(samples), 1 / num_envs),
        }
        return out, np.stack(frames[-steps:])
    finally:
        envs.close()


def build_parts(cfg: Any, obs_shape: tuple[int, int, int], num_actions: int, frame_channels: int, device: Any) -> Any:
    """Policy, updater, motivation and storage, built the way rlsweep.training.loop.train builds them."""
    from rlsweep.agent import PPOUpdater
    from rlsweep.models import build_policy
    from rlsweep.motivation import build_motivation
    from rlsweep.storage import RolloutStorage

    ppo = cfg.ppo
    policy = build_policy(cfg.model.name, obs_shape, num_actions, cfg.model.critic_init_gain).to(device)
    updater = PPOUpdater(policy, ppo, cfg.perf)
    motivation = build_motivation(cfg.motivation, obs_shape, device, frame_channels, cfg.perf, cfg.ppo.num_envs)
    storage = RolloutStorage(ppo.num_steps, ppo.num_envs, obs_shape, device)
    return policy, updater, motivation, storage


def bench_infer(cfg: Any, parts: Any, frames: Any, device: Any, clock: Clock, repeats: int) -> dict[str, Any]:
    """The loop's per-step work besides ``envs.step``, on ``num_envs`` real observations."""
    import numpy as np
    import torch
    from torch.distributions import Categorical

    _, updater, motivation, storage = parts
    n = cfg.ppo.num_envs
    obs_np = frames[-1]
    reward_np = np.zeros(n, dtype=np.float32)
    done_np = np.zeros(n, dtype=bool)
    obs = torch.as_tensor(obs_np, device=device)
    calls = max(1, min(cfg.ppo.num_steps, 32))
    state: dict[str, Any] = {"step": 0}

    def policy_part() -> Any:
        with torch.no_grad():
            out = updater.forward(obs)
            dist = Categorical(logits=out.logits)
            action = dist.sample()
            return out, action, dist.log_prob(action)

    def stats_part() -> None:
        with torch.no_grad():
            motivation.update_stats(obs)

    def reward_part() -> Any:
        with torch.no_grad():
            return motivation.reward(obs)

    out0, action0, logp0 = policy_part()
    r0 = reward_part()

    def copies_insert_part() -> None:
        step = state["step"] = (state["step"] + 1) % cfg.ppo.num_steps
        action0.cpu().numpy()
        o = torch.as_tensor(obs_np, device=device)
        storage.insert(step, o, action0, logp0, out0.value_ext, out0.value_int, r0)
        storage.insert_env(step, reward_np, done_np)

    def whole_step() -> None:
        step = state["step"] = (state["step"] + 1) % cfg.ppo.num_steps
        o = torch.as_tensor(frames[step % len(frames)], device=device)
        with torch.no_grad():
            out = updater.forward(o)
            dist = Categorical(logits=out.logits)
            action = dist.sample()
            motivation.update_stats(o)
            r_int = motivation.reward(o)
        action.cpu().numpy()
        storage.insert(step, o, action, dist.log_prob(action), out.value_ext, out.value_int, r_int)
        storage.insert_env(step, reward_np, done_np)

    parts_fn = {
        "policy_forward_sample": policy_part,
        "motivation_update_stats": stats_part,
        "motivation_reward": reward_part,
        "copies_and_insert": copies_insert_part,
        "step_total": whole_step,
    }
    result: dict[str, Any] = {"calls_per_repeat": calls}
    for name, fn in parts_fn.items():
        for _ in range(3):
            fn()  # warm-up (allocator, lazy init, cuDNN autotune)
        samples = [clock.time(fn, calls) for _ in range(repeats)]
        result[name] = {"step_s": summarize(samples), "per_agent_step_s": scaled(summarize(samples), 1 / n)}
    return result


def fill_rollout(cfg: Any, parts: Any, frames: Any, device: Any) -> None:
    """A rollout of real observations (cycled) with plausible rewards, values and dones."""
    import torch

    _, _, _, storage = parts
    t, n = cfg.ppo.num_steps, cfg.ppo.num_envs
    g = torch.Generator().manual_seed(0)
    src = torch.as_tensor(frames)  # (S, N, C, H, W) uint8
    for step in range(t):
        storage.obs[step].copy_(src[step % src.shape[0]])
    storage.actions.copy_(torch.randint(0, 18, (t, n), generator=g))
    storage.logprobs.copy_(torch.full((t, n), -2.89))
    storage.values_ext.copy_(torch.randn((t, n), generator=g) * 0.1)
    storage.values_int.copy_(torch.randn((t, n), generator=g) * 0.1)
    storage.rewards_ext.copy_((torch.rand((t, n), generator=g) < 0.01).float())
    storage.rewards_int.copy_(torch.rand((t, n), generator=g) * 0.1)
    storage.dones.copy_((torch.rand((t, n), generator=g) < 0.002).float())
    storage.set_last_obs(storage.obs[-1])


def gae_part(cfg: Any, parts: Any) -> Any:
    """V(s_T) and GAE per stream of the filled rollout: the update's batch, as the loop builds it."""
    import torch

    from rlsweep.agent import rollout_batch

    _, updater, _, storage = parts
    with torch.no_grad():
        last = updater.forward(storage.last_obs)
    return rollout_batch(storage, last.value_ext, last.value_int, cfg.ppo)


def ppo_part(cfg: Any, parts: Any, batch: Any) -> None:
    """The PPO epochs with the motivation's updates, through the loop's own ``update``."""
    from rlsweep.training.loop import update

    _, updater, motivation, storage = parts
    update(updater, motivation, storage, batch, cfg.motivation.predictor_updates)


def learning_iteration(cfg: Any, parts: Any) -> None:
    """One iteration's learning: V(s_T), GAE per stream, PPO epochs with the motivation's updates."""
    ppo_part(cfg, parts, gae_part(cfg, parts))


def count_flops(fn: Callable[[], Any]) -> int:
    """Floating-point operations of the matrix products and convolutions ``fn`` runs (forward and backward;
    element-wise work is not counted), by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def matmul_rate(device: Any, dtype: Any, clock: Clock, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of one dense ``size`` x ``size`` matrix product at ``dtype`` on ``device`` (median of ``repeats``):
    what this device's kernels reach on the easiest shape, a yardstick for the networks' own rate."""
    import torch

    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    a @ b  # warm-up
    seconds = statistics.median(clock.time(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / seconds


def bench_update(cfg: Any, parts: Any, device: Any, clock: Clock, repeats: int) -> dict[str, Any]:
    """One iteration's learning: V(s_T), GAE per stream, PPO epochs with the motivation's updates."""
    _, updater, _, _ = parts
    ppo = cfg.ppo
    batch = gae_part(cfg, parts)
    flops = count_flops(lambda: ppo_part(cfg, parts, batch))  # also the warm-up
    gae = [clock.time(lambda: gae_part(cfg, parts)) for _ in range(repeats)]
    total = [clock.time(lambda: learning_iteration(cfg, parts)) for _ in range(repeats)]
    ppo_alone = [clock.time(lambda: updater.update(batch)) for _ in range(max(1, repeats // 2))]
    samples_per_iter = ppo.num_envs * ppo.num_steps
    minibatches = ppo.update_epochs * (samples_per_iter // ppo.minibatch_size)
    import torch

    # On the CPU torch's bf16 autocast runs convolutions and matrix products in bf16 through oneDNN (AMX or
    # AVX512-BF16 where the CPU has them); its yardstick is then the bf16 product.
    dtype = torch.bfloat16 if cfg.perf.autocast == "bf16" else torch.float32
    rate = matmul_rate(device, dtype, clock)
    achieved = flops / statistics.median(total)
    return {
        "minibatch_steps_per_iteration": minibatches,
        "flops_per_iteration": flops,
        "achieved_flops_s": achieved,
        "matmul_dtype": str(dtype).removeprefix("torch."),
        "matmul_flops_s": rate,
        "fraction_of_matmul_rate": achieved / rate,
        "gae_s": summarize(gae),
        "ppo_without_motivation_s": summarize(ppo_alone),
        "iteration_s": summarize(total),
        "per_agent_step_s": scaled(summarize(total), 1 / samples_per_iter),
    }


def rollout_bytes(parts: Any) -> dict[str, Any]:
    _, _, _, storage = parts
    return {
        "obs_dtype": str(storage.obs.dtype),
        "obs_device": str(storage.obs.device),
        "obs_mib": storage.obs.numel() * storage.obs.element_size() / 2**20,
        "obs_mib_if_float32": storage.obs.numel() * 4 / 2**20,
    }


# ---- end-to-end (child process) --------------------------------------------------------------------------------
def e2e_child(cfg: Any, args: argparse.Namespace, user_overrides: list[str]) -> dict[str, Any]:
    """Run rlsweep's training loop for warm-up + measured iterations; per-iteration sps from metrics.jsonl.

    With ``seeds_per_process=k`` the process trains seeds ``seed .. seed + k - 1`` together
    (``rlsweep.training.train_seeds``), and its sps is the process's: k times each seed's.
    """
    import torch

    from rlsweep.training import train_seeds
    from rlsweep.training.seeding import select_device

    ppo = cfg.ppo
    batch = ppo.num_envs * ppo.num_steps
    iters = args.e2e_warmup_iters + args.e2e_iters
    cfg.budget = dataclasses.replace(cfg.budget, total_steps=iters * batch, log_every=1, checkpoint_every=10**9)
    cfg.logger = dataclasses.replace(cfg.logger, backend="none", console_every=10**9)
    cfg.debug = dataclasses.replace(cfg.debug, profile=True)
    if not any(o.startswith("motivation.warmup_steps") for o in user_overrides):
        cfg.motivation = dataclasses.replace(cfg.motivation, warmup_steps=min(cfg.motivation.warmup_steps, 16))
    seeds = cfg.seeds_per_process
    cfgs = [dataclasses.replace(cfg, seed=cfg.seed + j) for j in range(seeds)]
    device = select_device(cfg.device)
    memory = Memory(device)
    with tempfile.TemporaryDirectory(prefix="rlsweep-bench-") as tmp:
        run_dirs = [Path(tmp) / f"seed-{c.seed}" for c in cfgs]
        for run_dir in run_dirs:
            run_dir.mkdir()
        infos: list[dict[str, Any]] = [
            {"name": "bench", "run_id": d.name, "seed": c.seed, "sweep": "", "choices": {}, "overrides": []}
            for c, d in zip(cfgs, run_dirs, strict=True)
        ]
        memory.start()
        profiler = cProfile.Profile() if args.profile_out else None
        t0 = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        train_seeds(cfgs, run_dirs, infos)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile_out)
        wall = time.perf_counter() - t0
        rows = [json.loads(line) for line in (run_dirs[0] / "metrics.jsonl").read_text().splitlines() if line.strip()]
    measured = rows[args.e2e_warmup_iters :]
    phases = {}
    for key in sorted({k for r in measured for k in r if k.startswith("perf/time_")}):
        phases[key.removeprefix("perf/time_")] = summarize([r[key] for r in measured if key in r])
    return {
        "iterations_measured": len(measured),
        "iterations_dropped": args.e2e_warmup_iters,
        "warmup_steps_per_env": cfg.motivation.warmup_steps,
        "seeds_in_process": seeds,
        "sps": summarize([seeds * r["perf/sps"] for r in measured]),  # the process's: all its seeds' steps
        "phase_s_per_iteration": phases,
        "train_call_wall_s": wall,
        "memory": memory.read(),
        "torch_threads": torch.get_num_threads(),
    }


def run_e2e(args: argparse.Namespace, overrides: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "e2e.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--e2e-child", str(out), "--preset", args.preset]
        cmd += ["--device", args.device, "--e2e-iters", str(args.e2e_iters)]
        cmd += ["--e2e-warmup-iters", str(args.e2e_warmup_iters)]
        if args.profile_out:
            cmd += ["--profile-out", args.profile_out]
        cmd += overrides
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"end-to-end child failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}"
            )
        return json.loads(out.read_text())  # type: ignore[no-any-return]


# ---- report ----------------------------------------------------------------------------------------------------
def _ms(s: dict[str, Any], scale: float = 1e3) -> str:
    return f"{s['median'] * scale:.3f} [{s['min'] * scale:.3f}, {s['max'] * scale:.3f}]"


def _us(s: dict[str, Any]) -> str:
    return _ms(s, 1e6)


def _rate(s: dict[str, Any]) -> str:
    return f"{1 / s['median']:,.0f} [{1 / s['max']:,.0f}, {1 / s['min']:,.0f}]"


def markdown(res: dict[str, Any]) -> str:
    m, c = res["machine"], res["config"]
    lines = [
        f"# rlsweep throughput: {res['label']}",
        "",
        f"{res['date']} · `{' '.join(res['command'])}`",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu_model']}, {m['cpu_count']} logical cores ({m['cpu_affinity']} usable), "
        f"{m['memory_gib']} GiB RAM",
        f"- device: {m['device']}"
        + (f" ({m['gpu']}, {m['gpu_memory_gib']} GiB, CUDA {m['cuda']})" if "gpu" in m else ""),
        f"- torch {m['torch']} ({m['torch_threads']} intra-op / {m['torch_interop_threads']} inter-op threads), "
        f"envpool {m['envpool']}, numpy {m['numpy']}, Python {m['python']}",
        f"- load average (1/5/15 min) at start {m['load_average_start']}, at end {m.get('load_average_end')}"
        + (f" — {res['note']}" if res.get("note") else ""),
        "",
        "## Configuration",
        "",
        f"- overrides: `{' '.join(c['overrides'])}`",
        f"- env {c['env']} {c['obs_shape']}, model {c['model']}, motivation {c['motivation']}, "
        f"N = {c['num_envs']} envs x T = {c['num_steps']} steps = {c['batch']} samples/iteration, "
        f"{c['update_epochs']} epochs x minibatch {c['minibatch_size']} ({c['minibatch_steps']} steps/iteration)",
        f"- repeats {res['repeats']}; times are median [min, max] (IQR and raw samples in the JSON)",
        "",
        "## Parts",
        "",
        "| part | per call | per agent step (µs) | agent steps/s |",
        "| --- | --- | --- | --- |",
    ]
    for key, env in res["env"].items():
        lines.append(
            f"| env `{env['id']}` step ({key}) | {_ms(env['step_s'])} ms | {_us(env['per_agent_step_s'])} "
            f"| {_rate(env['per_agent_step_s'])} |"
        )
    for key, part in res["infer"].items():
        if isinstance(part, dict):
            lines.append(
                f"| infer: {key} | {_ms(part['step_s'])} ms | {_us(part['per_agent_step_s'])} "
                f"| {_rate(part['per_agent_step_s'])} |"
            )
    up = res["update"]
    if up:
        lines += [
            f"| update: GAE + V(s_T) | {_ms(up['gae_s'])} ms | | |",
            f"| update: PPO epochs only (no motivation) | {_ms(up['ppo_without_motivation_s'])} ms | | |",
            f"| update: full iteration (GAE + PPO + motivation) | {_ms(up['iteration_s'])} ms "
            f"| {_us(up['per_agent_step_s'])} | {_rate(up['per_agent_step_s'])} |",
        ]
        if "flops_per_iteration" in up:
            lines += [
                "",
                f"The update's convolutions and matrix products: {up['flops_per_iteration'] / 1e9:,.1f} GFLOP per "
                f"iteration, run at {up['achieved_flops_s'] / 1e9:,.1f} GFLOP/s (at the median time), "
                f"{up['fraction_of_matmul_rate']:.0%} of what one {up['matmul_dtype']} 2048 x 2048 matrix product "
                f"reaches on this device ({up['matmul_flops_s'] / 1e9:,.1f} GFLOP/s).",
            ]
    if c.get("skipped"):
        lines.append(f"\nSkipped: {', '.join(c['skipped'])} (the sum of parts needs env, infer and update).")
    lines += [
        "",
        "## Sum of parts vs end-to-end",
        "",
        "| quantity | value |",
        "| --- | --- |",
    ]
    sp = res["sum_of_parts"]
    lines += [
        f"| t_env + t_infer + t_update per agent step | {sp['per_agent_step_s'] * 1e6:.1f} µs "
        f"(env {sp['share']['env']:.0%}, infer {sp['share']['infer']:.0%}, update {sp['share']['update']:.0%}) |",
        f"| sum-of-parts limit | {sp['limit_sps']:,.0f} agent steps/s |",
    ]
    if res.get("e2e"):
        e = res["e2e"]
        lines += [
            f"| end-to-end (`rlsweep.training.train`, {e['iterations_measured']} iterations) | "
            f"{e['sps']['median']:,.0f} [{e['sps']['min']:,.0f}, {e['sps']['max']:,.0f}] agent steps/s |",
            f"| end-to-end fraction of the limit | {res['e2e_fraction']:.0%} |",
        ]
        for k, v in e["phase_s_per_iteration"].items():
            lines.append(f"| loop phase `perf/time_{k}` per iteration | {_ms(v)} ms |")
        if res.get("budget_hours"):
            lines.append(f"| time for 128 M agent steps at the e2e median | {res['budget_hours']:.1f} h |")
    lines += ["", "## Memory", "", "| phase | peak host RSS (MiB) | peak device alloc (MiB) |", "| --- | --- | --- |"]
    for phase, mem in res["memory"].items():
        dev = mem.get("device_peak_alloc_mib")
        lines.append(f"| {phase} | {mem['host_peak_rss_mib']:.0f} | {'-' if dev is None else f'{dev:.0f}'} |")
    rb = res["rollout"]
    lines += [
        "",
        f"Rollout observations: {rb['obs_dtype']} on {rb['obs_device']}, {rb['obs_mib']:.0f} MiB "
        f"({rb['obs_mib_if_float32']:.0f} MiB if they were float32). Host peaks are VmHWM "
        + ("reset per phase." if res["memory_reset_per_phase"] else "(process peak so far; no per-phase reset)."),
        "",
    ]
    return "\n".join(lines)


# ---- main ------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="overrides applied first (see PRESETS)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (sets the config's device)")
    p.add_argument("--repeats", type=int, default=5, help="repeats per measured part (median and spread)")
    p.add_argument("--env-steps", type=int, default=0, help="env steps per repeat (default: ppo.num_steps)")
    p.add_argument("--e2e-iters", type=int, default=0, help="measured training iterations (default: max(repeats, 3))")
    p.add_argument("--e2e-warmup-iters", type=int, default=1, help="first training iterations not measured")
    p.add_argument("--skip", default="", help="comma-separated: fake,infer,update,e2e")
    p.add_argument("--out", default="", help="output path without suffix (default benchmarks/results/<label>-<date>)")
    p.add_argument("--label", default="", help="machine label in file names (default cpu-<cores>core / gpu name)")
    p.add_argument("--note", default="", help="free text for the result file (e.g. what else ran)")
    p.add_argument("--profile", action="store_true", help="cProfile the end-to-end run; writes <out>-profile.txt")
    p.add_argument("--e2e-child", default="", help=argparse.SUPPRESS)
    p.add_argument("--profile-out", default="", help=argparse.SUPPRESS)
    args, overrides = p.parse_known_args(argv)
    bad = [o for o in overrides if o.startswith("--")]
    if bad:
        p.error(f"unknown option(s) {bad}; Hydra overrides look like key=value")
    if args.e2e_iters <= 0:
        args.e2e_iters = max(args.repeats, 3)
    return args, overrides


_RLSWEEP_FILES = r"(loop|ppo|gae|atari|synthetic|rollout|distillation|rnd|snd|normalizers|policy|tracker)\.py"


def profile_text(path: str, iterations: int, limit: int = 40) -> str:
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    stats.strip_dirs()
    out.write(f"# cProfile of rlsweep.training.train: {iterations} iterations (incl. setup and warm-up)\n\n")
    out.write("## by internal time (tottime)\n")
    stats.sort_stats("tottime").print_stats(limit)
    out.write("\n## by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(limit)
    out.write("\n## rlsweep's own functions by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(_RLSWEEP_FILES, limit)
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    args, user = parse_args(sys.argv[1:] if argv is None else argv)
    overrides = [*PRESETS[args.preset], "logger=none", f"device={args.device}", *user]
    cfg = compose_config(overrides)

    if args.e2e_child:
        Path(args.e2e_child).write_text(json.dumps(e2e_child(cfg, args, user)))
        return

    import torch

    from rlsweep.training.seeding import seed_everything, select_device

    device = select_device(cfg.device)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    # The same global settings as a run (deterministic algorithms on CPU by default).
    seed_everything(cfg.seed, cfg.debug.deterministic, device)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    ppo = cfg.ppo
    n, t = ppo.num_envs, ppo.num_steps
    env_steps = args.env_steps or t
    clock, memory = Clock(device), Memory(device)
    machine = machine_info(device)
    date = dt.date.today().isoformat()
    label = args.label or machine_label(machine)
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / f"{label}-{date}"
    out.parent.mkdir(parents=True, exist_ok=True)
    mem: dict[str, Any] = {}
    log = partial(print, file=sys.stderr, flush=True)

    log(f"[bench] {label}: {' '.join(overrides)}")
    memory.start()
    env_res: dict[str, Any] = {}
    env_res["configured"], frames = bench_env(cfg.env, n, cfg.seed, env_steps, args.repeats)
    mem["env (configured)"] = memory.read()
    log(f"[bench] env {cfg.env.id}: {env_res['configured']['step_s']['median'] * 1e3:.2f} ms/step")
    if cfg.env.id != "fake" and "fake" not in skip:
        memory.start()
        fake_cfg = dataclasses.replace(cfg.env, id="fake")
        env_res["fake"], _ = bench_env(fake_cfg, n, cfg.seed, env_steps, args.repeats)
        mem["env (fake)"] = memory.read()
        log(f"[bench] env fake: {env_res['fake']['step_s']['median'] * 1e3:.2f} ms/step")

    conf_env = env_res["configured"]
    obs_shape = tuple(conf_env["obs_shape"])
    num_actions, frame_channels = conf_env["num_actions"], conf_env["frame_channels"]

    memory.start()
    parts = build_parts(cfg, obs_shape, num_actions, frame_channels, device)
    fill_rollout(cfg, parts, frames, device)
    mem["build + rollout"] = memory.read()
    infer: dict[str, Any] = {}
    update: dict[str, Any] = {}
    if "infer" not in skip:
        memory.start()
        infer = bench_infer(cfg, parts, frames, device, clock, args.repeats)
        mem["infer"] = memory.read()
        log(f"[bench] infer: {infer['step_total']['step_s']['median'] * 1e3:.2f} ms/step")
    if "update" not in skip:
        memory.start()
        update = bench_update(cfg, parts, device, clock, args.repeats)
        mem["update"] = memory.read()
        log(f"[bench] update: {update['iteration_s']['median']:.3f} s/iteration")
    rollout = rollout_bytes(parts)
    del parts

    t_env = env_res["configured"]["per_agent_step_s"]["median"]
    t_infer = infer["step_total"]["per_agent_step_s"]["median"] if infer else float("nan")
    t_update = update["per_agent_step_s"]["median"] if update else float("nan")
    total = t_env + t_infer + t_update  # nan when a part was skipped
    res: dict[str, Any] = {
        **result_header("throughput.py", label, args.note, machine, argv),
        "repeats": args.repeats,
        "config": {
            "preset": args.preset,
            "overrides": overrides,
            "env": cfg.env.id,
            "obs_shape": list(obs_shape),
            "model": cfg.model.name,
            "motivation": cfg.motivation.name,
            "predictor_updates": cfg.motivation.predictor_updates,
            "num_envs": n,
            "num_steps": t,
            "batch": n * t,
            "update_epochs": ppo.update_epochs,
            "minibatch_size": ppo.minibatch_size,
            "minibatch_steps": ppo.update_epochs * (n * t // ppo.minibatch_size),
            "skipped": sorted(skip),
            "deterministic": cfg.debug.deterministic,
        },
        "env": env_res,
        "infer": infer,
        "update": update,
        "sum_of_parts": {
            "per_agent_step_s": total,
            "env_s": t_env,
            "infer_s": t_infer,
            "update_s": t_update,
            "share": {"env": t_env / total, "infer": t_infer / total, "update": t_update / total},
            "limit_sps": 1 / total,
        },
        "rollout": rollout,
        "memory": mem,
        "memory_reset_per_phase": memory.can_reset,
    }
    if "e2e" not in skip:
        log(f"[bench] end-to-end: {args.e2e_warmup_iters} + {args.e2e_iters} iterations of train() ...")
        if args.profile:
            args.profile_out = str(out) + "-profile.prof"
        e2e = run_e2e(args, user)
        res["e2e"] = e2e
        res["e2e_fraction"] = e2e["sps"]["median"] * total  # nan when a part was skipped
        res["budget_hours"] = 128e6 / e2e["sps"]["median"] / 3600
        mem["end-to-end train() (child process)"] = e2e["memory"]
        log(f"[bench] e2e: {e2e['sps']['median']:.0f} sps = {res['e2e_fraction']:.0%} of {1 / total:.0f}")
        if args.profile:
            text = profile_text(args.profile_out, args.e2e_warmup_iters + args.e2e_iters)
            Path(str(out) + "-profile.txt").write_text(text)
            Path(args.profile_out).unlink()
    machine["load_average_end"] = list(os.getloadavg())
    Path(str(out) + ".json").write_text(json.dumps(res, indent=2) + "\n")
    Path(str(out) + ".md").write_text(markdown(res))
    print(markdown(res))
    log(f"[bench] wrote {out}.json and {out}.md")


if __name__ == "__main__":
    main()
