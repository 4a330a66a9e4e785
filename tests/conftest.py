"""Fixtures of every test, and the tiers.

The fast tier (``pytest -m fast``) is every test without one of the marks ``slow``, ``slurm``, ``e2e`` and
``browser`` (pyproject.toml says what each means). It is kept honest here, not by review: a test of the fast tier that
starts a process fails at once and names the mark it needs, in every run of the suite.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import torch

# The marks that leave the fast tier, longest first: the order in which the suite hands tests out.
NOT_FAST = ("slow", "slurm", "e2e", "browser")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one test process more than cores. Much of the full suite waits (on the processes it starts,
    SLURM's scheduler, the browser), and a third worker fills that time on 2 cores (benchmarks/suite_time.py).
    PYTEST_XDIST_AUTO_NUM_WORKERS still decides where it is set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return len(os.sched_getaffinity(0)) + 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.get_closest_marker(mark) for mark in NOT_FAST):
            item.add_marker(pytest.mark.fast)
    # The longest tests first (learning checks, then SLURM, then other processes), the fast tier last: xdist hands
    # tests out in this order, so the short ones fill the gaps at the end instead of a long one running alone.
    items.sort(key=lambda item: next((i for i, m in enumerate(NOT_FAST) if item.get_closest_marker(m)), len(NOT_FAST)))


@pytest.fixture(autouse=True)
def _groups_hold(request: pytest.FixtureRequest) -> None:
    """Modules whose fixture builds something once (a wheel, trained runs) hold their tests on one worker with
    ``xdist_group``; xdist does it by adding ``@group`` to the test's node id. pytest 9.2 ignores that rename (its
    node ids moved to ``Node._id``), and such tests then ran on two workers: two wheels built at once in one source
    tree, each deleting the other's files (CI failed so). A grouped test that xdist did not group fails here."""
    grouped = getattr(request.config.option, "loadgroup", False) and request.node.get_closest_marker("xdist_group")
    if grouped and "@" not in request.node.nodeid:
        pytest.fail("pytest-xdist did not hold this module's tests on one worker: this pytest and this pytest-xdist "
                    "do not work together; install the versions pyproject.toml pins")  # fmt: skip


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("fast") is None:
        return

    real = subprocess.Popen.__init__

    def refuse(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        if isinstance(args, list | tuple) and args and args[0] == "git":
            # a run records the code version it ran (rlsweep.tracking.gitinfo: git rev-parse and status, once per
            # process): a tool call of milliseconds, not a process any test is about
            return real(self, args, *rest, **kwargs)
        raise AssertionError(
            f"a test of the fast tier started a process ({args!r}): mark it e2e (or slurm, browser, slow), or call "
            "the entry point in this process"
        )

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(autouse=True)
def _quiet_wandb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    # Runs in this process use one thread, as each run of a launcher on a 2-core machine does: torch's OpenMP
    # threads spin while they wait, and two of them per process slow a shared or loaded machine many times over.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
