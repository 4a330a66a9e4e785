"""The report on a sweep of short real runs: CLI, W&B Report object (offline), headless browser, notebook.

One module-scoped sweep (``motivation=none,rnd`` x ``seed=1,2`` on the fake env) is made through the launch
path in this process and shared by every test here, because a sweep costs most of this file's time. One run of a
copy is then marked unfinished (as a killed job leaves it) so the report must show it, not hide it.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from inline import sweep_inline

# a trained sweep per module, then its report; one worker builds the module's fixture (xdist_group)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_report_sweep")]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "analysis.ipynb"
SMOKE = ["env=fake", "budget=smoke", "debug=smoke", "logger=none"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "chromium not installed: apt-get install -y --no-install-recommends chromium"


def offline_env(tmp: Path) -> dict[str, str]:
    """No W&B key, no netrc, no inherited W&B service: the report must stay offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return {**env, "NETRC": str(tmp / "no-netrc"), "WANDB_SILENT": "true"}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sweep_inline(tmp_path_factory.mktemp("sweep"), "motivation=none,rnd", "seed=1,2", *SMOKE, sweep_name="nb")


@pytest.fixture(scope="module")
def report_dir(sweep_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``rlsweep report <copy> --wandb`` on a copy where one run is unfinished (killed at half its budget)."""
    copy = tmp_path_factory.mktemp("copy") / "nb"
    shutil.copytree(sweep_dir, copy, ignore=shutil.ignore_patterns("checkpoint.pt", "report"))
    victim = copy / "ppo_rnd_a0-env_fake-s2"
    meta = json.loads((victim / "run.json").read_text())
    meta.update(status="running", global_step=128)
    (victim / "run.json").write_text(json.dumps(meta))
    lines = (victim / "metrics.jsonl").read_text().splitlines()
    (victim / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "rlsweep.cli.commands", "report", str(copy), "--wandb"],
        capture_output=True,
        text=True,
        env=offline_env(copy.parent),
    )
    assert proc.returncode == 0, proc.stderr
    assert "not saved: W&B is offline" in proc.stdout
    return copy / "report"


def test_report_files_and_unfinished_run_shown(report_dir: Path) -> None:
    names = {p.name for p in report_dir.iterdir()}
    assert {"report.html", "summary.md", "summary.csv", "ablation.csv", "effects.csv", "runs.csv"} <= names
    assert "wandb_report.json" in names
    assert {"answer.png", "episode_score_profile.png"} <= names  # the answer; the primary metric's profile
    for metric in ("episode_score", "episode_return", "motivation_int_reward_mean"):
        # One factor (motivation): its effect, no "averaged over the other factors" panel.
        assert {f"{metric}_{k}.png" for k in ("curves", "final", "effects")} <= names
        assert f"{metric}_ablation.png" not in names
    # speed is a cost: its curves and final values, no effect (nothing to test)
    assert {"perf_sps_curves.png", "perf_sps_final.png"} <= names and "perf_sps_effects.png" not in names
    page = (report_dir / "report.html").read_text()
    assert "ppo_rnd_a0-env_fake-s2: running at 50 % of budget" in page.replace("run ", "")
    md = (report_dir / "summary.md").read_text()
    assert "seed 2 running (50 %, excluded)" in md
    assert "| motivation=rnd | 1/2 |" in md  # 1 of 2 seeds completed, not silently a full row


def test_wandb_report_object_offline(sweep_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report that ``--wandb`` would save: blocks, panels, runset filter; no network touched."""
    import wandb
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    from rlsweep.analysis import load_sweep
    from rlsweep.analysis.report import chosen_metrics, write_report
    from rlsweep.analysis.wandb_report import build_wandb_report, report_spec, split_answer, wandb_target

    def no_api(*args: object, **kwargs: object) -> None:
        raise AssertionError("building the report must not call the W&B API")

    monkeypatch.setattr(wandb, "Api", no_api)
    data = load_sweep(sweep_dir)
    assert wandb_target(data) == ("rlsweep", None)  # logger=none: the tracker recorded no W&B target
    metrics = chosen_metrics(data)
    assert metrics == ["episode/score", "episode/return", "motivation/int_reward_mean", "perf/sps"]
    summary = (write_report(sweep_dir, tmp_path / "report").parent / "summary.md").read_text()
    report = build_wandb_report(data, metrics, project="proj", entity="team", summary_markdown=summary)
    assert (report.project, report.entity, report.title) == ("proj", "team", "rlsweep: nb")
    kinds = [type(b).__name__ for b in report.blocks]
    assert kinds == ["TableOfContents", "MarkdownBlock", "H2", "MarkdownBlock", "H2", "PanelGrid", "H2", "PanelGrid",
                     "H2", "MarkdownBlock"]  # fmt: skip
    # The answer comes first, as in the offline report; the tables after the curves.
    assert report.blocks[2].text == "Answer"
    # the offline report's answer word for word: the effects, the test of each with its p-value and family, the
    # verdicts and the note on how they were reached
    answer, tables = split_answer(summary)
    assert report.blocks[3].text == answer
    line = next(x for x in answer.splitlines() if x.startswith("- episode/score: motivation=rnd vs motivation=none"))
    assert "permutation test" in line and "family-wise α = 0.05" in line and line.endswith("**")
    assert "Verdicts: 1 comparison tested by a two-sided permutation test at α = 0.05" in answer
    curves, by_factor = (b for b in report.blocks if isinstance(b, wr.PanelGrid))
    for grid in (curves, by_factor):
        (runset,) = grid.runsets
        assert (runset.entity, runset.project) == ("team", "proj")
        assert expr.string_to_filterexpr_list(runset.filters) == [expr.Metric("Group") == "nb"]
    assert [p.y for p in curves.panels] == [[m] for m in metrics]
    for panel in curves.panels:
        assert isinstance(panel, wr.LinePlot) and panel.x == "global_step"
        assert panel.groupby == wr.Config("run_name") and panel.groupby_aggfunc == "mean"
    layouts = {(p.layout.x, p.layout.y) for p in curves.panels}
    assert len(layouts) == len(metrics)  # no two panels on top of each other
    assert [p.groupby for p in by_factor.panels] == [wr.Config("choice/motivation")]
    assert report.blocks[-1].text == tables and tables.startswith("## ")
    spec = json.loads(report_spec(report))
    assert spec["entity"] == "team" and len(spec["blocks"]) == len(report.blocks)


# ------------------------------------------------------------------------------------------ headless browser

_CHECK_SCRIPT = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  window.__errors.push(t && t !== window && t.tagName ? 'failed to load <' + t.tagName + '>' : String(e.message));
}, true);
var origError = console.error;
console.error = function () {
  window.__errors.push(Array.prototype.join.call(arguments, ' '));
  origError.apply(console, arguments);
};
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var res = {n: imgs.length,
             decoded: imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length,
             sizes: imgs.map(function (i) { return [i.naturalWidth, i.naturalHeight, i.alt]; }),
             errors: window.__errors};
  var pre = document.createElement('pre');
  pre.id = 'rlsweep-check';
  pre.textContent = JSON.stringify(res);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}",
    ]  # fmt: skip
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


