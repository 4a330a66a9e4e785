"""rlsweep against CleanRL's ``ppo_rnd_envpool.py`` at identical work, interleaved on one machine in one run.

Both sides train PPO + RND on Montezuma's Revenge with the same shape: CleanRL's networks and observation
(rlsweep: ``experiment=cleanrl_rnd``, i.e. ``model=cleanrl``, ``motivation.network=cleanrl``,
84x84 frames), ``--num-envs`` x ``--num-steps`` agent steps per iteration, 4 epochs x 4 minibatches,
the same torch threads. Nothing is fetched: ``--cleanrl`` is a CleanRL checkout, ``--cleanrl-python`` the python
of a venv that runs it (torch, envpool, gym 0.26, tyro, tensorboard). Each run is its own process; the pairs run
CleanRL, rlsweep, CleanRL, rlsweep, ...

Measured the same way for both: the parent stamps every line a child prints, and an iteration's time is the gap
between two consecutive end-of-iteration lines (CleanRL prints ``SPS: ...`` after each update, rlsweep its console
line, ``logger.console_every=1``); agent steps/s = num_envs * num_steps / gap. The first ``--warmup-iters``
iterations are dropped (the first has no gap anyway). The whole process's wall time is recorded too (it includes
start-up and the observation-statistics warm-up, ``--obs-norm-init-iters`` iterations of random steps on both
sides, and CleanRL's warm-up is slow Python).

CleanRL's script runs unmodified from the checkout, through ``runpy``. With envpool >= 1.0, ``env_type="gym"``
returns a gymnasium-API pool (``reset`` -> (obs, info), 5-tuple ``step``, gymnasium spaces, read-only
``num_envs``), which the script predates; the child then wraps ``envpool.make``'s result in the old gym API
(:class:`_OldGymAPI`: the same pool, ``done = terminated | truncated``, gym spaces). That adapter is the only thing
between the script and envpool, and the result file says whether it was used.

    python benchmarks/vs_cleanrl.py --cleanrl /tmp/cleanrl --cleanrl-python /tmp/cleanrl-venv/bin/python \\
        --pairs 3 --iterations 12 --warmup-iters 2 --threads 2

Extra arguments after ``--`` are Hydra overrides for the rlsweep side (they must not change the work, or the
ratio means nothing). The module imports only the standard library at the top: the CleanRL child runs it with
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
CLEANRL_ITER = re.compile(r"^SPS: (\d+)")
RLSWEEP_ITER = re.compile(r"\] it (\d+)/(\d+) .*sps (\d+)")
UPDATE_EPOCHS = 4
NUM_MINIBATCHES = 4


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


def cleanrl_child(script: str, script_args: list[str], threads: int) -> None:
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
    runpy.run_path(script, run_name="__main__")


def rlsweep_child(run_dir: str, threads: int, iterations: int, overrides: list[str]) -> None:
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
    train(cfg, Path(run_dir), info)


# ---- parent ------------------------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    from throughput import host_info  # benchmarks/throughput.py: stdlib only at import, so the children never load it

    return {**host_info(), "platform": platform.platform()}


def run_child(cmd: list[str], env: dict[str, str], cwd: str, pattern: re.Pattern[str], log: Path) -> dict[str, Any]:
    """Start ``cmd``, stamp its stdout lines as they arrive, return the end-of-iteration stamps and the wall time."""
    load_before = list(os.getloadavg())
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    stamps: list[float] = []
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
                reported.append(float(m.groups()[-1]))
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


def run_pair_side(side: str, args: argparse.Namespace, overrides: list[str], tmp: Path, index: int) -> dict[str, Any]:
    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    me = str(Path(__file__).resolve())
    iters = args.warmup_iters + args.iterations
    batch = args.num_envs * args.num_steps
    work = tmp / f"{side}-{index}"
    work.mkdir()
    log = tmp / f"{side}-{index}.log"
    if side == "cleanrl":
        script = str((Path(args.cleanrl) / SCRIPT).resolve())
        script_args = [
            "--seed", str(args.seed), "--no-cuda", "--num-envs", str(args.num_envs),
            "--num-steps", str(args.num_steps), "--total-timesteps", str(iters * batch),
            "--update-epochs", str(UPDATE_EPOCHS), "--num-minibatches", str(NUM_MINIBATCHES),
            "--num-iterations-obs-norm-init", str(args.obs_norm_init_iters),
        ]  # fmt: skip
        cmd = [args.cleanrl_python, me, "--cleanrl-child", script, "--threads", threads, "--", *script_args]
        result = run_child(cmd, env, str(work), CLEANRL_ITER, log)
    else:
        shape = [
            f"seed={args.seed}",
            f"ppo.num_envs={args.num_envs}",
            f"ppo.num_steps={args.num_steps}",
            f"ppo.update_epochs={UPDATE_EPOCHS}",
            f"ppo.minibatch_size={batch // NUM_MINIBATCHES}",
            f"motivation.warmup_steps={args.obs_norm_init_iters * args.num_steps}",
        ]
        cmd = [sys.executable, me, "--rlsweep-child", str(work), "--threads", threads, "--iterations", str(iters)]
        cmd += ["--", *shape, *overrides]
        result = run_child(cmd, env, str(REPO), RLSWEEP_ITER, log)
    if len(result["stamps"]) != iters:
        raise RuntimeError(f"{side}: expected {iters} iteration lines, saw {len(result['stamps'])} (log: {log})")
    result["sps"] = per_iteration_sps(result.pop("stamps"), batch, args.warmup_iters)
    result["median_sps"] = statistics.median(result["sps"])
    result["whole_process_sps"] = iters * batch / result["wall_s"]
    result["log_tail"] = log.read_text().splitlines()[-3:]
    print(
        f"  {side:8s} run {index + 1}: median {result['median_sps']:.1f} agent steps/s over {len(result['sps'])} "
        f"iterations (whole process {result['wall_s']:.1f} s; load {result['load_average_before'][0]:.2f})",
        flush=True,
    )
    return result


def markdown(res: dict[str, Any]) -> str:
    m, a = res["machine"], res["args"]
    lines = [
        f"# rlsweep vs CleanRL ppo_rnd_envpool.py, identical work ({res['date']})",
        "",
        f"- machine: {m['cpu_model']}, {m['cpu_count']} cores ({m['cpu_affinity']} usable), {m['hostname']}",
        f"- load average at start {res['load_average_start']}, at end {res['load_average_end']}",
        f"- shape: {a['num_envs']} envs x {a['num_steps']} steps = {a['num_envs'] * a['num_steps']} agent steps per "
        f"iteration, {UPDATE_EPOCHS} epochs x {NUM_MINIBATCHES} minibatches; {a['iterations']} measured iterations "
        f"per run after {a['warmup_iters']} dropped; obs-statistics warm-up {a['obs_norm_init_iters']} iteration(s) "
        f"of random steps on both sides; torch threads {a['threads']} (OMP_NUM_THREADS too)",
        f"- versions: rlsweep side {res['versions'].get('rlsweep')}; CleanRL side {res['versions'].get('cleanrl')}",
        f"- CleanRL: {res['cleanrl_script']} (git {res['cleanrl_commit']}), unmodified; gymnasium->gym adapter "
        f"around envpool.make: {res['gym_adapter']}",
        f"- command: `{' '.join(res['command'])}`",
        f"- note: {res['note'] or '-'}",
        "",
        "| pair | CleanRL agent steps/s | rlsweep agent steps/s | ratio | CleanRL process s | rlsweep process s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for i, p in enumerate(res["pairs"]):
        c, r = p["cleanrl"], p["rlsweep"]
        lines.append(
            f"| {i + 1} | {c['median_sps']:.1f} | {r['median_sps']:.1f} | {r['median_sps'] / c['median_sps']:.2f}x "
            f"| {c['wall_s']:.1f} | {r['wall_s']:.1f} |"
        )
    s = res["summary"]
    lines += [
        f"| **median** | **{s['cleanrl_median_sps']:.1f}** | **{s['rlsweep_median_sps']:.1f}** | "
        f"**{s['ratio']:.2f}x** | | |",
        "",
        f"Ratio rlsweep / CleanRL: **{s['ratio']:.2f}x** (median of all measured iterations of each side; median of "
        f"the per-pair ratios {s['ratio_of_pairs_median']:.2f}x; whole-process ratio {s['whole_process_ratio']:.2f}x, "
        "which includes start-up and warm-up). Target: >= 1.3x.",
        "",
    ]
    return "\n".join(lines)


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
        for i in range(args.pairs):
            print(f"pair {i + 1}/{args.pairs}", flush=True)
            pair = {side: run_pair_side(side, args, overrides, tmp, i) for side in ("cleanrl", "rlsweep")}
            res["pairs"].append(pair)
    res["load_average_end"] = list(os.getloadavg())
    res["versions"] = {side: res["pairs"][0][side]["versions"] for side in ("cleanrl", "rlsweep")}
    res["gym_adapter"] = any(p["cleanrl"]["gym_adapter"] for p in res["pairs"])
    c_all = [x for p in res["pairs"] for x in p["cleanrl"]["sps"]]
    r_all = [x for p in res["pairs"] for x in p["rlsweep"]["sps"]]
    c_wall = sum(p["cleanrl"]["wall_s"] for p in res["pairs"])
    r_wall = sum(p["rlsweep"]["wall_s"] for p in res["pairs"])
    res["summary"] = {
        "cleanrl_median_sps": statistics.median(c_all),
        "rlsweep_median_sps": statistics.median(r_all),
        "ratio": statistics.median(r_all) / statistics.median(c_all),
        "ratio_of_pairs_median": statistics.median(
            p["rlsweep"]["median_sps"] / p["cleanrl"]["median_sps"] for p in res["pairs"]
        ),
        "whole_process_ratio": c_wall / r_wall,
        "target": 1.3,
    }
    out = (
        Path(args.out)
        if args.out
        else REPO / "benchmarks" / "results" / (f"cpu-{os.cpu_count()}core-{start.date().isoformat()}-vs-cleanrl")
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
    p.add_argument("--pairs", type=int, default=3, help="CleanRL + rlsweep runs, interleaved (default 3)")
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
    p.add_argument("--cleanrl-child", help=argparse.SUPPRESS)
    p.add_argument("--rlsweep-child", help=argparse.SUPPRESS)
    p.add_argument("rest", nargs="*", help="after --: Hydra overrides for the rlsweep side")
    args = p.parse_args(argv)
    if args.warmup_iters < 1:
        p.error("--warmup-iters must be >= 1 (the first iteration has no gap to measure)")
    if not args.cleanrl_child and not args.rlsweep_child and not (args.cleanrl and args.cleanrl_python):
        p.error("--cleanrl and --cleanrl-python are required")
    return args, list(args.rest)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args, rest = parse_args(argv)
    if args.cleanrl_child:
        cleanrl_child(args.cleanrl_child, rest, args.threads)
    elif args.rlsweep_child:
        rlsweep_child(args.rlsweep_child, args.threads, args.iterations, rest)
    else:
        parent(args, rest, argv)


if __name__ == "__main__":
    main()
