"""The machine's emulation limit: agent steps per second of Atari alone, random actions, all cores.

No network, no learning: the most any number of training runs on this machine can step together (issue #13's
"80 % of the box's emulation limit" is measured against this). Three ways, each for ``--seconds``:

* ``envpool sync``: envpool's own vectorised env with the seed's settings (96x96 grey, 4 frames, frame skip 4,
  sticky actions 0.25, 4,500-step episodes), ``--num-envs`` envs stepped together by ``--threads`` threads;
* ``envpool async``: the same with envpool's asynchronous mode (``batch_size`` = half the envs: the step
  returns as soon as half are done, the others keep emulating), its highest-throughput way;
* ``rlsweep AtariEnv``: rlsweep's wrapper on top (same-step autoreset, binary reward, room counting), as the
  training loop steps it.

    python benchmarks/emulation_limit.py --num-envs 128 --seconds 15 --out benchmarks/results/<name>
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

SEED_SETTINGS = {
    "img_height": 96,
    "img_width": 96,
    "stack_num": 4,
    "gray_scale": True,
    "frame_skip": 4,
    "repeat_action_probability": 0.25,
    "max_episode_steps": 4500,
    "episodic_life": False,
    "reward_clip": False,
}


def _timed(step: Any, num_actions: int, batch: int, seconds: float, rng: np.random.Generator) -> dict[str, float]:
    """Call ``step(actions)`` until ``seconds`` have passed (after 20 warm-up calls); agent steps per second."""
    for _ in range(20):
        step(rng.integers(0, num_actions, size=batch))
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        step(rng.integers(0, num_actions, size=batch))
        n += 1
    return {"calls": n, "seconds": elapsed, "agent_steps_per_s": n * batch / elapsed}


def envpool_sync(env_id: str, num_envs: int, threads: int, seconds: float) -> dict[str, float]:
    from rlsweep.envs.pool import import_envpool

    envpool = import_envpool()
    env = envpool.make(env_id, env_type="gymnasium", num_envs=num_envs, num_threads=threads, seed=0, **SEED_SETTINGS)
    env.reset()
    result = _timed(env.step, int(env.action_space.n), num_envs, seconds, np.random.default_rng(0))
    env.close()
    return result


def envpool_async(env_id: str, num_envs: int, threads: int, seconds: float) -> dict[str, float]:
    from rlsweep.envs.pool import import_envpool

    envpool = import_envpool()
    batch = max(1, num_envs // 2)
    env = envpool.make(
        env_id, env_type="gymnasium", num_envs=num_envs, batch_size=batch, num_threads=threads, seed=0,
        **SEED_SETTINGS,
    )  # fmt: skip
    env.async_reset()
    ids = [env.recv()[-1]["env_id"]]

    def step(actions: np.ndarray) -> None:
        env.send(actions, ids[0])
        ids[0] = env.recv()[-1]["env_id"]

    result = _timed(step, int(env.action_space.n), batch, seconds, np.random.default_rng(0))
    env.close()
    return result


def rlsweep_atari(env_id: str, num_envs: int, threads: int, seconds: float) -> dict[str, float]:
    from rlsweep.envs.atari import AtariEnv

    env = AtariEnv(env_id, num_envs, 0, num_threads=threads)
    env.reset()
    result = _timed(env.step, env.num_actions, num_envs, seconds, np.random.default_rng(0))
    env.close()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-id", default="MontezumaRevenge-v5")
    p.add_argument("--num-envs", type=int, default=128, help="the seed's 128 by default")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="envpool threads (default: all cores)")
    p.add_argument("--seconds", type=float, default=15.0, help="measured time per way")
    p.add_argument("--out", type=Path, required=True, help="path stem for the .json and .md")
    args = p.parse_args(argv)

    load = list(os.getloadavg())
    ways = {"envpool sync": envpool_sync, "envpool async": envpool_async, "rlsweep AtariEnv": rlsweep_atari}
    results = {}
    for name, fn in ways.items():
        results[name] = fn(args.env_id, args.num_envs, args.threads, args.seconds)
        print(f"{name}: {results[name]['agent_steps_per_s']:.0f} agent steps/s", flush=True)
    from throughput import host_info

    machine = {**host_info(), "machine": platform.machine(), "load_average_start": load,
               "load_average_end": list(os.getloadavg())}  # fmt: skip
    setup = {"env_id": args.env_id, "num_envs": args.num_envs, "threads": args.threads, **SEED_SETTINGS}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(
        json.dumps({"machine": machine, "setup": setup, "results": results}, indent=1) + "\n"
    )
    lines = [
        f"Emulation limit: {args.env_id}, {args.num_envs} envs, {args.threads} threads, random actions, "
        f"{args.seconds:g} s each; {machine['cpu_count']} cores ({machine['cpu_model']}), "
        f"load {load[0]:.2f} at the start",
        "",
        "| way | agent steps/s |",
        "|---|---|",
        *[f"| {name} | {r['agent_steps_per_s']:.0f} |" for name, r in results.items()],
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
