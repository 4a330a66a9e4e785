"""The report's statistics registry (rlsweep.analysis.report_stats): every declared statistic reaches summary.md,
report.html and the W&B report alike; adding one is one declaration; the page escapes what it shows."""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_analysis import const, make_2x2, make_run
from tolerance import rounding

from rlsweep.analysis import report
from rlsweep.analysis.load import load_sweep
from rlsweep.analysis.normalise import NORMALISED, REFERENCE_SCORES, SCORE
from rlsweep.analysis.report import chosen_metrics, write_report
from rlsweep.analysis.report_stats import (
    COMPARISON,
    CONFIGURATION,
    COVERAGE,
    LEVEL,
    NO_VALUE,
    RUN,
    Shown,
    Table,
    column,
    estimate,
    said,
)
from rlsweep.analysis.wandb_report import build_wandb_report, split_answer


def _outputs(sweep: Path) -> tuple[str, str, str]:
    """summary.md, report.html, and the W&B report's tables block (built offline from summary.md)."""
    write_report(sweep)
    md = (sweep / "report" / "summary.md").read_text()
    page = (sweep / "report" / "report.html").read_text()
    data = load_sweep(sweep)
    wandb = build_wandb_report(data, chosen_metrics(data), project="p", entity="e", summary_markdown=md)
    return md, page, str(wandb.blocks[-1].text)


def test_every_declared_statistic_shows_in_markdown_html_and_wandb(tmp_path: Path) -> None:
    make_2x2(tmp_path)  # two factors: per configuration, per comparison (tested: a primary metric) and per level
    md, page, wandb_tables = _outputs(tmp_path)
    assert split_answer(md)[1] == wandb_tables  # the W&B report carries summary.md's tables, word for word
    md_headers = {line for line in md.splitlines() if line.startswith("| ") and "---" not in line}
    for table in (CONFIGURATION, COMPARISON, LEVEL):
        header = table.render([], tested=True).header
        line = "| " + " | ".join(header) + " |"
        assert line in md_headers and line in wandb_tables, line
        assert "".join(f"<th>{html.escape(h)}</th>" for h in header) in page, header
    for table in (RUN, COVERAGE):  # report.html's appendix: the runs and their seeds
        assert "".join(f"<th>{html.escape(h)}</th>" for h in table.render([]).header) in page
    # The answer's sentences are the tables' phrases: the comparison's, and no other wording of its numbers.
    effects = pd.read_csv(tmp_path / "report" / "effects.csv", keep_default_na=False)
    for row in effects.to_dict("records"):
        row["p_improve"], row["ci_low"], row["ci_high"] = (float(row[k]) for k in ("p_improve", "ci_low", "ci_high"))
        sentence = COMPARISON.sentence(row)
        assert f"- {sentence}; " in md and f"<li>{html.escape(sentence, quote=False)}; " in page


