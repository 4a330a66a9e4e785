"""rlsweep against CleanRL's ``ppo_rnd_envpool.py`` at the same agent steps, interleaved on one machine in one run.

What is the same: the agent steps. Both sides train PPO + RND on Montezuma's Revenge with CleanRL's networks and
observation (rlsweep: ``experiment=cleanrl_rnd``, i.e. ``model=cleanrl``, ``motivation.network=cleanrl``, 84x84
frames), ``--num-envs`` x ``--num-steps`` agent steps per iteration, 4 epochs x 4 minibatches, the same torch
threads. What is not: the work per agent step and the algorithm.

- Work: rlsweep runs the policy once per rollout step (CleanRL twice: ``get_value``, then
  ``get_action_and_value``), RND's frozen target once per state and update (CleanRL: again in every epoch), and
  target and predictor on the rows the predictor's mask keeps only (CleanRL: on all rows, the dropped 75 %
  zeroed in the loss). Counted with ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix
  products, forward and backward), one iteration of 16 x 128 steps is 987.7 GFLOP in CleanRL's script and 603.0
  GFLOP in rlsweep's (the issue's reviewer, #28; ``--pairs 0 --flops`` at 0b664d6 counted 987.7 in both
  iterations of CleanRL's and 603.0, then 606.4 in rlsweep's, whose predictor runs on the rows a random mask
  keeps): rlsweep does 0.61x CleanRL's FLOPs per agent step.
- Algorithm: CleanRL takes one Adam step over policy and predictor and clips their gradient norm together, rlsweep
  two Adams and clips the policy's only; CleanRL updates the observation statistics once per iteration (numpy,
  float64), rlsweep every step; CleanRL divides r_int by the standard deviation of discounted intrinsic returns,
  rlsweep by the running standard deviation of r_int; CleanRL anneals the learning rate and clips the extrinsic
  value loss, rlsweep does neither.

So the ratio of agent steps/s is a ratio per agent step, not per unit of work: per FLOP, multiply it by
rlsweep's FLOPs over CleanRL's. The result says both, with CleanRL's and rlsweep's FLOPs (counted with
``--flops``, else the reviewer's at 16 x 128 steps) and, from the CPU time, each side's GFLOP per CPU-second.

Nothing is fetched: ``--cleanrl`` is a CleanRL checkout, ``--cleanrl-python`` the python of a venv that runs it
(torch, envpool, gym 0.26, tyro, tensorboard). Each run is its own process; the pairs run CleanRL, rlsweep,
CleanRL, rlsweep, ...

Measured the same way for both: the parent stamps every line a child prints, and an iteration's time is the gap
between two consecutive end-of-iteration lines (CleanRL prints ``SPS: ...`` after each update, rlsweep its console
line, ``logger.console_every=1``); agent steps/s = num_envs * num_steps / gap. At each stamp the parent also reads
the child's CPU time (user + system, all its threads, from ``/proc/<pid>/stat``): CPU-seconds per iteration. The
first ``--warmup-iters`` iterations are dropped (the first has no gap anyway). The whole process's wall time is
recorded too (it includes start-up and the observation-statistics warm-up, ``--obs-norm-init-iters`` iterations
of random steps on both sides, and CleanRL's warm-up is slow Python).

``--flops`` adds one untimed child per side before the pairs (``--flop-iters`` iterations, default 2, under
``FlopCounterMode``; the child prints the running count at each end-of-iteration line, so each iteration's FLOPs
are the differences, and their mean is reported). ``--pairs 0 --flops`` counts only, which is much shorter than
the timed pairs (docs/timings.md has both).

CleanRL's script runs unmodified from the checkout, through ``runpy``. With envpool >= 1.0, ``env_type="gym"``
returns a gymnasium-API pool (``reset`` -> (obs, info), 5-tuple ``step``, gymnasium spaces, read-only
``num_envs``), which the script predates; the child then wraps ``envpool.make``'s result in the old gym API
(:class:`_OldGymAPI`: the same pool, ``done = terminated | truncated``, gym spaces). That adapter is the only thing
between the script and envpool, and the result file says whether it was used.

    python benchmarks/vs_cleanrl.py --cleanrl /tmp/cleanrl --cleanrl-python /tmp/cleanrl-venv/bin/python \\
        --pairs 3 --iterations 12 --warmup-iters 2 --threads 2 --flops
    python benchmarks/vs_cleanrl.py --cleanrl /tmp/cleanrl --cleanrl-python /tmp/cleanrl-venv/bin/python \\
        --pairs 0 --flops                       # the FLOP counts only

Extra arguments after ``--`` are Hydra overrides for the rlsweep side (they must not change the agent steps, or
the ratio means nothing). The module imports only the standard library at the top: the CleanRL child runs it with
the CleanRL venv's python, which does not have rlsweep.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import re
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
SCRIPT = "cleanrl/ppo_rnd_envpool.py"
VERSIONS_TAG = "VS_CLEANRL_VERSIONS "
FLOPS_TAG = "VS_CLEANRL_FLOPS "  # a counting child's running FLOP total, printed after each end-of-iteration line
CLEANRL_ITER = re.compile(r"^SPS: (\d+)")
RLSWEEP_ITER = re.compile(r"\] it (\d+)/(\d+) .*sps (\d+)")
UPDATE_EPOCHS = 4
NUM_MINIBATCHES = 4
# What differs between the two loops besides the agent steps (rlsweep/conf/experiment/cleanrl_rnd.yaml gives the
# reasons); written into every result, so that no ratio is read as one of identical work.
DIFFERENCES = [
    "work per agent step: rlsweep runs the policy once per rollout step (CleanRL twice: get_value, then "
    "get_action_and_value), RND's frozen target once per state and update (CleanRL: again in every epoch), and "
    "target and predictor on the rows the predictor's mask keeps only (CleanRL: all rows, the dropped 75 % zeroed)",
    "optimiser: CleanRL one Adam over policy and predictor, its 0.5 gradient-norm clip over both; rlsweep two Adams "
    "(policy, predictor), the clip on the policy only",
    "observation statistics: CleanRL once per iteration over the rollout (numpy float64); rlsweep every step (torch)",
    "intrinsic reward normalisation: CleanRL divides r_int by the std of discounted intrinsic returns; rlsweep by "
    "the running std of r_int",
    "CleanRL anneals the learning rate linearly and clips the extrinsic value loss; rlsweep does neither",
]
# The FLOPs of one iteration at 16 x 128 steps as the reviewer counted them (#28, FlopCounterMode): quoted
# when this run did not count them itself (--flops).
REVIEWER_GFLOP = {"cleanrl": 987.7, "rlsweep": 603.0}


# ---- children ----------------------------------------------------------------------------------------------------
def _print_versions(side: str) -> None:
    import numpy as np
    import torch

    try:
        import envpool

        envpool_version = envpool.__version__
    except Exception:
        envpool_version = None
    info = {
        "side": side,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "envpool": envpool_version,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
    }
    print(VERSIONS_TAG + json.dumps(info), flush=True)


class _OldGymAPI:
    """An envpool gymnasium-API pool seen through the gym <= 0.25 API that ``ppo_rnd_envpool.py`` was written for."""

    def __init__(self, pool: Any) -> None:
        import gym

        self._pool = pool
        space = pool.observation_space
        self.observation_space = gym.spaces.Box(space.low, space.high, space.shape, space.dtype)
        self.action_space = gym.spaces.Discrete(int(pool.action_space.n))
        self.num_envs = int(pool.config["num_envs"])
        self.metadata: dict[str, Any] = {}
        self.reward_range = (-float("inf"), float("inf"))
        self.spec = None

    def reset(self, **kwargs: Any) -> Any:
        obs, _info = self._pool.reset(**kwargs)
        return obs

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self._pool.step(action)
        return obs, reward, terminated | truncated, info

    def close(self) -> None:
        self._pool.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class _FlopLines:
    """stdout that prints ``FLOPS_TAG`` and the counter's running total after every end-of-iteration line."""

    def __init__(self, stream: Any, pattern: re.Pattern[str], counter: Any) -> None:
        self._stream, self._pattern, self._counter = stream, pattern, counter
        self._line = ""

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        self._line += text
        while "\n" in self._line:
            line, self._line = self._line.split("\n", 1)
            if self._pattern.search(line):
                self._stream.write(f"{FLOPS_TAG}{int(self._counter.get_total_flops())}\n")
                self._stream.flush()
        return written

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def counting_flops(pattern: re.Pattern[str], fn: Any) -> None:
    """Run ``fn`` under ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products, forward and
    backward; element-wise work is not counted), printing the running total after each end-of-iteration line."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        stdout = sys.stdout
        sys.stdout = _FlopLines(stdout, pattern, counter)
        try:
            fn()
        finally:
            sys.stdout = stdout


def cleanrl_child(script: str, script_args: list[str], threads: int, count_flops: bool = False) -> None:
    """Run CleanRL's script unmodified (``runpy``), with envpool adapted to the gym API if needed."""
    import envpool
    import torch

    torch.set_num_threads(threads)
    make = envpool.make
    adapted: list[bool] = []

    def make_old_api(*args: Any, **kwargs: Any) -> Any:
        pool = make(*args, **kwargs)
        if kwargs.get("env_type") == "gym" and "Gymnasium" in type(pool).__name__:
            adapted.append(True)
            print("VS_CLEANRL_ADAPTER gymnasium->gym", flush=True)
            return _OldGymAPI(pool)
        return pool

    envpool.make = make_old_api
    _print_versions("cleanrl")
    sys.argv = [script, *script_args]
    if count_flops:
        counting_flops(CLEANRL_ITER, lambda: runpy.run_path(script, run_name="__main__"))
    else:
        runpy.run_path(script, run_name="__main__")


