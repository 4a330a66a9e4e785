"""Checkpoints: atomic under a real write failure (the file-size limit makes the kernel refuse the write, EFBIG,
as a full disk would, ENOSPC, in the middle of torch.save), and loaded as data only (``weights_only``): a
crafted or damaged file is refused in one line, and the RNG state survives the round trip."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rlsweep.training.checkpoint import (
    CHECKPOINT_NAME,
    PREVIOUS_NAME,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    state = {"iteration": 3, "global_step": 192, "weights": torch.arange(10.0)}
    save_checkpoint(state, tmp_path)
    loaded = load_checkpoint(tmp_path)
    assert loaded is not None and loaded["global_step"] == 192 and torch.equal(loaded["weights"], state["weights"])
    (tmp_path / "empty").mkdir()
    assert load_checkpoint(tmp_path / "empty") is None


@pytest.mark.e2e
def test_failed_write_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import resource, signal, torch
        from pathlib import Path
        from rlsweep.training.checkpoint import save_checkpoint
        run_dir = Path({str(tmp_path)!r})
        save_checkpoint({{"iteration": 1, "weights": torch.zeros(1000)}}, run_dir)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG as an error instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        try:
            save_checkpoint({{"iteration": 2, "weights": torch.zeros(1_000_000)}}, run_dir)  # 4 MB: cannot fit
        except OSError as e:
            print("refused:", e)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "the previous one is kept" in out.stdout, out.stdout
    loaded = load_checkpoint(tmp_path)
    assert loaded is not None and loaded["iteration"] == 1 and loaded["weights"].numel() == 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]  # no half-written temporary file


class _Payload:
    """What a crafted checkpoint carries: unpickling it would run a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_runs_no_code_and_is_refused_in_one_line(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    torch.save({"iteration": 1, "evil": _Payload(marker)}, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path)
    assert not marker.exists()
    message = str(caught.value)
    assert message.startswith(f"checkpoint {tmp_path / CHECKPOINT_NAME} cannot be read") and "\n" not in message


def test_a_truncated_checkpoint_is_refused_naming_the_file_and_what_to_do(tmp_path: Path) -> None:
    save_checkpoint({"iteration": 3, "weights": torch.arange(1000.0)}, tmp_path)
    path = tmp_path / CHECKPOINT_NAME
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"cannot be read .*rerun with resume=restart to start this run over"):
        load_checkpoint(tmp_path)


def test_the_checkpoint_before_the_newest_is_kept_and_offered_when_the_newest_is_unreadable(tmp_path: Path) -> None:
    save_checkpoint({"iteration": 3}, tmp_path)
    save_checkpoint({"iteration": 6}, tmp_path)
    previous = tmp_path / PREVIOUS_NAME
    assert torch.load(previous, weights_only=True) == {"iteration": 3}
    assert os.stat(tmp_path / CHECKPOINT_NAME).st_ino != os.stat(previous).st_ino  # two files, not one linked twice
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match=r"resume=previous resumes from the one before it, resume=restart"):
        load_checkpoint(tmp_path)


def test_the_rng_state_survives_a_weights_only_round_trip(tmp_path: Path) -> None:
    import random

    import numpy as np

    from rlsweep.training.seeding import rng_state, set_rng_state

    np.random.seed(7)
    random.seed(7)
    save_checkpoint({"rng": rng_state()}, tmp_path)
    expected = (np.random.normal(size=4), random.random(), torch.rand(3))
    loaded = load_checkpoint(tmp_path)
    assert loaded is not None
    set_rng_state(loaded["rng"])
    assert np.array_equal(np.random.normal(size=4), expected[0]) and random.random() == expected[1]
    assert torch.equal(torch.rand(3), expected[2])


def test_deterministic_algorithms_are_one_runs_setting_not_inherited_by_the_next() -> None:
    """The flag is process-wide: a run with debug.deterministic=false after one with true in the same process
    (a test worker, a group of points run inline) runs without it."""
    from rlsweep.training.seeding import seed_everything

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    try:
        seed_everything(1, True, cpu)
        assert torch.are_deterministic_algorithms_enabled()
        seed_everything(1, False, cpu)
        assert not torch.are_deterministic_algorithms_enabled()
        seed_everything(1, True, cpu)
        seed_everything(1, True, cuda)  # CUDA runs stay fast: deterministic kernels only on the CPU
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
