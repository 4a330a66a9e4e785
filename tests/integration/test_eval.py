"""``rlsweep eval`` (its command line's main, in this process, and once as a real process) on a trained maze run:
eval.json, the H.264 video (probed with the ffmpeg binary that imageio-ffmpeg ships), repeatable greedy play, the
learning curve over the snapshots (``budget.keep_checkpoints``), the W&B eval run in real offline W&B, and bad input
in one line with exit status 2.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from inline import sweep_inline
from tolerance import rounding

from rlsweep.cli import commands as cli
from rlsweep.tracking.wandb_log import records

# a trained sweep per module, then evaluations of it; one worker builds the module's fixture (xdist_group)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_eval")]

REPO = Path(__file__).resolve().parents[2]
# A maze run of 10 iterations x 64 agent steps (4 envs), snapshots at steps 256, 512 and 640; plain PPO is enough to
# have a policy to play, and trains in a few seconds.
TRAIN = ("env=maze", "budget=smoke", "debug=smoke", "logger=none", "motivation=none", "budget.total_steps=640",
         "budget.checkpoint_every=2", "budget.keep_checkpoints=2")  # fmt: skip
SNAPSHOTS = [256, 512, 640]
MAZE_TIME_LIMIT = 128  # conf/env/maze.yaml max_episode_steps: the maze has no other end


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sweep_dir = sweep_inline(tmp_path_factory.mktemp("trained"), *TRAIN, sweep_name="evals")
    (run,) = (p.parent for p in sweep_dir.glob("*/config.yaml"))
    return run


def rlsweep_eval(
    *args: str | Path, env: dict[str, str] | None = None, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """``rlsweep eval <args>``: by default in this process (the command line's own main), with its exit status and
    output, since the process boundary is not what most of these tests are about and each process costs seconds of
    imports; with ``process`` as a real process, as a user runs it (the W&B run: W&B's service writes the offline
    run's last records as the process ends, so only a real end shows what a user's run leaves)."""
    environ = {**os.environ, "WANDB_SILENT": "true", **(env or {})}
    if process:
        command = [sys.executable, "-m", "rlsweep.cli.commands", "eval", *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environ)
    out, err = io.StringIO(), io.StringIO()
    saved, threads = dict(os.environ), torch.get_num_threads()  # eval sets torch's threads (--threads)
    os.environ.update(environ)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(["eval", *map(str, args)])
            except SystemExit as exit_:  # argparse's refusals
                code = int(exit_.code or 0)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(list(map(str, args)), code, out.getvalue(), err.getvalue())


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def probe(video: Path) -> str:
    """What ffmpeg says about the file's streams (``ffmpeg -i`` without an output: the ffprobe summary)."""
    import imageio_ffmpeg

    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(video)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return proc.stderr


def test_eval_plays_the_latest_checkpoint_and_writes_scores_and_an_h264_video(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "latest"
    stdout = ok(rlsweep_eval(run_dir, "--episodes", "3", "--policy", "sample", "--seed", "5", "--out", out))
    line, note = stdout.splitlines()
    assert line.startswith(f"eval {run_dir.name} step 640 sample: 3 episodes (3 cut by the time limit of 128 steps)")
    assert f"{out / 'eval.json'}, video {out / 'episode-0.mp4'}" in line
    # Issue #26: the maze's per-episode counts must not read as training's whole-run explore/cells and explore/rooms.
    assert ", score per episode 0 ± 0 [0, 0], rooms per episode " in line
    assert ", cells per episode " in line and ", length per episode 128 ± 0 [128, 128]; " in line
    assert note == (
        "per episode of sampled play (the training policy): mean ± std [min, max] over 3 episodes, rooms and cells "
        "counted from each episode's start; not the run's cumulative explore/rooms and explore/cells (everything "
        "the run's envs visited since it began)"
    )

    result = json.loads((out / "eval.json").read_text())
    assert result["note"] == note
    assert result["checkpoint"] == str(run_dir / "checkpoint.pt")
    assert (result["global_step"], result["iteration"], result["policy"], result["seed"]) == (640, 10, "sample", 5)
    episodes = result["episodes"]
    assert [e["episode"] for e in episodes] == [0, 1, 2]
    for e in episodes:
        # The maze ends only at its time limit: every episode is cut there, and still counts.
        assert e["length"] == MAZE_TIME_LIMIT and e["time_limit"] is True
        assert e["score"] == 0.0 and 1 <= e["rooms"] <= 9 and 1 <= e["cells"] <= 160
        assert e["cells"] >= e["rooms"]
    for key in ("score", "length", "rooms", "cells"):
        values = [e[key] for e in episodes]
        # float64 on both sides: a mean of 3 rounds 3 times, a std of 3 ~13 times (mean, differences, squares, sum,
        # division, square root), each side: 32 roundings of numbers up to the largest value; min and max are exact.
        bound = rounding(np.float64, depth=32, scale=max(values))
        assert result["summary"][f"{key}_per_episode"] == pytest.approx(
            {"mean": np.mean(values), "std": np.std(values), "min": min(values), "max": max(values)}, rel=0, abs=bound
        )

    (video,) = result["videos"]
    assert video["path"] == str(out / "episode-0.mp4") and video["frames"] == episodes[0]["length"]
    info = probe(out / "episode-0.mp4")
    assert re.search(r"Video: h264 \(\w+\) \(avc1 / 0x31637661\), yuv420p", info), info
    assert "256x256" in info  # the 32-pixel frame scaled by 8
    import imageio_ffmpeg

    frames, _seconds = imageio_ffmpeg.count_frames_and_secs(str(out / "episode-0.mp4"))
    assert frames == episodes[0]["length"]  # one frame per agent step, s_0 ... s_{T-1}


def test_greedy_play_repeats_for_one_seed_and_the_default_output_folder_names_step_and_policy(run_dir: Path) -> None:
    runs = []
    for _ in range(2):
        ok(rlsweep_eval(run_dir, "--episodes", "4", "--envs", "2", "--seed", "3", "--no-video"))
        out = run_dir / "eval" / "640-greedy"
        runs.append(json.loads((out / "eval.json").read_text()))
        assert not list(out.glob("*.mp4"))
        shutil.rmtree(out)
    first, second = runs
    assert first["episodes"] == second["episodes"] and len(first["episodes"]) == 4
    assert [e["slot"] for e in first["episodes"]] == [0, 1, 0, 1]  # two slots, two episodes each


def test_a_snapshot_by_step_and_the_learning_curve_over_every_snapshot(run_dir: Path, tmp_path: Path) -> None:
    ok(rlsweep_eval(run_dir, "--step", "256", "--episodes", "1", "--no-video", "--out", tmp_path / "one"))
    one = json.loads((tmp_path / "one" / "eval.json").read_text())
    assert one["global_step"] == 256 and one["checkpoint"] == str(run_dir / "checkpoints" / "step-256.pt")

    out = tmp_path / "curve"
    stdout = ok(rlsweep_eval(run_dir, "--all-steps", "--episodes", "2", "--policy", "sample", "--out", out))
    *lines, note, curve = stdout.splitlines()
    assert len(lines) == len(SNAPSHOTS) and curve.startswith("eval curve of 3 snapshots")
    assert note.startswith("per episode of sampled play") and "not the run's cumulative explore/rooms" in note
    rows = (out / "eval_curve.csv").read_text().splitlines()
    header, *data = [r.split(",") for r in rows]
    assert [int(r[header.index("global_step")]) for r in data] == SNAPSHOTS
    assert all(int(r[header.index("episodes")]) == 2 for r in data)
    assert all(1 <= float(r[header.index("rooms_per_episode_mean")]) <= float(r[header.index("cells_per_episode_max")])
               for r in data)  # fmt: skip
    for step in SNAPSHOTS:
        assert json.loads((out / str(step) / "eval.json").read_text())["global_step"] == step
        assert (out / str(step) / "episode-0.mp4").stat().st_size > 0
    assert (out / "eval_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _offline_reader() -> Any:
    """tests/unit/test_tracking.py's ``read_offline_run``: an offline W&B run's run record, config and history."""
    spec = importlib.util.spec_from_file_location("_tracking_reader", REPO / "tests" / "unit" / "test_tracking.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


@pytest.mark.e2e  # a real eval process and W&B's service
def test_wandb_eval_run_lands_offline_with_video_score_rooms_and_length(run_dir: Path, tmp_path: Path) -> None:
    env = {"WANDB_MODE": "offline", "WANDB_API_KEY": "", "NETRC": str(tmp_path / "no-netrc")}
    out = tmp_path / "wb"
    stdout = ok(rlsweep_eval(run_dir, "--episodes", "2", "--wandb", "--out", out, env=env, process=True))
    (offline,) = (out / "wandb").glob("offline-run-*")
    assert f"W&B eval run: {offline}" in stdout

    reader = _offline_reader()
    wb = reader.read_offline_run(offline)
    assert wb.name == f"{run_dir.name}-eval-greedy" and "eval" in wb.tags and wb.exit_code == 0
    assert wb.config["run_id"] == run_dir.name and wb.config["policy"] == "greedy"
    (row,) = wb.history
    assert row["global_step"] == 640 and row["_step"] == 640
    result = json.loads((out / "eval.json").read_text())
    for key in ("score", "rooms", "cells", "length"):
        name = f"{key}_per_episode"
        assert row[f"eval/{name}_mean"] == result["summary"][name]["mean"]  # the same float, as JSON both ways: exact
    assert not {"eval/rooms_mean", "eval/cells_mean", "eval/score_mean"} & set(row)  # no unqualified names left
    assert wb.group == "evals"  # the training run's W&B group: its sweep
    assert row["eval/video_episode_0/_type"] == "video-file"
    (media,) = (offline / "files" / "media" / "videos").rglob("*.mp4")
    assert media.read_bytes() == (out / "episode-0.mp4").read_bytes()
    assert list((offline / "files" / "media" / "table").rglob("*.table.json"))
    (log,) = offline.glob("run-*.wandb")
    job_types = [rec.run.job_type for rec in records(log) if rec.WhichOneof("record_type") == "run"]
    assert job_types == ["eval"]


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stdout == ""
    return lines[0]


@pytest.mark.e2e
def test_the_command_in_a_real_process_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    """What the in-process calls cannot see: the interpreter's own exit status and output."""
    missing = tmp_path / "nowhere"
    proc = rlsweep_eval(missing, process=True)
    assert _one_line(proc) == f"rlsweep eval: error: run directory {missing} does not exist"


def test_bad_input_is_one_line_naming_the_value_and_what_exists(run_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert _one_line(rlsweep_eval(missing)) == f"rlsweep eval: error: run directory {missing} does not exist"

    line = _one_line(rlsweep_eval(run_dir.parent))
    assert f"{run_dir.parent} is not a run directory: no config.yaml (it is a sweep directory; its runs: " in line
    assert run_dir.name in line

    line = _one_line(rlsweep_eval(run_dir, "--step", "300"))
    assert "--step 300: no checkpoint of that step" in line
    assert "snapshots at steps 256, 512, 640; latest checkpoint at step 640" in line

    line = _one_line(rlsweep_eval(run_dir, "--checkpoint", tmp_path / "x.pt"))
    assert line == f"rlsweep eval: error: --checkpoint {tmp_path / 'x.pt'}: no such file"

    fresh = tmp_path / "fresh"  # a run that has not reached its first checkpoint
    fresh.mkdir()
    shutil.copy(run_dir / "config.yaml", fresh / "config.yaml")
    line = _one_line(rlsweep_eval(fresh))
    assert line.startswith(f"rlsweep eval: error: no checkpoint in {fresh} ")
    assert line.endswith(f"no snapshots in {fresh / 'checkpoints'} (budget.keep_checkpoints was 0)")
    assert "no snapshots" in _one_line(rlsweep_eval(fresh, "--all-steps"))

    (fresh / "checkpoint.pt").write_bytes(b"not a checkpoint")
    line = _one_line(rlsweep_eval(fresh))
    assert line.startswith(f"rlsweep eval: error: checkpoint {fresh / 'checkpoint.pt'} cannot be read")

    line = _one_line(rlsweep_eval(run_dir, "--episodes", "0"))
    assert "argument --episodes: 0 is not >= 1" in line