def rlsweep_child(run_dir: str, threads: int, iterations: int, overrides: list[str], count_flops: bool = False) -> None:
    """rlsweep's training entry on ``experiment=cleanrl_rnd`` plus ``overrides``, one console line per iteration."""
    import dataclasses

    sys.path.insert(0, str(REPO))
    from rlsweep.config.files import typed_config
    from rlsweep.launching.plan import compose_point
    from rlsweep.training import train

    cfg = typed_config(compose_point(["experiment=cleanrl_rnd", "logger=none", *overrides]))
    batch = cfg.ppo.num_envs * cfg.ppo.num_steps
    cfg.budget = dataclasses.replace(cfg.budget, total_steps=iterations * batch, log_every=1, checkpoint_every=10**9)
    cfg.logger = dataclasses.replace(cfg.logger, backend="none", console_every=1)
    cfg.torch_threads = threads
    cfg.device = "cpu"
    import torch

    torch.set_num_threads(threads)
    _print_versions("rlsweep")
    info = {"name": "vs_cleanrl", "run_id": "vs_cleanrl", "seed": cfg.seed, "sweep": "", "choices": {}, "overrides": []}
    if count_flops:
        counting_flops(RLSWEEP_ITER, lambda: train(cfg, Path(run_dir), info))
    else:
        train(cfg, Path(run_dir), info)


