"""The ``rlsweep`` commands as a shell runs them: output piped into a reader that stops early ends quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from inline import TINY

from rlsweep.config.overrides import quote_group_values
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.plan import GROUPS, plan
from rlsweep.launching.points import prepare

pytestmark = pytest.mark.e2e  # starts the commands as processes, each with a shell pipe

REPO = Path(__file__).resolve().parents[2]
RLSWEEP = Path(sys.executable).parent / "rlsweep"  # the console script, as installed


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A launched sweep whose points are prepared (records pending): enough for `rlsweep status`."""
    p = plan(quote_group_values([*TINY, "seed=1,2,3", "sweep_name=piped"], GROUPS), multirun=True)
    p.out_dir = tmp_path_factory.mktemp("sweeps") / "piped"
    Ledger(p.out_dir).record_launch("inline", len(p.points))
    prepare(p, "inline")
    return p.out_dir


@pytest.mark.parametrize(
    "command",
    [
        f"{RLSWEEP} status {{sweep}}",
        f"{sys.executable} {REPO / 'sweep.py'} -m env=fake seed=1,2 dry_run=true",
        f"{sys.executable} {REPO / 'sweep.py'} --help",
    ],
)
def test_a_reader_that_stops_early_ends_the_command_quietly(sweep_dir: Path, command: str) -> None:
    """`rlsweep --help` needs no test: argparse ignores a failed write of its help and exits 0."""
    # `true` exits without reading, so the pipe is closed before the command's first write: `| head -1` is the
    # same once the output outgrows what head reads before leaving, but only then (a short table fits the pipe).
    line = command.format(sweep=sweep_dir)
    out = subprocess.run(
        ["bash", "-c", f"{line} | true; exit ${{PIPESTATUS[0]}}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "WANDB_SILENT": "true"},
    )
    assert out.stderr == "" and out.returncode == 141, (out.returncode, out.stderr[-2000:])
    # and read whole, the same command prints its output and succeeds
    full = subprocess.run(["bash", "-c", f"{line} | head -1"], capture_output=True, text=True, timeout=120)
    assert full.stdout.strip() and full.stderr == "", full.stderr[-2000:]
