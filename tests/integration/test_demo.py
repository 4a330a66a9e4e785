"""The README's first command, after its install steps, exactly as written there: the demo sweep and its report.

It is the learning test of the exploration bonus too: on the pixel maze there is no extrinsic reward, so plain
PPO is a random walk, and RND must reach clearly more cells, seed for seed, with a matched-pair confidence
interval of the effect that excludes zero in the report a user opens.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # the README's demo command, as a user runs it

REPO = Path(__file__).resolve().parents[2]


def readme_demo() -> str:
    """The demo part of the README's first command: everything after the install steps."""
    line = next(x for x in (REPO / "README.md").read_text().splitlines() if "experiment=demo_maze" in x)
    steps = [s.strip() for s in line.split("&&")]
    return " && ".join(s for s in steps if not s.startswith(("python3 -m venv", ". .venv", "pip install")))


def test_readme_demo_sweep_and_report_show_rnd_visiting_more_cells(tmp_path: Path) -> None:
    demo = readme_demo()
    assert demo.startswith("python sweep.py -m ") and "rlsweep report sweeps/demo" in demo
    # The checkout's own sweep.py, run from a scratch directory so that nothing lands in the repository.
    command = demo.replace("python sweep.py", f"python {REPO / 'sweep.py'}")
    env = {**os.environ, "WANDB_SILENT": "true"}
    proc = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sweep_dir = tmp_path / "sweeps" / "demo"
    assert f"in {sweep_dir}" in proc.stdout.splitlines()[0]  # the sweep says where it writes, first
    assert (sweep_dir / "report" / "report.html").is_file()

    cells: dict[str, list[float]] = {"none": [], "rnd": []}
    for run_json in sorted(sweep_dir.glob("*/run.json")):
        record = json.loads(run_json.read_text())
        assert record["status"] == "completed" and record["attempts"] == 1
        cells[record["choices"]["motivation"]].append(record["final"]["explore/cells"])
    assert len(cells["none"]) == len(cells["rnd"]) == 3
    assert sum(cells["rnd"]) >= 1.2 * sum(cells["none"]), cells
    assert sum(r > n for r, n in zip(sorted(cells["rnd"]), sorted(cells["none"]), strict=True)) >= 2, cells

    summary = (sweep_dir / "report" / "summary.md").read_text()
    # The report opens with the answer: RND's effect on cells, with a CI that excludes zero.
    assert summary.split("\n## ")[1].startswith("Answer")
    answer = summary.split("## Answer", 1)[1].split("\n## ", 1)[0]
    line = next(x for x in answer.splitlines() if x.startswith("- explore/cells: motivation=rnd − motivation=none: +"))
    low, high = (float(v) for v in re.search(r"cells \[([-\d.]+), ([-\d.]+)\]", line).groups())  # type: ignore[union-attr]
    assert 0 < low < high and line.endswith(": higher"), line
