"""The sweep ledger: the run records of one sweep directory, ``<sweep_dir>/<run_id>/run.json``.

There is no second copy of a run's state: the ledger is a view over the records (:mod:`rlsweep.rundir.record`) that
the launcher and the jobs write. ``sweep.json`` beside the runs marks a launched sweep and says how it was
started.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rlsweep.rundir.record import RUN_FILE, RunRecord, write_json_atomic

SWEEP_FILE = "sweep.json"


class Ledger:
    def __init__(self, sweep_dir: Path) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.damaged: list[tuple[Path, str]] = []  # (run dir, why) of unreadable run.json files, by records()

    def exists(self) -> bool:
        return (self.sweep_dir / SWEEP_FILE).exists()

    def run_dir(self, run_id: str) -> Path:
        return self.sweep_dir / run_id

    def get(self, run_id: str) -> RunRecord | None:
        return RunRecord.read_or_none(self.run_dir(run_id))

    def records(self) -> Iterator[RunRecord]:
        """Every readable record, by run id; unreadable ones are listed in ``damaged``, not skipped silently."""
        self.damaged = []
        for path in sorted(self.sweep_dir.glob(f"*/{RUN_FILE}")):
            try:
                yield RunRecord.read(path.parent)
            except ValueError as e:
                self.damaged.append((path.parent, str(e)))

    def record_launch(self, launcher: str, points: int, searchpath: Sequence[str] = ()) -> None:
        """sweep.json: the command line, the launcher, the config folders beside the package's and when; rewritten on
        every launch."""
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        info = {"command": shlex.join(sys.argv), "launcher": launcher, "launched": time.time(), "points": points,
                "searchpath": list(searchpath)}  # fmt: skip
        write_json_atomic(self.sweep_dir / SWEEP_FILE, info)

    def launch_info(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.sweep_dir / SWEEP_FILE).read_text())
            return data
        except (OSError, json.JSONDecodeError):
            return {}
