"""Procgen through envpool against the procgen package: same seed, same actions, same game?

rlsweep's Procgen games came from procgen-mirror 0.10.7 (gym3, numpy < 2) and now come from envpool. This
script plays both with one fixed action sequence per env and compares, step by step, what a training loop
sees: the observation, the reward and the episode end (same-step view: on the step that ends an episode the
observation is the next episode's first).

It runs in two environments, because procgen-mirror cannot live beside numpy 2::

    # 1. the procgen side, in a throwaway venv (Python 3.11)
    python3 -m venv /tmp/procgen-venv && /tmp/procgen-venv/bin/pip install procgen-mirror==0.10.7
    /tmp/procgen-venv/bin/python benchmarks/procgen_equivalence.py record procgen --out /tmp/pgeq
    # ... and again with procgen drawing through the system's Qt 5 instead of its bundled Qt 5.9
    /tmp/procgen-venv/bin/python benchmarks/procgen_equivalence.py record procgen --system-qt --out /tmp/pgeq
    # 2. the envpool side, in rlsweep's venv, then the comparison
    python benchmarks/procgen_equivalence.py record envpool --out /tmp/pgeq
    python benchmarks/procgen_equivalence.py compare /tmp/pgeq --results benchmarks/results/<name>
    # speed, one JSON line per call: run the two backends' calls interleaved on an idle machine
    /tmp/procgen-venv/bin/python benchmarks/procgen_equivalence.py speed procgen --game coinrun --mode easy
    python benchmarks/procgen_equivalence.py speed envpool --game coinrun --mode easy

``--system-qt`` copies the procgen package to a temporary folder and points its bundled Qt libraries at the
system's ``libQt5Core.so.5`` / ``libQt5Gui.so.5`` (the ones envpool uses), to tell the Qt version's part in any
difference from the games' part. Observations are compared through per-frame hashes; frames of the first 50
steps and of every episode end are kept to count differing pixels. Steps/s go to the JSON only: this is an
identity check, not a speed measurement.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

GAMES = ("caveflyer", "climber", "coinrun", "jumper")  # the SND paper's Procgen games
MODES = ("exploration", "easy")  # the paper's mode, and one where the level sequence depends on the seed
NUM_ACTIONS = 15


def _digest(frames: np.ndarray) -> np.ndarray:
    return np.array([hashlib.md5(np.ascontiguousarray(f).tobytes()).digest() for f in frames], dtype="S16")


def _procgen_with_system_qt() -> None:
    """Import procgen from a copy whose bundled Qt 5.9 libraries are links to the system's Qt 5."""
    spec = importlib.util.find_spec("procgen")
    assert spec is not None and spec.origin is not None, "procgen is not installed here"
    site = Path(spec.origin).parent.parent
    copy = Path(tempfile.mkdtemp(prefix="procgen-system-qt-"))
    shutil.copytree(site / "procgen", copy / "procgen")
    shutil.copytree(site / "procgen_mirror.libs", copy / "procgen_mirror.libs")
    for lib in (copy / "procgen_mirror.libs").glob("libQt5*"):
        kind = "Gui" if "Gui" in lib.name else "Core"
        lib.unlink()
        lib.symlink_to(f"/usr/lib/x86_64-linux-gnu/libQt5{kind}.so.5")
    sys.path.insert(0, str(copy))


