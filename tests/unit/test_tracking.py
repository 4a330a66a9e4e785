"""Tracking: git provenance, W&B config/tags, and real offline W&B runs read back and compared to metrics.jsonl.

The offline ``.wandb`` file is read with rlsweep.tracking.wandb_log (wandb's own protobuf classes over its
LevelDB framing), to check that what W&B would upload matches the local store.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tolerance import rounding

from rlsweep.config.schema import Config
from rlsweep.tracking import Tracker, git_info, read_metrics, wandb_config, wandb_tags
from rlsweep.tracking.gitinfo import GitInfo
from rlsweep.tracking.wandb_log import holds_exit, payloads, records, wait_for_exit

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------------ offline .wandb runs


@dataclass
class OfflineRun:
    """What one offline-run-* directory holds: run record fields, config, history rows."""

    run_id: str = ""
    group: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None


def read_offline_run(run_dir: Path) -> OfflineRun:
    (log,) = run_dir.glob("run-*.wandb")
    out = OfflineRun()
    for rec in records(log):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out.run_id, out.group, out.name = rec.run.run_id, rec.run.run_group, rec.run.display_name
            out.tags = list(rec.run.tags)
            out.config.update({i.key: json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "config":
            out.config.update({i.key: json.loads(i.value_json) for i in rec.config.update})
        elif kind == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
            out.history.append(row)
        elif kind == "exit":
            out.exit_code = rec.exit.exit_code
    return out


def offline_runs(run_dir: Path) -> list[OfflineRun]:
    """Every offline segment of a run, oldest first (the directory names start with a timestamp)."""
    return [read_offline_run(p) for p in sorted((run_dir / "wandb").glob("offline-run-*"))]


def synced_history(segments: list[OfflineRun]) -> list[dict[str, Any]]:
    """The history W&B shows after ``wandb sync`` of the segments in order.

    W&B ignores a row whose ``_step`` is not above the run's current step ("steps must be monotonically
    increasing"), so a line re-sent after a crash is dropped where the previous segment already had it.
    """
    out: list[dict[str, Any]] = []
    for seg in segments:
        for row in seg.history:
            if not out or int(row["_step"]) > int(out[-1]["_step"]):
                out.append(row)
    return out


def assert_history_matches_store(run_dir: Path, segments: list[OfflineRun]) -> list[int]:
    """Synced W&B history has exactly metrics.jsonl's steps, once each, with the same values."""
    store = read_metrics(run_dir / "metrics.jsonl")
    history = synced_history(segments)
    steps = [int(row["global_step"]) for row in history]
    assert steps == [int(r["global_step"]) for r in store]
    assert len(set(steps)) == len(steps), "duplicate steps in W&B history"
    # W&B's own step axis is global_step, so the resumed segment continues it instead of restarting at 0.
    assert [int(row["_step"]) for row in history] == steps
    for row, line in zip(history, store, strict=True):
        for key, value in line.items():
            if value is not None:
                assert row[key] == value, key  # exact: the same float, written as JSON both ways (repr round-trips)
    return steps


# ----------------------------------------------------------------------------------------------- git info