# ---- parent ------------------------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    from throughput import host_info  # benchmarks/throughput.py: stdlib only at import, so the children never load it

    return {**host_info(), "platform": platform.platform()}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far, all its threads (``/proc/<pid>/stat``); None if unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces: field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def run_child(cmd: list[str], env: dict[str, str], cwd: str, pattern: re.Pattern[str], log: Path) -> dict[str, Any]:
    """Start ``cmd``, stamp its stdout lines as they arrive, return the end-of-iteration stamps (wall clock and the
    child's CPU time), the running FLOP totals a counting child printed, and the wall time."""
    load_before = list(os.getloadavg())
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    stamps: list[float] = []
    cpu: list[float | None] = []
    flops: list[int] = []
    reported: list[float] = []
    versions: dict[str, Any] = {}
    adapter = False
    tail: list[str] = []
    assert proc.stdout is not None
    with log.open("w") as out:
        for line in proc.stdout:
            now = time.perf_counter()
            out.write(f"{now - t0:10.3f} {line}")
            tail = [*tail[-40:], line]
            m = pattern.search(line)
            if m:
                stamps.append(now)
                cpu.append(cpu_seconds(proc.pid))
                reported.append(float(m.groups()[-1]))
            elif line.startswith(FLOPS_TAG):
                flops.append(int(line[len(FLOPS_TAG) :]))
            elif line.startswith(VERSIONS_TAG):
                versions = json.loads(line[len(VERSIONS_TAG) :])
            elif line.startswith("VS_CLEANRL_ADAPTER"):
                adapter = True
    rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"child failed ({rc}): {' '.join(cmd)}\n{''.join(tail)}")
    return {
        "stamps": stamps,
        "cpu_stamps": cpu,
        "flop_totals": flops,
        "reported_sps": reported,
        "wall_s": wall,
        "versions": versions,
        "gym_adapter": adapter,
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
    }


