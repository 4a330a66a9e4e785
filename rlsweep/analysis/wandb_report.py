"""The sweep report as a W&B Report (``rlsweep report <sweep> --wandb``), built with ``wandb_workspaces``.

:func:`build_wandb_report` only builds the report object and touches no network, so it can be inspected and
tested offline: the offline report's answer first (each factor's effect with its CI and P(improvement), as
``summary.md`` words it), a runset filtered to the sweep's W&B group (= the sweep name, see
``rlsweep.tracking``), one line plot per metric against ``global_step`` grouped by configuration (the
``run_name`` config key) with the mean and a standard-error band, one plot per ablation factor (grouped by
``choice/<factor>``), and the offline report's Markdown tables (effects, IQM, bootstrap CIs, flagged runs)
as text, because W&B's own charts stop at mean ± std/stderr. The answer and the tables are ``summary.md``'s, word
for word: their statistics are rendered once, from :mod:`rlsweep.analysis.report_stats`, for the Markdown, the page
and this report alike, so none is formatted here. :func:`save_wandb_report` uploads it, and is only called when W&B
is online.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlsweep.analysis.load import SweepData

# W&B report panel grids are 24 units wide; two plots per row stay readable.
_GRID_W = 24
_PANEL_W, _PANEL_H = 12, 8


def sweep_group(data: SweepData) -> str:
    """The W&B group of the sweep's runs: the recorded sweep name, else the directory name."""
    names = data.sweep_names
    return names[0] if len(names) == 1 else data.sweep_dir.name


def wandb_target(data: SweepData) -> tuple[str, str | None]:
    """(project, entity) the runs logged to, as recorded in run.json by the tracker; default project rlsweep."""
    for col in ("wandb_project", "wandb_entity"):
        if col not in data.runs:
            return "rlsweep", None
    projects = [p for p in data.runs["wandb_project"].dropna().unique() if p]
    entities = [e for e in data.runs["wandb_entity"].dropna().unique() if e]
    return (str(projects[0]) if projects else "rlsweep"), (str(entities[0]) if entities else None)


def _layouts(n: int) -> list[Any]:
    import wandb_workspaces.reports.v2 as wr

    per_row = _GRID_W // _PANEL_W
    return [
        wr.Layout(x=(i % per_row) * _PANEL_W, y=(i // per_row) * _PANEL_H, w=_PANEL_W, h=_PANEL_H) for i in range(n)
    ]


def build_wandb_report(
    data: SweepData,
    metrics: Sequence[str],
    *,
    project: str,
    entity: str,
    summary_markdown: str = "",
    title: str | None = None,
) -> Any:
    """The ``wandb_workspaces.reports.v2.Report`` for ``data``; nothing is sent anywhere.

    ``entity`` must be given: the report class would otherwise ask the W&B API for the default entity.
    """
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    group = sweep_group(data)

    def runset(name: str) -> Any:
        # Filter on the run's group, which the tracker sets to the sweep name: exactly this sweep's runs,
        # including resumed and unfinished ones (their state shows in the runs table).
        return wr.Runset(entity=entity, project=project, name=name, filters=expr.And(expr.Metric("Group") == group))

    curves: list[Any] = [
        wr.LinePlot(
            title=f"{m} by configuration (mean ± stderr over seeds)",
            x="global_step",
            y=[m],
            title_x="agent steps (global_step)",
            title_y=m,
            groupby=wr.Config("run_name"),
            groupby_aggfunc="mean",
            groupby_rangefunc="stderr",
            layout=layout,
        )
        for m, layout in zip(metrics, _layouts(len(metrics)), strict=True)
    ]
    factors = [f for f in data.factors if f in data.choice_columns]
    primary = metrics[0] if metrics else None
    by_factor: list[Any] = (
        [
            wr.LinePlot(
                title=f"{primary} by {f} (other factors pooled)",
                x="global_step",
                y=[primary],
                title_x="agent steps (global_step)",
                groupby=wr.Config(f"choice/{f}"),
                groupby_aggfunc="mean",
                groupby_rangefunc="stderr",
                layout=layout,
            )
            for f, layout in zip(factors, _layouts(len(factors)), strict=True)
        ]
        if primary
        else []
    )
    n_done = int((data.runs["status"] == "completed").sum())
    intro = (
        f"Sweep **{group}**: {len(data.runs)} runs, {len(data.configs)} configurations, seeds {data.seeds}, "
        f"{n_done} completed; factors: {', '.join(data.factors) or 'none'}. Runs: W&B group `{group}`. "
        "Bands in W&B's plots are ± standard error across seeds; the tables below carry the IQM and "
        "stratified bootstrap 95 % CIs computed by `rlsweep report` from the local metrics store."
    )
    answer, tables = split_answer(summary_markdown)
    blocks: list[Any] = [wr.TableOfContents(), wr.MarkdownBlock(text=intro)]
    if answer:
        # The offline report's answer, word for word: effects with CIs and P(improvement) come first here too.
        blocks += [wr.H2(text="Answer"), wr.MarkdownBlock(text=answer)]
    blocks += [
        wr.H2(text="Learning curves per configuration"),
        wr.PanelGrid(runsets=[runset(f"sweep {group}")], panels=curves),
    ]
    if by_factor:
        blocks += [
            wr.H2(text="Ablation: one factor at a time"),
            wr.PanelGrid(runsets=[runset(f"sweep {group} by factor")], panels=by_factor),
        ]
    if tables:
        blocks += [wr.H2(text="Effects and final performance (IQM, bootstrap CIs)"), wr.MarkdownBlock(text=tables)]
    return wr.Report(
        project=project,
        entity=entity,
        title=(title or f"rlsweep: {group}")[:128],
        description=f"Comparison of the {len(data.configs)} configurations of sweep {group}",
        blocks=blocks,
        width="fluid",
    )


def split_answer(summary_markdown: str) -> tuple[str, str]:
    """``summary.md`` as (its Answer section without the heading, everything after it); ("", all) without one."""
    _, sep, rest = summary_markdown.partition("## Answer\n")
    if not sep:
        return "", summary_markdown
    answer, sep2, after = rest.partition("\n## ")
    return answer.strip(), (sep2.lstrip("\n") + after).strip()


def report_spec(report: Any) -> str:
    """The report object as JSON (what would be saved), for inspection when it cannot be uploaded."""
    import pydantic
    import wandb_workspaces.reports.v2 as wr

    return pydantic.TypeAdapter(wr.Report).dump_json(report, indent=2).decode()


def save_wandb_report(report: Any) -> str:
    """Upload ``report`` (needs W&B online and logged in); returns its URL."""
    report.save()
    return str(report.url)