def browser_check(page: Path, tmp: Path) -> dict[str, object]:
    """Open ``page`` (with a checking script injected) in headless chromium; what the page saw on load."""
    checked = tmp / f"checked-{page.name}"
    checked.write_text(page.read_text().replace("<head>", "<head>" + _CHECK_SCRIPT, 1))
    proc = _chromium(tmp, "--virtual-time-budget=10000", "--dump-dom", checked.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    start = proc.stdout.index('<pre id="rlsweep-check">') + len('<pre id="rlsweep-check">')
    # --dump-dom serialises the DOM, so the JSON text comes back HTML-escaped.
    result: dict[str, object] = json.loads(html.unescape(proc.stdout[start : proc.stdout.index("</pre>", start)]))
    return result


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_report_renders_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    page = report_dir / "report.html"
    assert "<script" not in page.read_text()  # the product page itself runs no code
    seen = browser_check(page, tmp_path)
    assert seen["errors"] == []
    # the answer, 3 metrics x (curves, final, effects), perf/sps (curves, final: a cost, no effects), the primary
    # metric's profile: all decoded
    assert seen["n"] == seen["decoded"] == 1 + 3 * 3 + 2 + 1
    alts = [alt for _w, _h, alt in seen["sizes"]]  # type: ignore[attr-defined]
    assert alts.count("learning curves") == 4 and alts.count("final performance") == 4
    assert all(w >= 400 and h >= 200 for w, h, _alt in seen["sizes"])  # type: ignore[attr-defined]

    # What a person sees: a screenshot of the top of the page holds text, tables and coloured plot lines.
    shot = tmp_path / "shot.png"
    proc = _chromium(tmp_path, "--window-size=1400,3000", f"--screenshot={shot}", page.as_uri())
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    from matplotlib.image import imread

    rgb = np.asarray(imread(shot))[..., :3]
    assert rgb.shape[:2] == (3000, 1400)
    ink = float((rgb.min(axis=-1) < 0.9).mean())  # anything not near-white: text, grid, lines
    colour = float((rgb.max(axis=-1) - rgb.min(axis=-1) > 0.3).mean())  # saturated: the tab10 plot lines
    assert 0.02 < ink < 0.6, ink
    assert colour > 0.0005, colour


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_browser_check_catches_a_broken_image(report_dir: Path, tmp_path: Path) -> None:
    """The check above can fail: a corrupt PNG is reported as not decoded and as a load error."""
    broken = tmp_path / "broken.html"
    page = (report_dir / "report.html").read_text()
    broken.write_text(page.replace("<body>", '<body><img alt="broken" src="data:image/png;base64,iVBORw0KAAAA">', 1))
    seen = browser_check(broken, tmp_path)
    assert seen["decoded"] == int(seen["n"]) - 1  # type: ignore[call-overload]
    assert seen["errors"] == ["failed to load <IMG>"]


# ------------------------------------------------------------------------------------------------- notebook


def test_notebook_is_committed_without_outputs() -> None:
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "the notebook has no code"
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert any("parameters" in c["metadata"].get("tags", []) for c in code)


@pytest.mark.e2e  # a real Jupyter kernel
def test_notebook_executes_on_the_sweep(sweep_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbclient
    import nbformat

    monkeypatch.setenv("RLSWEEP_SWEEP_DIR", str(sweep_dir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 16  # the report's figures: 4 metrics x (curves, final, ablation, effects)
    text = "".join(o.get("text", "") for o in outputs)
    assert "4 runs, 2 configurations, seeds [1, 2]" in text