def per_iteration_sps(stamps: list[float], steps_per_iter: int, warmup: int) -> list[float]:
    """Agent steps/s of iterations warmup+1, ...: the gaps between consecutive end-of-iteration stamps."""
    gaps = [b - a for a, b in itertools.pairwise(stamps)]  # gap k is iteration k + 2 (1-based)
    drop = max(warmup - 1, 0)  # iteration 1 has no gap; drop the rest of the warm-up iterations
    return [steps_per_iter / g for g in gaps[drop:] if g > 0]


def per_iteration_cpu(cpu: list[float | None], warmup: int) -> list[float]:
    """CPU-seconds of iterations warmup+1, ... (the child's user + system time between end-of-iteration stamps)."""
    gaps = [b - a for a, b in itertools.pairwise(cpu) if a is not None and b is not None]
    return gaps[max(warmup - 1, 0) :] if len(gaps) == len(cpu) - 1 else []


def side_command(
    side: str, args: argparse.Namespace, overrides: list[str], work: Path, iters: int, count_flops: bool
) -> tuple[list[str], str, re.Pattern[str]]:
    """The child's command line, its working directory and its end-of-iteration pattern."""
    threads = str(args.threads)
    me = str(Path(__file__).resolve())
    batch = args.num_envs * args.num_steps
    flops = ["--count-flops"] if count_flops else []
    if side == "cleanrl":
        script = str((Path(args.cleanrl) / SCRIPT).resolve())
        script_args = [
            "--seed", str(args.seed), "--no-cuda", "--num-envs", str(args.num_envs),
            "--num-steps", str(args.num_steps), "--total-timesteps", str(iters * batch),
            "--update-epochs", str(UPDATE_EPOCHS), "--num-minibatches", str(NUM_MINIBATCHES),
            "--num-iterations-obs-norm-init", str(args.obs_norm_init_iters),
        ]  # fmt: skip
        cmd = [args.cleanrl_python, me, "--cleanrl-child", script, "--threads", threads, *flops, "--", *script_args]
        return cmd, str(work), CLEANRL_ITER
    shape = [
        f"seed={args.seed}",
        f"ppo.num_envs={args.num_envs}",
        f"ppo.num_steps={args.num_steps}",
        f"ppo.update_epochs={UPDATE_EPOCHS}",
        f"ppo.minibatch_size={batch // NUM_MINIBATCHES}",
        f"motivation.warmup_steps={args.obs_norm_init_iters * args.num_steps}",
    ]
    cmd = [sys.executable, me, "--rlsweep-child", str(work), "--threads", threads, "--iterations", str(iters), *flops]
    return [*cmd, "--", *shape, *overrides], str(REPO), RLSWEEP_ITER


def child_env(args: argparse.Namespace) -> dict[str, str]:
    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    return env


