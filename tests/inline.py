"""Run points in this process and read what they wrote (tests import it: ``from inline import run_inline``).

``run_inline`` and ``sweep_inline`` go through exactly the path a launch takes (plan: compose and check once;
prepare: resolved config.yaml and record; the job function ``run_point``), minus the process start: a test
that is not about the command line or a signal does not pay two seconds of imports per run. Tests that are
about those start real processes (tests/integration/test_launchers.py, tests/launching/test_cli.py).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from rlsweep.config.overrides import quote_group_values
from rlsweep.launching.job import run_point
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import GROUPS, plan
from rlsweep.launching.points import prepare

# The smallest real run: 4 iterations of 4 envs x 16 steps on the synthetic env, no W&B.
TINY = ("env=fake", "budget=smoke", "debug=smoke", "logger=none")


def run_inline(cwd: Path, *overrides: str) -> Path:
    """One point, as ``python sweep.py <overrides>`` would run it from ``cwd``; returns its run directory."""
    p = plan(quote_group_values(list(overrides), GROUPS), multirun=False)
    p.out_dir = cwd / "runs"
    (point,) = p.points
    if prepare(p, "inline"):
        run_point(p.run_dir(point))
    return p.run_dir(point)


def sweep_inline(cwd: Path, *overrides: str, sweep_name: str) -> Path:
    """A grid, as ``python sweep.py -m <overrides> sweep_name=<name>`` would plan it, run point by point here."""
    p = plan(quote_group_values([*overrides, f"sweep_name={sweep_name}"], GROUPS), multirun=True)
    p.out_dir = cwd / "sweeps" / sweep_name
    ledger = Ledger(p.out_dir)
    ledger.record_launch("inline", len(p.points))
    for point in prepare(p, "inline"):
        run_point(p.run_dir(point))
    return p.out_dir


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def record(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "run.json").read_text())
    return data


def finished(
    main: Callable[[list[str]], int], args: Sequence[str], capsys: pytest.CaptureFixture[str]
) -> subprocess.CompletedProcess[str]:
    """A command line's ``main(args)`` called in this process, as the finished command a test reads: its exit status
    and what it printed (the process boundary itself is what the e2e tests are for)."""
    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err)