def _head_from_files(repo: Path) -> str | None:
    """HEAD's SHA read from .git without running git (so the test does not depend on the code under test)."""
    git = repo / ".git"
    if not git.is_dir():
        return None
    head = (git / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head
    ref = head[5:]
    if (git / ref).exists():
        return (git / ref).read_text().strip()
    packed = git / "packed-refs"
    for line in packed.read_text().splitlines() if packed.exists() else []:
        if line.endswith(" " + ref):
            return line.split()[0]
    return None


def test_git_info_of_the_package_checkout() -> None:
    info = git_info()
    expected = _head_from_files(REPO)
    if expected is None:
        pytest.skip("the package is not in a git checkout with a commit here")
    assert info.commit == expected
    assert re.fullmatch(r"[0-9a-f]{40}", info.commit or "")
    assert isinstance(info.dirty, bool)


def test_git_info_outside_a_repo_and_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # never look above tmp_path
    assert git_info(tmp_path) == GitInfo(None, None)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git binary at all
    assert git_info() == GitInfo(None, None)


def _info(**extra: Any) -> dict[str, Any]:
    choices = {"model": "B", "critic_init": "sqrt2", "normalise_int_reward": "true", "motivation": "rnd",
               "env": "fake", "experiment": "ppo_rnd_b1"}  # fmt: skip
    return {
        "name": "ppo_rnd_b1",
        "run_id": "ppo_rnd_b1-s3",
        "seed": 3,
        "sweep": "unit",
        "choices": choices,
        "total_steps": 512,
        "git": {"commit": "0123456789abcdef" * 2 + "01234567", "dirty": True},
        **extra,
    }


def test_wandb_config_and_tags_carry_every_choice_and_the_code_version() -> None:
    info = _info()
    config = wandb_config(Config(), info)
    for key, value in info["choices"].items():
        assert config[f"choice/{key}"] == value
        assert f"{key}={value}" in wandb_tags(info)
    assert config["preset"] == "ppo_rnd_b1" and config["seed"] == 3 and config["sweep"] == "unit"
    assert config["git/commit"] == info["git"]["commit"] and config["git/dirty"] is True
    assert config["model.name"] == Config().model.name  # the resolved config, dotted
    tags = wandb_tags(info)
    assert {"name=ppo_rnd_b1", "seed=3", "git=01234567", "dirty"} <= set(tags)
    long = wandb_tags(_info(name="x" * 100))
    assert all(1 <= len(t) <= 64 for t in long)
    clean = wandb_tags(_info(git={"commit": None, "dirty": None}))
    assert "git=none" in clean and "dirty" not in clean


# ------------------------------------------------------------------------------------ real offline W&B runs


@pytest.fixture
def in_process_wandb(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run W&B in this process, then stop its service and forget it.

    ``wandb.init`` starts a wandb-core service and exports ``WANDB_SERVICE`` into ``os.environ``; a later
    subprocess (``python sweep.py``) inheriting it would attach to *this* process's service, where a killed
    child's run id stays registered ("run ID ... is in use").
    """
    monkeypatch.setenv("WANDB_SILENT", "true")
    had = "WANDB_SERVICE" in os.environ
    yield
    import wandb

    wandb.teardown()
    if not had:
        os.environ.pop("WANDB_SERVICE", None)


def subprocess_env() -> dict[str, str]:
    """The environment for a child run: silent, offline-capable, never attached to a W&B service of ours."""
    env = {k: v for k, v in os.environ.items() if k not in {"WANDB_SERVICE", "WANDB_API_KEY", "WANDB_MODE"}}
    return {**env, "WANDB_SILENT": "true"}


@pytest.mark.e2e
@pytest.mark.usefixtures("in_process_wandb")
def test_tracker_resume_continues_the_offline_run_without_duplicates(tmp_path: Path) -> None:
    """Rows logged after the last checkpoint die with the process; the resumed tracker relogs them once."""
    cfg = Config()
    cfg.logger.mode = "offline"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    info = _info()
    first = Tracker(cfg, run_dir, dict(info), resume_step=None)
    for step in (64, 128, 192, 256, 320):
        first.log({"global_step": step, "iteration": step // 64, "loss/total": step / 10, "episode/score": None})
        if step == 192:
            first.commit()  # the checkpoint covers 64..192; 256 and 320 are never committed
    # Simulate SIGKILL: the W&B run ends abnormally and nothing pending is flushed.
    first._wandb.finish(exit_code=1)
    first._file.close()
    first_id = json.loads((run_dir / "run.json").read_text())["wandb_id"]

    second = Tracker(cfg, run_dir, dict(info), resume_step=192)
    for step in (256, 320, 384):
        second.log({"global_step": step, "iteration": step // 64, "loss/total": step / 10 + 1})
    second.finish("completed")

    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["wandb_id"] == first_id  # attempts are counted by the job (run_point), not the tracker
    assert meta["wandb"] == {"project": "rlsweep", "entity": None, "mode": "offline", "group": "unit"}
    segments = offline_runs(run_dir)
    assert len(segments) == 2 and {s.run_id for s in segments} == {first_id}
    assert [s.exit_code for s in segments] == [1, 0]
    # The first attempt never finished cleanly, so the second re-sends the kept lines (64..192) before its own.
    assert [r["_step"] for r in segments[1].history] == [64, 128, 192, 256, 320, 384]
    assert assert_history_matches_store(run_dir, segments) == [64, 128, 192, 256, 320, 384]
    # recomputed line, not the lost one: 256 / 10 + 1 rounds twice in float64 on its way to 26.6
    assert synced_history(segments)[3]["loss/total"] == pytest.approx(26.6, rel=rounding(float, depth=2))
    assert meta["wandb_step"] == 384


@pytest.mark.e2e
def test_offline_log_read_while_being_written_never_shows_an_exit_it_does_not_hold(tmp_path: Path) -> None:
    """The tracker trusts a closed W&B run only once its exit record is on disk (wandb_log.wait_for_exit).

    Every prefix of a real log, as a reader could see it while wandb-core writes it, parses as a prefix of its
    records and holds the exit record only when the file reaches the end of it; another file holds none.
    """
    cfg = Config()
    cfg.logger.mode = "offline"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tracker = Tracker(cfg, run_dir, _info(), resume_step=None)
    for step in (64, 128):
        tracker.log({"global_step": step, "iteration": step // 64, "loss/total": step / 10})
    tracker.finish("completed")
    assert json.loads((run_dir / "run.json").read_text())["wandb_step"] == 128
    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    whole = list(payloads(log))
    kinds = [rec.WhichOneof("record_type") for rec in records(log)]
    assert "exit" in kinds and kinds.count("history") == 2
    data = log.read_bytes()
    part = tmp_path / "part.wandb"
    exit_seen_at = None
    for size in range(len(data) + 1):
        part.write_bytes(data[:size])
        got = list(payloads(part))
        assert got == whole[: len(got)], size
        if exit_seen_at is None and holds_exit(part):
            exit_seen_at = size
    assert exit_seen_at is not None
    part.write_bytes(data[: exit_seen_at - 1])
    assert not wait_for_exit(part, timeout=0.0)
    part.write_bytes(b"not a W&B log" * 10)
    assert list(payloads(part)) == [] and not holds_exit(part)
    assert not holds_exit(tmp_path / "missing.wandb")


@pytest.mark.e2e
def test_real_offline_run_killed_and_resumed(tmp_path: Path) -> None:
    """``python sweep.py ... logger=wandb logger.mode=offline``, SIGKILL after a checkpoint, rerun.

    A single run (no ``-m``) with ``sweep_name`` set: it lands in ``runs/`` but its W&B group is the sweep.
    """
    args = [
        str(REPO / "sweep.py"), "sweep_name=wb", "seed=5", "env=fake", "debug=smoke", "logger=wandb",
        "logger.mode=offline", "budget.total_steps=640", "budget.checkpoint_every=2", "debug.pause_at_iteration=4",
    ]  # fmt: skip
    env = subprocess_env()
    proc = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    # The run waits after its checkpoint of iteration 4 until it is killed: no race with its end.
    for line in proc.stdout:
        if "waiting to be stopped" in line:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert len(read_metrics(run_dir / "metrics.jsonl")) == 4
    first = json.loads((run_dir / "run.json").read_text())
    assert first["status"] == "running"

    rerun = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resumed at iteration 4, step 256" in rerun.stdout
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "completed" and meta["wandb_id"] == first["wandb_id"] and meta["attempts"] == 2
    assert [r["global_step"] for r in read_metrics(run_dir / "metrics.jsonl")] == list(range(64, 641, 64))
    segments = offline_runs(run_dir)
    dirs = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(dirs) == 2 and all(d.name.endswith("-" + meta["wandb_id"]) for d in dirs)
    # wandb-core buffers the offline file: the SIGKILLed segment may hold nothing at all (measured: header
    # only). The resumed attempt re-sent every kept line, so the synced history is still complete.
    assert segments[-1].run_id == meta["wandb_id"] and segments[-1].exit_code == 0
    assert assert_history_matches_store(run_dir, segments) == list(range(64, 641, 64))
    seg = segments[-1]
    assert seg.group == "wb" and seg.name == run_dir.name
    for key, value in meta["choices"].items():
        assert seg.config[f"choice/{key}"] == value
        assert f"{key}={value}" in seg.tags
    assert seg.config["seed"] == 5 and "seed=5" in seg.tags
    assert seg.config["git/commit"] == meta["git"]["commit"] == git_info().commit
    # `wandb sync` (documented in docs/usage.md) sees both segments of the one run; --dry-run uploads nothing.
    sync = subprocess.run(
        [str(Path(sys.executable).parent / "wandb"), "sync", "--dry-run",
         *map(str, sorted((run_dir / "wandb").glob("offline-run-*")))],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    assert "Would sync 2 run(s)" in sync.stdout + sync.stderr