def run_pair_side(side: str, args: argparse.Namespace, overrides: list[str], tmp: Path, index: int) -> dict[str, Any]:
    iters = args.warmup_iters + args.iterations
    batch = args.num_envs * args.num_steps
    work = tmp / f"{side}-{index}"
    work.mkdir()
    log = tmp / f"{side}-{index}.log"
    cmd, cwd, pattern = side_command(side, args, overrides, work, iters, count_flops=False)
    result = run_child(cmd, child_env(args), cwd, pattern, log)
    if len(result["stamps"]) != iters:
        raise RuntimeError(f"{side}: expected {iters} iteration lines, saw {len(result['stamps'])} (log: {log})")
    result["sps"] = per_iteration_sps(result.pop("stamps"), batch, args.warmup_iters)
    result["median_sps"] = statistics.median(result["sps"])
    result["cpu_s"] = per_iteration_cpu(result.pop("cpu_stamps"), args.warmup_iters)
    result["median_cpu_s"] = statistics.median(result["cpu_s"]) if result["cpu_s"] else None
    result.pop("flop_totals")
    result["whole_process_sps"] = iters * batch / result["wall_s"]
    result["log_tail"] = log.read_text().splitlines()[-3:]
    cpu = f"{result['median_cpu_s']:.1f} CPU-s per iteration; " if result["median_cpu_s"] else ""
    print(
        f"  {side:8s} run {index + 1}: median {result['median_sps']:.1f} agent steps/s over {len(result['sps'])} "
        f"iterations ({cpu}whole process {result['wall_s']:.1f} s; load {result['load_average_before'][0]:.2f})",
        flush=True,
    )
    return result


def count_side_flops(side: str, args: argparse.Namespace, overrides: list[str], tmp: Path) -> dict[str, Any]:
    """One untimed child of ``--flop-iters`` iterations under FlopCounterMode: the FLOPs of each iteration."""
    work = tmp / f"{side}-flops"
    work.mkdir()
    log = tmp / f"{side}-flops.log"
    cmd, cwd, pattern = side_command(side, args, overrides, work, args.flop_iters, count_flops=True)
    result = run_child(cmd, child_env(args), cwd, pattern, log)
    totals = result["flop_totals"]
    if len(totals) != args.flop_iters:
        raise RuntimeError(f"{side}: expected {args.flop_iters} FLOP counts, saw {len(totals)} (log: {log})")
    # The first iteration's count would include a warm-up's (measured: neither side's warm-up runs a network).
    # rlsweep's varies a little from one iteration to the next: its predictor runs on the rows the mask keeps.
    per_iteration = [b - a for a, b in itertools.pairwise([0, *totals])]
    print(f"  {side:8s} FLOPs per iteration: {', '.join(f'{f / 1e9:,.1f} G' for f in per_iteration)}", flush=True)
    mean = statistics.fmean(per_iteration)
    return {
        "per_iteration": per_iteration,
        "flops_per_iteration": mean,
        "versions": result["versions"],
        "gym_adapter": result["gym_adapter"],
    }


def flop_summary(res: dict[str, Any]) -> dict[str, Any]:
    """The FLOP counts (this run's, else the reviewer's) and, with timed pairs, the ratios per agent step and per
    FLOP, and each side's GFLOP per second of wall clock and per CPU-second."""
    batch = res["args"]["num_envs"] * res["args"]["num_steps"]
    counted = res.get("flops")
    if counted:
        gflop = {side: counted[side]["flops_per_iteration"] / 1e9 for side in ("cleanrl", "rlsweep")}
        counts = {side: ", ".join(f"{f / 1e9:,.1f}" for f in counted[side]["per_iteration"]) for side in counted}
        source = (
            f"counted in this run (FlopCounterMode; the mean of {len(counted['rlsweep']['per_iteration'])} "
            f"iteration(s): CleanRL {counts['cleanrl']}, rlsweep {counts['rlsweep']} GFLOP)"
        )
    elif batch == 16 * 128:
        gflop = dict(REVIEWER_GFLOP)
        source = "as the issue's reviewer counted them at 16 x 128 steps (#28); not counted in this run (--flops)"
    else:
        return {}
    out: dict[str, Any] = {
        "gflop_per_iteration": gflop,
        "gflop_per_agent_step": {side: g / batch for side, g in gflop.items()},
        "flop_ratio_rlsweep_over_cleanrl": gflop["rlsweep"] / gflop["cleanrl"],
        "source": source,
    }
    s = res.get("summary")
    if s:
        iters_s = {"cleanrl": s["cleanrl_median_sps"] / batch, "rlsweep": s["rlsweep_median_sps"] / batch}
        out["gflop_per_wall_s"] = {side: gflop[side] * iters_s[side] for side in gflop}
        out["ratio_per_agent_step"] = s["ratio"]
        out["ratio_per_flop"] = s["ratio"] * out["flop_ratio_rlsweep_over_cleanrl"]
        cpu = {side: s.get(f"{side}_median_cpu_s") for side in gflop}
        if all(cpu.values()):
            out["gflop_per_cpu_s"] = {side: gflop[side] / cpu[side] for side in gflop}
    return out


