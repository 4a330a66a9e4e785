"""``rlsweep eval`` and the W&B report object in the fast tier: a tiny run's checkpoint played greedily in this process
(no video, no W&B), and the report that ``rlsweep report --wandb`` would save, built from a synthetic sweep. The
command line, H.264 videos, the W&B eval run and the report of a trained sweep are tests/integration's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from inline import TINY, run_inline
from test_analysis import make_2x2

from rlsweep.launching import cli


def test_a_tiny_runs_checkpoint_is_played_greedily_and_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = run_inline(tmp_path, *TINY)
    out = tmp_path / "eval"
    threads = torch.get_num_threads()  # eval sets torch's threads (--threads)
    try:
        args = ["eval", str(run_dir), "--episodes", "3", "--envs", "2", "--video-episodes", "0", "--out", str(out)]
        assert cli.main(args) == 0, capsys.readouterr().err
    finally:
        torch.set_num_threads(threads)
    result = json.loads((out / "eval.json").read_text())
    assert result["global_step"] == 256 and result["policy"] == "greedy" and result["videos"] == []
    assert len(result["episodes"]) == 3
    # the fake env's time limit (64 steps) ends every episode that nothing else ends
    assert all(0 < e["length"] <= result["time_limit_steps"] == 64 for e in result["episodes"])
    lengths = [e["length"] for e in result["episodes"]]
    assert result["summary"]["length"]["mean"] == sum(lengths) / len(lengths)


def test_the_wandb_report_object_is_built_without_touching_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb
    import wandb_workspaces.reports.v2 as wr

    from rlsweep.analysis import load_sweep
    from rlsweep.analysis.report import chosen_metrics
    from rlsweep.analysis.wandb_report import build_wandb_report, report_spec

    def no_api(*args: object, **kwargs: object) -> None:
        raise AssertionError("building the report must not call the W&B API")

    monkeypatch.setattr(wandb, "Api", no_api)
    make_2x2(tmp_path)
    data = load_sweep(tmp_path)
    metrics = chosen_metrics(data)
    report = build_wandb_report(data, metrics, project="proj", entity="team", summary_markdown="## Answer\n\n- x")
    assert (report.project, report.entity) == ("proj", "team")
    curves = next(b for b in report.blocks if isinstance(b, wr.PanelGrid))
    assert [p.y for p in curves.panels] == [[m] for m in metrics]
    spec = json.loads(report_spec(report))
    assert spec["entity"] == "team" and len(spec["blocks"]) == len(report.blocks)
