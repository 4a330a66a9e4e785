"""The measurements behind the CPU learning check on real Atari (experiment=atari_check).

Trains ``experiment=atari_check`` (plain PPO on Road Runner, 32 k agent steps) for several seeds, each a real
``python sweep.py`` process, and plays a uniformly random policy through the same env settings (rlsweep's
AtariEnv, same frame skip, sticky actions and 500-step episodes) for the same number of steps and seeds. The
statistic is the one tests/integration/test_atari_learning.py asserts: the mean raw score of the episodes that
end in the second half of the run (after 16,384 agent steps), weighted by episode. Writes a table and a JSON::

    python benchmarks/atari_learning_check.py --seeds 5 --random-seeds 8 --results benchmarks/results/<name>

``--sweeps DIR [DIR ...]`` instead reads sweeps of ``experiment=atari_check`` that set switches against each other
(``python sweep.py -m experiment=atari_check "seed=range(1,17)" perf.autocast=none,bf16``) and writes the same
statistic per configuration, seed by seed, with a paired Wilcoxon signed-rank test of each configuration against
the first over their common seeds: does a switch that changes numbers change learning? (``rlsweep report`` on the
same directories gives the bootstrap CIs and the pictures.)::

    python benchmarks/atari_learning_check.py --sweeps sweeps/a sweeps/b --results benchmarks/results/<name>
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def second_half_score(rows: list[dict[str, Any]], total_steps: int) -> tuple[float, int]:
    """Episode-weighted mean ``episode/score`` of the log lines after half the run, and the episode count."""
    late = [r for r in rows if r["global_step"] > total_steps // 2 and r.get("episode/count")]
    count = sum(r["episode/count"] for r in late)
    return sum(r["episode/score"] * r["episode/count"] for r in late) / max(count, 1), int(count)


def trained(seed: int, work: Path, device: str = "cpu") -> dict[str, Any]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(REPO / "sweep.py"), "experiment=atari_check", f"seed={seed}", "logger=none",
         f"device={device}"],
        cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"seed {seed} failed:\n{done.stderr[-2000:]}")
    (run_json,) = work.glob("runs/*/run.json")
    rows = [json.loads(line) for line in (run_json.parent / "metrics.jsonl").read_text().splitlines()]
    total = rows[-1]["global_step"]
    score, episodes = second_half_score(rows, total)
    sps = float(np.median([r["perf/sps"] for r in rows if "perf/sps" in r]))
    return {"seed": seed, "score": score, "episodes": episodes, "wall_s": wall, "steps_per_s": sps, "steps": total}


def random_policy(seed: int, env_cfg: Any, total_steps: int, num_envs: int) -> dict[str, Any]:
    from rlsweep.envs import make_env

    env = make_env(env_cfg, num_envs, seed)
    env.reset()
    rng = np.random.default_rng(seed + 1000)
    late: list[float] = []
    for t in range(total_steps // num_envs):
        result = env.step(rng.integers(0, env.num_actions, size=num_envs))
        if (t + 1) * num_envs > total_steps // 2:
            late += [e.score for e in result.episodes]
    env.close()
    return {"seed": seed, "score": float(np.mean(late)), "episodes": len(late)}


def compare_sweeps(sweep_dirs: list[Path], results: Path, baseline: str | None = None) -> None:
    """Second-half scores per configuration of the given sweeps, seed by seed, each against ``baseline`` (a
    configuration name as ``rlsweep report`` shows it; default the first in name order)."""
    from scipy.stats import wilcoxon

    from rlsweep.analysis.load import load_sweep

    data = load_sweep(sweep_dirs)
    scores: dict[str, dict[int, float]] = {}
    for run in data.runs.itertuples():
        rows = [json.loads(line) for line in (Path(run.run_dir) / "metrics.jsonl").read_text().splitlines()]
        if run.status == "completed" and rows:
            scores.setdefault(str(run.name), {})[int(run.seed)] = second_half_score(rows, int(run.total_steps))[0]
    if baseline is not None and baseline not in scores:
        raise SystemExit(f"--baseline {baseline!r} is none of the configurations: {', '.join(sorted(scores))}")
    names = sorted(scores, key=lambda n: (n != (baseline or min(scores)), n))
    seeds = sorted({s for per in scores.values() for s in per})
    lines = [
        f"# The CPU learning check, switch against switch ({time.strftime('%Y-%m-%d')})",
        "",
        f"`python benchmarks/atari_learning_check.py {' '.join(sys.argv[1:])}` on {platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}. Statistic: the mean raw score of the "
        "episodes that end in the second half of each run (the CPU test's statistic), per seed.",
        "",
        "| seed | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    lines += [f"| {s} | " + " | ".join(f"{scores[n][s]:.1f}" if s in scores[n] else "–" for n in names) + " |"
              for s in seeds]  # fmt: skip
    for label, stat in (("mean", np.mean), ("median", np.median)):
        lines.append(f"| {label} | " + " | ".join(f"{stat(list(scores[n].values())):.1f}" for n in names) + " |")
    tests = {}
    first = names[0]
    for name in names[1:]:
        common = sorted(set(scores[first]) & set(scores[name]))
        a, b = np.array([scores[first][s] for s in common]), np.array([scores[name][s] for s in common])
        same = bool(np.all(a == b))
        p = 1.0 if same else float(wilcoxon(a, b).pvalue)
        tests[name] = {"seeds": common, "higher": int((b > a).sum()), "lower": int((b < a).sum()), "p": p,
                       "identical": same}  # fmt: skip
        lines.append(f"\n{name} against {first}, seeds {common[0]}–{common[-1]}: "
                     + ("the same score for every seed" if same else
                        f"higher for {tests[name]['higher']}, lower for {tests[name]['lower']} of {len(common)} "
                        f"seeds; Wilcoxon signed-rank p = {p:.2f}"))  # fmt: skip
    results.with_suffix(".json").write_text(json.dumps({"sweeps": [str(d) for d in sweep_dirs], "scores": scores,
                                                        "tests": tests}, indent=1) + "\n")  # fmt: skip
    results.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--random-seeds", type=int, default=8)
    parser.add_argument("--results", type=Path, required=True, help="path stem for the .json and .md")
    parser.add_argument("--device", default="cpu", help="the trained runs' device (cuda on the GPU check)")
    parser.add_argument("--sweeps", type=Path, nargs="+", help="compare the configurations of these sweeps instead")
    parser.add_argument("--baseline", help="with --sweeps: the configuration the others are set against")
    args = parser.parse_args(argv)
    if args.sweeps:
        compare_sweeps(args.sweeps, args.results, args.baseline)
        return 0

    from types import SimpleNamespace

    from rlsweep.launching.plan import compose_point

    cfg = compose_point(["experiment=atari_check"])
    env_cfg = SimpleNamespace(**cfg["env"])
    total, num_envs = int(cfg["budget"]["total_steps"]), int(cfg["ppo"]["num_envs"])
    load_start = list(os.getloadavg())
    runs = []
    for seed in range(1, args.seeds + 1):
        with tempfile.TemporaryDirectory() as work:
            runs.append(trained(seed, Path(work), args.device))
        print(f"trained seed {seed}: {runs[-1]}", flush=True)
    randoms = [random_policy(seed, env_cfg, total, num_envs) for seed in range(1, args.random_seeds + 1)]
    for r in randoms:
        print(f"random seed {r['seed']}: {r}", flush=True)

    machine = {"machine": platform.machine(), "cpus": os.cpu_count(), "load_average_start": load_start,
               "load_average_end": list(os.getloadavg()), "device": args.device}  # fmt: skip
    args.results.with_suffix(".json").write_text(
        json.dumps({"machine": machine, "total_steps": total, "trained": runs, "random": randoms}, indent=1) + "\n"
    )
    lines = ["| policy | seed | score, 2nd half | episodes | wall s | agent steps/s |", "|---|---|---|---|---|---|"]
    lines += [
        f"| PPO | {r['seed']} | {r['score']:.1f} | {r['episodes']} | {r['wall_s']:.0f} | {r['steps_per_s']:.0f} |"
        for r in runs
    ]
    lines += [f"| random | {r['seed']} | {r['score']:.1f} | {r['episodes']} | | |" for r in randoms]
    ppo, rand = [x["score"] for x in runs], [x["score"] for x in randoms]
    lines += ["", f"PPO ({args.device}): min {min(ppo):.1f}, mean {np.mean(ppo):.1f}, max {max(ppo):.1f}"
              + (f"; random: min {min(rand):.1f}, mean {np.mean(rand):.1f}, max {max(rand):.1f}" if rand else "")
              + "; the CPU test's bound on the mean of seeds 1 and 2: 60"]  # fmt: skip
    args.results.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