def markdown(res: dict[str, Any]) -> str:
    m, a = res["machine"], res["args"]
    batch = a["num_envs"] * a["num_steps"]
    lines = [
        f"# rlsweep vs CleanRL ppo_rnd_envpool.py: the same agent steps, not the same work ({res['date']})",
        "",
        f"- machine: {m['cpu_model']}, {m['cpu_count']} cores ({m['cpu_affinity']} usable), {m['hostname']}",
        f"- load average at start {res['load_average_start']}, at end {res['load_average_end']}",
        f"- shape: {a['num_envs']} envs x {a['num_steps']} steps = {batch} agent steps per "
        f"iteration, {UPDATE_EPOCHS} epochs x {NUM_MINIBATCHES} minibatches; "
        + (
            f"{a['pairs']} pair(s) of {a['iterations']} measured iterations per run after {a['warmup_iters']} dropped; "
            if a["pairs"]
            else "no timed pairs; "
        )
        + (f"FLOPs counted over {a['flop_iters']} untimed iteration(s) per side; " if a["flops"] else "")
        + f"obs-statistics warm-up {a['obs_norm_init_iters']} iteration(s) of random steps on both sides; "
        f"torch threads {a['threads']} (OMP_NUM_THREADS too)",
        f"- versions: rlsweep side {res['versions'].get('rlsweep')}; CleanRL side {res['versions'].get('cleanrl')}",
        f"- CleanRL: {res['cleanrl_script']} (git {res['cleanrl_commit']}), unmodified; gymnasium->gym adapter "
        f"around envpool.make: {res['gym_adapter']}",
        f"- command: `{' '.join(res['command'])}`",
        f"- note: {res['note'] or '-'}",
        "",
    ]
    s = res.get("summary")
    if s:
        lines += [
            "| pair | CleanRL agent steps/s | rlsweep agent steps/s | ratio | CleanRL CPU-s per iteration "
            "| rlsweep CPU-s per iteration | CleanRL process s | rlsweep process s |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for i, p in enumerate(res["pairs"]):
            c, r = p["cleanrl"], p["rlsweep"]
            lines.append(
                f"| {i + 1} | {c['median_sps']:.1f} | {r['median_sps']:.1f} | "
                f"{r['median_sps'] / c['median_sps']:.2f}x | {_num(c.get('median_cpu_s'))} | "
                f"{_num(r.get('median_cpu_s'))} | {c['wall_s']:.1f} | {r['wall_s']:.1f} |"
            )
        lines += [
            f"| **median** | **{s['cleanrl_median_sps']:.1f}** | **{s['rlsweep_median_sps']:.1f}** | "
            f"**{s['ratio']:.2f}x** | {_num(s.get('cleanrl_median_cpu_s'))} | {_num(s.get('rlsweep_median_cpu_s'))} "
            "| | |",
            "",
            f"Agent steps/s, rlsweep / CleanRL: **{s['ratio']:.2f}x per agent step** (median of all measured "
            f"iterations of each side; median of the per-pair ratios {s['ratio_of_pairs_median']:.2f}x; "
            f"whole-process ratio {s['whole_process_ratio']:.2f}x, which includes start-up and warm-up). "
            "Target: >= 1.3x. Both sides take the same agent steps; they do not do the same work.",
            "",
        ]
    f = res.get("flop_summary")
    if f:
        g = f["gflop_per_iteration"]
        lines += [
            f"Convolutions and matrix products, forward and backward (torch.utils.flop_counter), {f['source']}: "
            f"CleanRL {g['cleanrl']:,.1f} GFLOP per iteration ({f['gflop_per_agent_step']['cleanrl'] * 1e3:.1f} "
            f"MFLOP per agent step), rlsweep {g['rlsweep']:,.1f} "
            f"({f['gflop_per_agent_step']['rlsweep'] * 1e3:.1f} MFLOP per agent step): rlsweep does "
            f"{f['flop_ratio_rlsweep_over_cleanrl']:.2f}x CleanRL's FLOPs per agent step.",
        ]
        if "ratio_per_flop" in f:
            w = f["gflop_per_wall_s"]
            lines += [
                "",
                f"Per FLOP: **{f['ratio_per_flop']:.2f}x** (rlsweep {w['rlsweep']:.1f} GFLOP per second of wall "
                f"clock, CleanRL {w['cleanrl']:.1f}).",
            ]
            if "gflop_per_cpu_s" in f:
                c = f["gflop_per_cpu_s"]
                lines[-1] += (
                    f" Per CPU-second (user + system, all threads): rlsweep {c['rlsweep']:.1f} GFLOP, "
                    f"CleanRL {c['cleanrl']:.1f}: {c['rlsweep'] / c['cleanrl']:.2f}x."
                )
        lines.append("")
    lines += ["Where the two loops differ besides the agent steps (`rlsweep/conf/experiment/cleanrl_rnd.yaml`):", ""]
    lines += [f"- {d}" for d in DIFFERENCES]
    lines.append("")
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def git_commit(path: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def parent(args: argparse.Namespace, overrides: list[str], argv: list[str]) -> None:
    if not (Path(args.cleanrl) / SCRIPT).is_file():
        sys.exit(f"--cleanrl {args.cleanrl}: no {SCRIPT} there")
    machine = machine_info()
    start = dt.datetime.now()
    res: dict[str, Any] = {
        "date": start.isoformat(timespec="seconds"),
        "command": ["python", "benchmarks/vs_cleanrl.py", *argv],
        "note": args.note,
        "machine": machine,
        "load_average_start": list(os.getloadavg()),
        "args": {k: v for k, v in vars(args).items() if k not in ("cleanrl_child", "rlsweep_child")},
        "cleanrl_script": str((Path(args.cleanrl) / SCRIPT).resolve()),
        "cleanrl_commit": git_commit(args.cleanrl),
        "rlsweep_commit": git_commit(str(REPO)),
        "rlsweep_overrides": ["experiment=cleanrl_rnd", *overrides],
        "pairs": [],
    }
    with tempfile.TemporaryDirectory(prefix="vs-cleanrl-") as tmp_name:
        tmp = Path(tmp_name)
        if args.flops:
            print(f"FLOP count, {args.flop_iters} iteration(s) per side, untimed", flush=True)
            res["flops"] = {side: count_side_flops(side, args, overrides, tmp) for side in ("cleanrl", "rlsweep")}
        for i in range(args.pairs):
            print(f"pair {i + 1}/{args.pairs}", flush=True)
            pair = {side: run_pair_side(side, args, overrides, tmp, i) for side in ("cleanrl", "rlsweep")}
            res["pairs"].append(pair)
    res["load_average_end"] = list(os.getloadavg())
    first = res["pairs"][0] if res["pairs"] else res["flops"]
    res["versions"] = {side: first[side]["versions"] for side in ("cleanrl", "rlsweep")}
    res["gym_adapter"] = any(p["cleanrl"]["gym_adapter"] for p in res["pairs"] or [res["flops"]])
    if res["pairs"]:
        c_all = [x for p in res["pairs"] for x in p["cleanrl"]["sps"]]
        r_all = [x for p in res["pairs"] for x in p["rlsweep"]["sps"]]
        c_wall = sum(p["cleanrl"]["wall_s"] for p in res["pairs"])
        r_wall = sum(p["rlsweep"]["wall_s"] for p in res["pairs"])
        c_cpu = [x for p in res["pairs"] for x in p["cleanrl"]["cpu_s"]]
        r_cpu = [x for p in res["pairs"] for x in p["rlsweep"]["cpu_s"]]
        res["summary"] = {
            "cleanrl_median_sps": statistics.median(c_all),
            "rlsweep_median_sps": statistics.median(r_all),
            "ratio": statistics.median(r_all) / statistics.median(c_all),
            "ratio_of_pairs_median": statistics.median(
                p["rlsweep"]["median_sps"] / p["cleanrl"]["median_sps"] for p in res["pairs"]
            ),
            "whole_process_ratio": c_wall / r_wall,
            "cleanrl_median_cpu_s": statistics.median(c_cpu) if c_cpu else None,
            "rlsweep_median_cpu_s": statistics.median(r_cpu) if r_cpu else None,
            "target": 1.3,
        }
    res["flop_summary"] = flop_summary(res)
    res["differences"] = DIFFERENCES
    out = (
        Path(args.out)
        if args.out
        else REPO / "benchmarks" / "results" / f"cpu-{os.cpu_count()}core-{start.date().isoformat()}-vs-cleanrl"
        f"{'' if args.pairs else '-flops'}"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cleanrl", help="path to a CleanRL checkout (holds cleanrl/ppo_rnd_envpool.py)")
    p.add_argument("--cleanrl-python", help="python of a venv that runs CleanRL's script")
    pairs = "CleanRL + rlsweep runs, interleaved (default 3; 0 with --flops: count only)"
    p.add_argument("--pairs", type=int, default=3, help=pairs)
    p.add_argument("--iterations", type=int, default=12, help="measured iterations per run (default 12)")
    p.add_argument("--warmup-iters", type=int, default=2, help="iterations dropped per run (default 2, at least 1)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads, both sides")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--num-steps", type=int, default=128)
    warm = "observation-statistics warm-up, in iterations of random steps (CleanRL's default 50)"
    p.add_argument("--obs-norm-init-iters", type=int, default=1, help=warm)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="result path without suffix (default benchmarks/results/cpu-Ncore-<date>-vs-cleanrl)")
    p.add_argument("--note", default="", help="free text for the result file (what else ran)")
    p.add_argument(
        "--flops",
        action="store_true",
        help="first count each side's FLOPs per iteration (convolutions and matrix products, forward and backward;\n"
        "torch.utils.flop_counter) in one untimed child per side; the result then gives the ratio per FLOP too",
    )
    p.add_argument("--flop-iters", type=int, default=2, help="iterations of each counting child (default 2; "
                   "their mean is reported)")  # fmt: skip
    p.add_argument("--cleanrl-child", help=argparse.SUPPRESS)
    p.add_argument("--rlsweep-child", help=argparse.SUPPRESS)
    p.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("rest", nargs="*", help="after --: Hydra overrides for the rlsweep side")
    args = p.parse_args(argv)
    if args.warmup_iters < 1:
        p.error("--warmup-iters must be >= 1 (the first iteration has no gap to measure)")
    if args.pairs < 0 or (args.pairs == 0 and not args.flops):
        p.error("--pairs must be >= 1 (or 0 with --flops: count the FLOPs only)")
    if args.flop_iters < 1:
        p.error("--flop-iters must be >= 1")
    if not args.cleanrl_child and not args.rlsweep_child and not (args.cleanrl and args.cleanrl_python):
        p.error("--cleanrl and --cleanrl-python are required")
    return args, list(args.rest)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args, rest = parse_args(argv)
    if args.cleanrl_child:
        cleanrl_child(args.cleanrl_child, rest, args.threads, args.count_flops)
    elif args.rlsweep_child:
        rlsweep_child(args.rlsweep_child, args.threads, args.iterations, rest, args.count_flops)
    else:
        parent(args, rest, argv)


if __name__ == "__main__":
    main()
