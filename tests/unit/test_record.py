"""The run record's lock on a filesystem without ``flock`` (Lustre mounted without ``-o flock``): record writes
still happen one at a time, through filelock's fallback to an exclusively created lock file.

No such filesystem can be mounted here (tmpfs and ext4 have flock), so ``fcntl.flock`` answers as Lustre's does:
ENOSYS.
"""

from __future__ import annotations

import errno
import fcntl
from pathlib import Path

import pytest

from rlsweep.rundir.record import RECORD_LOCK, RunRecord, amend, amend_unheld, unchanged


def test_records_are_written_under_a_lock_file_where_the_filesystem_has_no_flock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    run_dir = tmp_path / "run"
    RunRecord(run_id="r", run_dir=str(run_dir)).write()
    seen = RunRecord.read(run_dir)
    with pytest.warns(UserWarning, match="flock not supported"):  # filelock says so, once per acquisition
        assert amend(run_dir, status="running") is not None
        assert amend_unheld(run_dir, unchanged(seen), status="failed") is None  # the compare-and-swap still holds
    assert RunRecord.read(run_dir).status == "running" and RunRecord.read(run_dir).revision == 2
    assert not (run_dir / RECORD_LOCK).exists()  # the fallback's lock file is gone once released
