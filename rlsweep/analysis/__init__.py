"""Sweep analysis: load a sweep's runs, aggregate across seeds with CIs, plot, and write the report.

Modules: ``load`` (on-disk contract -> tables), ``stats`` (final performance, IQM, bootstrap CIs, curves,
factor effects), ``plots`` (PNG figures), ``report`` (``write_report``: HTML / Markdown / CSV), ``report_stats``
(what the report says about each statistic, declared once for Markdown, HTML and W&B).
"""

from rlsweep.analysis.load import SweepData, load_sweep
from rlsweep.analysis.report import write_report
from rlsweep.analysis.stats import bootstrap_ci, final_performance, iqm

__all__ = ["SweepData", "bootstrap_ci", "final_performance", "iqm", "load_sweep", "write_report"]
