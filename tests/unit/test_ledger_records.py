"""How a run's ending is recorded in the sweep ledger when an interruption surfaces as an ordinary error.

Regression: a ``scancel`` (SIGTERM) landing while ``torch.save`` wrote a checkpoint recorded "cancelled", then
torch turned the handler's SystemExit into a RuntimeError and the record was overwritten with "failed".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rlsweep.launching.app import record_failure
from rlsweep.launching.ledger import Ledger


@pytest.mark.parametrize(("before", "after"), [("running", "failed"), ("cancelled", "cancelled"),
                                               ("preempted", "preempted")])  # fmt: skip
def test_an_interruption_keeps_its_record(tmp_path: Path, before: str, after: str) -> None:
    ledger = Ledger(tmp_path)
    ledger.update("run", status=before, error=None)
    try:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")
    except RuntimeError as e:
        record_failure(ledger, "run", e)
    record = ledger.get("run")
    assert record is not None and record["status"] == after
    assert (record["error"] is not None) == (after == "failed")
    if after == "failed":
        assert "RuntimeError" in record["error"] and "test_ledger_records.py" in record["error"]
