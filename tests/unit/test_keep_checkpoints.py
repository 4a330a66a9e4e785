"""``budget.keep_checkpoints``: which iterations keep a snapshot, how one is written, and that a crashed and resumed
run ends with the same snapshots as an uninterrupted one (none twice, none lost). Real training on the fake env."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from inline import TINY, run_inline

from rlsweep.config.files import read_config, write_config
from rlsweep.config.validate import ConfigError, check_value
from rlsweep.launching.job import run_point
from rlsweep.training.checkpoint import (
    CHECKPOINT_NAME,
    SNAPSHOT_DIR,
    list_snapshots,
    read_checkpoint,
    save_checkpoint,
    snapshot_due,
    snapshot_path,
)

# 10 iterations of 64 agent steps, a checkpoint every 2 iterations, a snapshot every 2nd checkpoint and at the end.
KEPT = ("budget.total_steps=640", "budget.checkpoint_every=2", "budget.keep_checkpoints=2")


def test_snapshots_fall_on_every_kth_checkpoint_interval_and_the_last_iteration() -> None:
    due = [i for i in range(1, 11) if snapshot_due(i, 10, checkpoint_every=2, keep_checkpoints=2)]
    assert due == [4, 8, 10]
    assert [i for i in range(1, 11) if snapshot_due(i, 10, 2, 1)] == [2, 4, 6, 8, 10]
    assert not any(snapshot_due(i, 10, 2, 0) for i in range(1, 11))  # 0: only the latest checkpoint, as before


def test_keep_checkpoints_is_checked_like_every_other_key() -> None:
    assert check_value("budget.keep_checkpoints", 3) == 3
    with pytest.raises(ConfigError, match=r"^Invalid value for budget.keep_checkpoints: -1 \(must be >= 0\)$"):
        check_value("budget.keep_checkpoints", -1)
    with pytest.raises(ConfigError, match=r"^Invalid value for budget.keep_checkpoints: 1.5 \(an integer is required"):
        check_value("budget.keep_checkpoints", 1.5)


def test_a_snapshot_is_the_checkpoint_kept_under_its_step(tmp_path: Path) -> None:
    save_checkpoint({"global_step": 256, "w": torch.ones(3)}, tmp_path, snapshot=True)
    snap = snapshot_path(tmp_path, 256)
    assert snap == tmp_path / SNAPSHOT_DIR / "step-256.pt"
    assert snap.stat().st_ino == (tmp_path / CHECKPOINT_NAME).stat().st_ino  # a link: no second write
    save_checkpoint({"global_step": 320, "w": torch.zeros(3)}, tmp_path)
    assert read_checkpoint(snap)["global_step"] == 256 and read_checkpoint(snap)["w"].tolist() == [1, 1, 1]
    assert read_checkpoint(tmp_path / CHECKPOINT_NAME)["global_step"] == 320
    assert list(list_snapshots(tmp_path)) == [256]
    assert sorted(p.name for p in (tmp_path / SNAPSHOT_DIR).iterdir()) == ["step-256.pt"]  # no temporary left


def test_snapshots_past_a_resumed_checkpoint_are_set_aside_not_kept_twice(tmp_path: Path) -> None:
    """Progress thrown away (a crash after the snapshot's rename, resume=previous): its snapshots leave the curve."""
    for step in (256, 512):
        save_checkpoint({"global_step": step}, tmp_path, snapshot=True)
    save_checkpoint({"global_step": 384}, tmp_path)  # the run goes on from an older checkpoint
    assert list(list_snapshots(tmp_path)) == [256]
    (aside,) = (tmp_path / SNAPSHOT_DIR / "discarded").iterdir()
    assert [p.name for p in aside.iterdir()] == ["step-512.pt"]
    save_checkpoint({"global_step": 512}, tmp_path, snapshot=True)  # trained again: the new one takes the name
    assert list(list_snapshots(tmp_path)) == [256, 512]


def test_training_keeps_the_snapshots_and_a_resumed_run_neither_duplicates_nor_loses_them(tmp_path: Path) -> None:
    # The first attempt crashes when iteration 7 starts: checkpoint at 6, one snapshot (iteration 4, step 256).
    with pytest.raises(RuntimeError, match="crashing on purpose"):
        run_inline(tmp_path, *TINY, *KEPT, "debug.crash_at_iteration=7")
    (run_dir,) = (tmp_path / "runs").iterdir()
    first = list_snapshots(run_dir)
    assert list(first) == [256]
    inode = first[256].stat().st_ino

    # The rerun (the debug group is no part of what a run trains) resumes from iteration 6 and completes.
    config = read_config(run_dir)
    config["debug"]["crash_at_iteration"] = 0
    write_config(run_dir, config)
    run_point(run_dir)

    snapshots = list_snapshots(run_dir)
    assert list(snapshots) == [256, 512, 640]
    assert snapshots[256].stat().st_ino == inode  # the first attempt's snapshot, untouched
    for step, path in snapshots.items():
        state = read_checkpoint(path)
        assert state["global_step"] == step and state["iteration"] == step // 64
    assert sorted(p.name for p in (run_dir / SNAPSHOT_DIR).iterdir()) == ["step-256.pt", "step-512.pt", "step-640.pt"]
    latest = read_checkpoint(run_dir / CHECKPOINT_NAME)
    assert latest["global_step"] == 640
    assert all(torch.equal(v, latest["policy"][k]) for k, v in read_checkpoint(snapshots[640])["policy"].items())