def test_a_new_statistic_is_one_declaration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A median per configuration and a difference of medians per comparison, each declared once: computed with its
    bootstrap interval, written to the CSVs, and shown in summary.md, report.html and the W&B report."""
    median = estimate("median", "median", n="n_used", aggregate=lambda a: np.median(a, axis=-1))
    shift = estimate(
        "median shift",
        "median_shift",
        n="n_runs",
        fmt=lambda v: f"{v:+.3g}",
        two_sample=lambda x, y: np.median(x, axis=-1) - np.median(y, axis=-1),
    )
    monkeypatch.setattr(
        report, "CONFIGURATION", dataclasses.replace(CONFIGURATION, shown=(*CONFIGURATION.shown, median))
    )
    monkeypatch.setattr(report, "COMPARISON", dataclasses.replace(COMPARISON, shown=(*COMPARISON.shown, shift)))
    values = make_2x2(tmp_path)
    md, page, wandb_tables = _outputs(tmp_path)

    summary = pd.read_csv(tmp_path / "report" / "summary.csv").set_index("name")
    effects = pd.read_csv(tmp_path / "report" / "effects.csv").set_index("factor")
    # medians of 2 seeds: one addition and a halving of numbers up to 22, exact here; a wrong seed moves one by 1
    exact = rounding(np.float64, depth=4, scale=32.0)
    for name, seeds in values.items():
        assert summary.loc[name, "median"] == pytest.approx(float(np.median(seeds)), abs=exact)
        assert summary.loc[name, "median_ci_low"] <= summary.loc[name, "median"] <= summary.loc[name, "median_ci_high"]
    # model B vs A within each critic_init: medians 11 - 2 and 21 - 5, averaged over the 2 settings
    assert effects.loc["model", "median_shift"] == pytest.approx((9.0 + 16.0) / 2, abs=exact)
    assert {"median_shift_ci_low", "median_shift_ci_high"} <= set(effects.columns)
    for header in ("median", "median 95 % CI", "median shift", "median shift 95 % CI"):
        assert f" {header} |" in md and f" {header} |" in wandb_tables and f"<th>{header}</th>" in page
    row_b = next(line for line in md.splitlines() if line.startswith("| model=B vs model=A |"))
    assert row_b.split(" | ")[-2] == "+12.5"  # the new column, before its interval: its value in its format


def test_optimality_gap_is_shown_for_the_normalised_score_only(tmp_path: Path) -> None:
    """rliable's optimality gap per configuration, mean over seeds of max(1 - x, 0) of the normalised final score,
    with its bootstrap interval: in summary.csv and in the normalised score's table; the raw score has no column."""
    # Two games, two seeds each, constant curves whose normalised values are chosen: coinrun's 0.5 and 1.2 (above
    # a human's: no gap), jumper's 0.25 and 0.75.
    finals = {"coinrun": [0.5, 1.2], "jumper": [0.25, 0.75]}
    gaps = {"coinrun": (0.5 + 0.0) / 2, "jumper": (0.75 + 0.25) / 2}
    for env, xs in finals.items():
        low, high = REFERENCE_SCORES[env]
        for seed, x in enumerate(xs):
            make_run(tmp_path, env, seed, {"env": env}, const(low + x * (high - low)))
    md, page, wandb_tables = _outputs(tmp_path)

    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    normalised = summary[summary["metric"] == NORMALISED].set_index("name")
    # a score, its normalisation (2 roundings), a mean of 11 equal values, 1 - x and a mean of 2, relative to values
    # up to 1.2; a gap that keeps 1.2's negative shortfall (0.15 for coinrun) or averages the games is off by 0.1
    exact = rounding(np.float64, depth=32, scale=2.0)
    for env, gap in gaps.items():
        row = normalised.loc[env]
        assert row["optimality_gap"] == pytest.approx(gap, abs=exact)
        assert row["optimality_gap_ci_low"] <= row["optimality_gap"] <= row["optimality_gap_ci_high"]
    assert summary.loc[summary["metric"] == SCORE, "optimality_gap"].isna().all()  # the raw score: not computed

    header = "optimality gap (lower is better)"
    sections = {s.split("\n", 1)[0]: s for s in md.split("\n## ")[1:]}
    assert header in sections[f"{NORMALISED} (primary)"] and header not in sections[SCORE]
    table = [line for line in sections[f"{NORMALISED} (primary)"].splitlines() if line.startswith("| ")]
    column_of = table[0].split(" | ").index(header)
    for env, gap in gaps.items():
        row = next(line for line in table if line.startswith(f"| env={env} |"))
        assert row.split(" | ")[column_of] == f"{gap:.4g}"  # "0.25", "0.5": as num() writes a number
        assert row.split(" | ")[column_of + 1].startswith("[")  # then its interval
    assert f" {header} 95 % CI |" in wandb_tables and f"<th>{header}</th>" in page
    assert md.count(f"| {header} |") == 1 and page.count(f"<th>{header}</th>") == 1  # one metric's table only
    # the declaration's condition: a table of another metric, or of no metric in particular, leaves it out
    assert header in CONFIGURATION.render([], metric=NORMALISED).header
    for metric in (SCORE, None):
        assert header not in CONFIGURATION.render([], metric=metric).header
        assert "optimality_gap" not in CONFIGURATION.aggregates(metric)


def test_a_table_renders_its_declarations() -> None:
    table = Table(
        column("what", "name", str),
        (
            column("x", "x", ci=None),
            said(lambda row: f"{row['n']} seed(s)"),  # in the sentence only
            estimate("y", "y", n="n", phrase=lambda row: f"y {row['y']:.1f}"),
            Shown("p", lambda row: f"{row['p']:.2f}", tested=True),
        ),
        row_class=lambda row: "warn" if row["x"] < 0 else "",
    )
    rows = [
        {"metric": "m", "name": "a|b", "x": 1.5, "y": 2.0, "y_ci_low": 1.0, "y_ci_high": 3.0, "n": 3, "p": 0.5},
        {"metric": "m", "name": "c", "x": -1.0, "y": float("nan"), "y_ci_low": 0.0, "y_ci_high": 0.0, "n": 1, "p": 1},
    ]
    described = table.render(rows)
    assert described.header == ["what", "x", "y", "y 95 % CI"]
    assert described.rows == [["a|b", "1.5", "2", "[1, 3]"], ["c", "-1", NO_VALUE, "n/a (1 seed)"]]
    assert described.classes == ["", "warn"]
    assert table.render(rows, tested=True).header[-1] == "p"
    # Markdown escapes the cell that holds its column separator
    assert described.markdown()[2] == "| a\\|b | 1.5 | 2 | [1, 3] |"
    assert table.sentence(rows[0]) == "m: a|b: 3 seed(s), y 2.0"


def test_page_escapes_what_it_shows_and_stays_self_contained(tmp_path: Path) -> None:
    for seed in range(2):
        make_run(tmp_path, "odd", seed, {"model": "<i>A&B</i>"}, const(1.0 + seed))
        make_run(tmp_path, "plain", seed, {"model": "B"}, const(3.0 + seed))
    page = write_report(tmp_path).read_text()
    assert "<i>A&B</i>" not in page
    # the label in the tables and in the answer's sentence, as text
    assert "<td>model=&lt;i&gt;A&amp;B&lt;/i&gt;</td>" in page
    assert "model=B vs model=&lt;i&gt;A&amp;B&lt;/i&gt;" in page
    # one file: inline style, images as data: URIs, no script, nothing fetched
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page)
    assert page.count('src="data:image/png;base64,') == len(list((tmp_path / "report").glob("*.png")))
