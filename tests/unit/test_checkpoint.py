"""Atomic checkpoints under a real write failure: the file-size limit makes the kernel refuse the write (EFBIG),
as a full disk would (ENOSPC), in the middle of torch.save."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from rlsweep.training.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    state = {"iteration": 3, "global_step": 192, "weights": torch.arange(10.0)}
    save_checkpoint(state, tmp_path)
    loaded = load_checkpoint(tmp_path)
    assert loaded is not None and loaded["global_step"] == 192 and torch.equal(loaded["weights"], state["weights"])
    (tmp_path / "empty").mkdir()
    assert load_checkpoint(tmp_path / "empty") is None


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
    assert "refused:" in out.stdout and "previous checkpoint is kept" in out.stdout, out.stdout
    loaded = load_checkpoint(tmp_path)
    assert loaded is not None and loaded["iteration"] == 1 and loaded["weights"].numel() == 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME]  # no half-written temporary file