def record(backend: str, game: str, mode: str, num_envs: int, steps: int, seed: int) -> dict[str, Any]:
    actions = np.random.default_rng(1234).integers(0, NUM_ACTIONS, size=(steps, num_envs)).astype(np.int32)
    hashes = np.zeros((steps + 1, num_envs), dtype="S16")
    rewards = np.zeros((steps, num_envs), dtype=np.float32)
    dones = np.zeros((steps, num_envs), dtype=bool)
    kept: dict[int, np.ndarray] = {}
    start = time.perf_counter()
    if backend == "procgen":
        import procgen

        env = procgen.ProcgenGym3Env(num=num_envs, env_name=game, distribution_mode=mode, rand_seed=seed)
        _, obs, _ = env.observe()
        frames = obs["rgb"].transpose(0, 3, 1, 2)
        hashes[0], kept[0] = _digest(frames), frames.copy()
        for t in range(steps):
            env.act(actions[t])
            reward, obs, first = env.observe()
            frames = obs["rgb"].transpose(0, 3, 1, 2)
            rewards[t], dones[t], hashes[t + 1] = reward, first, _digest(frames)
            if t < 50 or first.any():
                kept[t + 1] = frames.copy()
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from rlsweep.envs.pool import SameStepPool, import_envpool
        from rlsweep.envs.procgen import envpool_id

        env = import_envpool().make(envpool_id(f"procgen-{game}", mode), env_type="gymnasium", num_envs=num_envs,
                                    seed=seed)  # fmt: skip
        pool = SameStepPool(env, num_envs)
        frames, _ = pool.reset()
        hashes[0], kept[0] = _digest(frames), frames.copy()
        for t in range(steps):
            pool.send(actions[t])
            _, frames, reward, over, _ = pool.recv()
            if over.any():
                ids, first_frames, _ = pool.reset_envs(np.flatnonzero(over))
                frames[ids] = first_frames
            rewards[t], dones[t], hashes[t + 1] = reward, over, _digest(frames)
            if t < 50 or over.any():
                kept[t + 1] = frames.copy()
    seconds = time.perf_counter() - start
    order = sorted(kept)
    return {
        "hashes": hashes, "rewards": rewards, "dones": dones, "kept_steps": np.array(order),
        "kept": np.stack([kept[k] for k in order]), "steps_per_s": np.array(num_envs * steps / seconds),
    }  # fmt: skip


