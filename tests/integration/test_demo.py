"""The README's first command, after its install steps, exactly as written there: the demo sweep and its report.

It is the learning test of the exploration bonus too: on the pixel maze there is no extrinsic reward, so plain
PPO is a random walk, and RND must reach clearly more cells, seed for seed, with a matched-pair interval of the
effect that excludes zero; the report's verdict at 3 vs 3 seeds is "not decided" (no two-sided test can reach 5 %
there), and the README's next step, `rlsweep seeds sweeps/demo`, adds seeds until its sequential test decides.
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
    # The report opens with the answer: both arms' cells, RND's effect with its (descriptive) interval, and the
    # test's verdict, which 3 vs 3 seeds cannot make at 5 %: the README says so, and how many seeds could.
    assert summary.split("\n## ")[1].startswith("Answer")
    answer = summary.split("## Answer", 1)[1].split("\n## ", 1)[0]
    line = next(x for x in answer.splitlines() if x.startswith("- explore/cells: motivation=rnd vs motivation=none: "))
    low, high = (float(v) for v in re.search(r"Δ \+[\d.]+ \[([-\d.]+), ([-\d.]+)\]", line).groups())  # type: ignore[union-attr]
    assert 0 < low < high, line
    assert "exact permutation test (20 arrangements)" in line and "smallest possible p is 0.1" in line, line
    assert "4 seeds per configuration could" in line and line.endswith(": **not decided**"), line

    # The README's next step: `rlsweep seeds` adds seeds to both arms, look by look, until its sequential test
    # decides, and the report then shows that decision (the README: 3 more seeds per arm, decided at look 2).
    more = subprocess.run("rlsweep seeds sweeps/demo && rlsweep report sweeps/demo", shell=True, cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=1800)  # fmt: skip
    assert more.returncode == 0, more.stdout[-3000:] + more.stderr[-3000:]
    assert "[rlsweep] every comparison is decided (larger=1); no seeds to add" in more.stdout, more.stdout[-3000:]
    summary = (sweep_dir / "report" / "summary.md").read_text()
    line = next(x for x in summary.splitlines() if x.startswith("- explore/cells: motivation=rnd vs motivation=none: "))
    assert "; sequential test 1 of rlsweep seeds (two-sided AdaStop, family-wise α = 0.05" in line, line
    assert line.endswith(": **higher**"), line
