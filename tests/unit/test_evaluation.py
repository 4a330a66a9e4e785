"""``rlsweep eval`` and the W&B report object in the fast tier: a tiny run's checkpoint played greedily in this process
(no video, no W&B), which checkpoint files the options choose, the learning curve's files, and the report that
``rlsweep report --wandb`` would save, built from a synthetic sweep. The command line, H.264 videos, the W&B eval
run and the report of a trained sweep are tests/integration's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from inline import TINY, run_inline
from test_analysis import make_2x2

from rlsweep import evaluation
from rlsweep.cli import commands as cli
from rlsweep.evaluation.checkpoints import RunInfo


def test_a_tiny_runs_checkpoint_is_played_greedily_and_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = run_inline(tmp_path, *TINY)
    capsys.readouterr()  # training's output: what eval prints is checked below
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
    assert result["summary"]["length_per_episode"]["mean"] == sum(lengths) / len(lengths)

    # Issue #26: every summarised number, printed and saved, says it is per episode (the fake env counts no rooms or
    # cells, so no explore/* counter is named); the second printed line says what they are, as eval.json does.
    assert sorted(result["summary"]) == ["length_per_episode", "return_per_episode", "score_per_episode"]
    summary_line, note = capsys.readouterr().out.splitlines()
    assert "score per episode 0 ± 0 [0, 0]" in summary_line and "length per episode " in summary_line
    assert note == result["note"] == "per episode of greedy play: mean ± std [min, max] over 3 episodes"


def _evaluation(policy: str, summary: dict[str, dict[str, float]]) -> evaluation.Evaluation:
    episode = evaluation.Episode(0, 0, 100.0, 1.0, 128, 3, 40, True)
    return evaluation.Evaluation(
        run_dir="r", run_id="run", env="maze", checkpoint="c.pt", global_step=640, iteration=10, policy=policy,
        seed=0, device="cpu", envs=1, time_limit_steps=128, episodes=[episode], summary=summary,
    )  # fmt: skip


def test_per_episode_names_in_the_line_the_note_and_the_curve_where_the_env_counts_rooms_and_cells() -> None:
    (episode,) = _evaluation("greedy", {}).episodes
    summary = evaluation.summarise([episode])
    assert sorted(summary) == [f"{k}_per_episode" for k in ("cells", "length", "return", "rooms", "score")]
    e = _evaluation("sample", summary)
    line = e.line()
    for text in ("score per episode 100", "rooms per episode 3", "cells per episode 40", "length per episode 128"):
        assert text in line
    assert "1 cut by the time limit" in line
    note = evaluation.per_episode_note("sample", summary, 1)
    assert note.startswith("per episode of sampled play (the training policy): mean ± std [min, max] over 1 ")
    assert "not the run's cumulative explore/rooms and explore/cells" in note

    row = evaluation.curve_row(e)
    assert list(row) == list(evaluation.CURVE_COLUMNS)
    statistics = [c for c in row if c.endswith(("_mean", "_std", "_min", "_max"))]
    assert len(statistics) == 9 and all("_per_episode_" in c for c in statistics)
    assert (row["rooms_per_episode_max"], row["cells_per_episode_mean"]) == (3.0, 40.0)

    no_counts = {k: v for k, v in summary.items() if not k.startswith(("rooms", "cells"))}
    assert "explore/" not in evaluation.per_episode_note("greedy", no_counts, 1)
    assert evaluation.curve_row(_evaluation("greedy", no_counts))["cells_per_episode_mean"] == ""


def test_the_options_choose_the_latest_checkpoint_a_snapshot_by_step_or_every_snapshot(tmp_path: Path) -> None:
    run = RunInfo(tmp_path, "run", cfg=None, record=None)  # choosing reads file names and the latest's step only
    with pytest.raises(evaluation.BadInput, match=r"^no checkpoint in .*no snapshots in .*keep_checkpoints was 0\)$"):
        evaluation.choose_checkpoints(run, None, None, False)
    with pytest.raises(evaluation.BadInput, match=r"^--all-steps: no snapshots in "):
        evaluation.choose_checkpoints(run, None, None, True)

    latest = tmp_path / "checkpoint.pt"
    torch.save({"policy": {}, "global_step": 640, "iteration": 10}, latest)
    (tmp_path / "checkpoints").mkdir()
    for step in (512, 256):
        torch.save({"policy": {}, "global_step": step}, tmp_path / "checkpoints" / f"step-{step}.pt")
    assert evaluation.choose_checkpoints(run, None, None, False) == [latest]
    snapshots = [tmp_path / "checkpoints" / f"step-{step}.pt" for step in (256, 512)]
    assert evaluation.choose_checkpoints(run, None, None, True) == snapshots  # in step order
    assert evaluation.choose_checkpoints(run, 512, None, False) == [snapshots[1]]
    assert evaluation.choose_checkpoints(run, 640, None, False) == [latest]  # the latest, read for its step
    with pytest.raises(evaluation.BadInput) as refused:
        evaluation.choose_checkpoints(run, 300, None, False)
    assert str(refused.value) == (
        f"--step 300: no checkpoint of that step in {tmp_path}; snapshots at steps 256, 512; "
        "latest checkpoint at step 640"
    )
    # --checkpoint takes any file, and wins over the other options (argparse keeps them apart on the command line)
    assert evaluation.choose_checkpoints(run, 300, snapshots[0], True) == [snapshots[0]]
    with pytest.raises(evaluation.BadInput, match=r"x\.pt: no such file$"):
        evaluation.choose_checkpoints(run, None, tmp_path / "x.pt", False)


def test_the_learning_curve_has_a_row_per_snapshot_and_empty_counts_where_the_env_counts_none(tmp_path: Path) -> None:
    results = []
    for step, score in ((256, 1.0), (512, 3.0)):
        episodes = [evaluation.Episode(k, 0, score + k, 0.0, 64, None, None, False) for k in range(2)]
        e = _evaluation("greedy", evaluation.summarise(episodes))
        e.global_step, e.episodes, e.checkpoint = step, episodes, f"step-{step}.pt"
        results.append(e)
    csv_path, png_path = evaluation.write_curve(results, tmp_path)
    assert csv_path == tmp_path / evaluation.CURVE_FILE and png_path == tmp_path / "eval_curve.png"
    header, *rows = [line.split(",") for line in csv_path.read_text().splitlines()]
    assert header == list(evaluation.CURVE_COLUMNS)
    column = {name: [row[i] for row in rows] for i, name in enumerate(header)}
    assert column["global_step"] == ["256", "512"] and column["checkpoint"] == ["step-256.pt", "step-512.pt"]
    assert column["score_per_episode_mean"] == ["1.5", "3.5"] and column["score_per_episode_max"] == ["2.0", "4.0"]
    assert column["rooms_per_episode_mean"] == column["cells_per_episode_max"] == ["", ""]
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