def speed(backend: str, game: str, mode: str, num_envs: int, steps: int) -> float:
    """Agent steps/s of plain stepping with uniform random actions, two worker threads, after a warm-up."""
    actions = np.random.default_rng(0).integers(0, NUM_ACTIONS, size=(steps, num_envs)).astype(np.int32)
    if backend == "procgen":
        import procgen

        env = procgen.ProcgenGym3Env(num=num_envs, env_name=game, distribution_mode=mode, rand_seed=0, num_threads=2)

        def step(a: np.ndarray) -> None:
            env.act(a)
            env.observe()
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from rlsweep.envs.pool import import_envpool
        from rlsweep.envs.procgen import envpool_id

        # envpool's own next-step autoreset: plain stepping, as procgen's is.
        pool = import_envpool().make(envpool_id(f"procgen-{game}", mode), env_type="gymnasium", num_envs=num_envs,
                                     num_threads=2, seed=0)  # fmt: skip
        pool.reset()

        def step(a: np.ndarray) -> None:
            pool.step(a)

    for a in actions[:50]:
        step(a)
    start = time.perf_counter()
    for a in actions:
        step(a)
    return num_envs * steps / (time.perf_counter() - start)


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def compare_pair(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, Any]:
    same = a["hashes"] == b["hashes"]
    ka, kb = list(a["kept_steps"]), list(b["kept_steps"])
    pixels: list[int] = []
    max_abs = 0
    for t in sorted(set(ka) & set(kb)):
        diff = np.abs(a["kept"][ka.index(t)].astype(np.int16) - b["kept"][kb.index(t)].astype(np.int16))
        pixels += (diff.max(axis=1) > 0).reshape(len(diff), -1).sum(axis=1).tolist()
        max_abs = max(max_abs, int(diff.max()))
    return {
        "frames": int(same.size),
        "frames_identical": float(same.mean()),
        "rewards_identical": bool(np.array_equal(a["rewards"], b["rewards"])),
        "episode_ends_identical": bool(np.array_equal(a["dones"], b["dones"])),
        "episodes": [int(a["dones"].sum()), int(b["dones"].sum())],
        "reward_sums": [float(a["rewards"].sum()), float(b["rewards"].sum())],
        "pixels_differing_per_frame_mean": float(np.mean(pixels)) if pixels else 0.0,
        "pixels_differing_per_frame_max": int(max(pixels)) if pixels else 0,
        "max_abs_pixel_difference": max_abs,
        "steps_per_s": [float(a["steps_per_s"]), float(b["steps_per_s"])],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="play every game and mode with the fixed actions; save .npz files")
    rec.add_argument("backend", choices=("procgen", "envpool"))
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--system-qt", action="store_true", help="procgen only: draw with the system's Qt 5")
    rec.add_argument("--envs", type=int, default=8)
    rec.add_argument("--steps", type=int, default=2000)
    rec.add_argument("--seed", type=int, default=0)
    spd = sub.add_parser("speed", help="steps/s of one backend with random actions (run the two interleaved)")
    spd.add_argument("backend", choices=("procgen", "envpool"))
    spd.add_argument("--game", default="coinrun")
    spd.add_argument("--mode", default="easy")
    spd.add_argument("--envs", type=int, default=64)
    spd.add_argument("--steps", type=int, default=1000)
    cmp = sub.add_parser("compare", help="compare the recordings in a folder; write <results>.json and .md")
    cmp.add_argument("folder", type=Path)
    cmp.add_argument("--results", type=Path, required=True, help="path stem for the .json and .md")
    args = parser.parse_args(argv)

    if args.command == "speed":
        print(json.dumps({"backend": args.backend, "game": args.game, "mode": args.mode, "envs": args.envs,
                          "steps_per_s": speed(args.backend, args.game, args.mode, args.envs, args.steps),
                          "load_average": list(os.getloadavg())}))  # fmt: skip
        return 0
    if args.command == "record":
        tag = args.backend + ("-system-qt" if args.system_qt else "")
        if args.system_qt:
            if args.backend != "procgen":
                parser.error("--system-qt is for the procgen backend")
            _procgen_with_system_qt()
        args.out.mkdir(parents=True, exist_ok=True)
        for mode in MODES:
            for game in GAMES:
                data = record(args.backend, game, mode, args.envs, args.steps, args.seed)
                np.savez_compressed(args.out / f"{tag}-{game}-{mode}.npz", **data)
                print(f"{tag} {game} {mode}: {float(data['steps_per_s']):.0f} steps/s, "
                      f"{int(data['dones'].sum())} episodes")  # fmt: skip
        return 0

    rows = []
    for mode in MODES:
        for game in GAMES:
            envpool_run = _load(args.folder / f"envpool-{game}-{mode}.npz")
            for tag in ("procgen", "procgen-system-qt"):
                path = args.folder / f"{tag}-{game}-{mode}.npz"
                if path.exists():
                    rows.append({"game": game, "mode": mode, "procgen": tag} | compare_pair(_load(path), envpool_run))
    machine = {"machine": platform.machine(), "cpus": os.cpu_count(), "load_average": list(os.getloadavg())}
    args.results.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    lines = [
        "| game | mode | procgen drawn with | frames identical | rewards | episode ends | episodes | "
        "differing pixels per frame (mean / max of 4096) | max abs diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        qt = "system Qt 5.15" if r["procgen"].endswith("system-qt") else "bundled Qt 5.9"
        same = lambda ok: "identical" if ok else "DIFFER"  # noqa: E731
        lines.append(
            f"| {r['game']} | {r['mode']} | {qt} | {100 * r['frames_identical']:.1f} % of {r['frames']} | "
            f"{same(r['rewards_identical'])} | {same(r['episode_ends_identical'])} | {r['episodes'][0]} | "
            f"{r['pixels_differing_per_frame_mean']:.2f} / {r['pixels_differing_per_frame_max']} | "
            f"{r['max_abs_pixel_difference']} |"
        )
    args.results.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
