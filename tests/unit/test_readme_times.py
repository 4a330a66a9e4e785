"""The times the README and the docs state are the measured ones: every wall-clock time in README.md,
docs/testing.md and docs/benchmarks.md is a time of docs/timings.md, the one file that says what was measured, on
which machine, under which load, at which commit and when; and every row a page names there exists.

A time here is a number with a unit of time (`2 min 44 s`, `about 21 min`, `1.83 s`, `82–90 s`, `14.3 days`). A page
that needs a time that is not a measurement (a default, a limit) writes it without a unit (`poll_every` seconds,
default 30), so that anything with a unit is checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIMINGS = REPO / "docs" / "timings.md"
PAGES = ["README.md", "docs/testing.md", "docs/benchmarks.md"]

_NUMBER = r"\d+(?:[.,]\d+)?(?:[–-]\d+(?:[.,]\d+)?)?"
_UNIT = r"(?:days?|hours?|h|minutes?|min|seconds?|s)"
TIME = re.compile(rf"(?<![\w.,–-])({_NUMBER}) ({_UNIT})\b(?: ({_NUMBER}) ({_UNIT})\b)?")
ROW = re.compile(r"^\| `([\w-]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$")
ROW_NAMES = re.compile(r"\brows? ((?:`[\w-]+`(?:, | and |,? and )?)+)")

CANONICAL = {"day": "days", "days": "days", "hour": "h", "hours": "h", "h": "h", "minute": "min", "minutes": "min",
             "min": "min", "second": "s", "seconds": "s", "s": "s"}  # fmt: skip


def times_in(text: str) -> list[str]:
    """Each time in ``text``, in one spelling: `2 min 44 s`, `21 min`, `82–90 s`, `14.3 days`; a time may be wrapped
    across lines (`2 min` at the end of one, `3 s` at the start of the next)."""
    found = []
    for m in TIME.finditer(" ".join(text.split())):
        parts = [m.group(1), CANONICAL[m.group(2)]]
        if m.group(3):
            parts += [m.group(3), CANONICAL[m.group(4)]]
        found.append(" ".join(parts).replace("-", "–"))
    return found


def timing_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in TIMINGS.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m and m.group(1) != "id":
            rows[m.group(1)] = [cell.strip() for cell in m.groups()[1:]]
    return rows


def test_the_timings_file_says_what_where_when_and_at_which_commit() -> None:
    rows = timing_rows()
    assert len(rows) >= 10, "docs/timings.md: no table of measured times found"
    for name, (time, what, machine, commit, date, source) in rows.items():
        assert times_in(time), f"{name}: {time!r} is not a time"
        assert what and machine and source, name
        assert re.search(r"\b[0-9a-f]{7,40}\b", commit), f"{name}: no commit in {commit!r}"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date), f"{name}: date {date!r}"


@pytest.mark.parametrize("page", PAGES)
def test_every_time_a_page_states_is_a_measured_one(page: str) -> None:
    measured = {t for time, *_ in timing_rows().values() for t in times_in(time)}
    text = (REPO / page).read_text(encoding="utf-8")
    stated = times_in(text)
    unmeasured = sorted(set(stated) - measured)
    assert not unmeasured, f"{page} states {unmeasured}, which docs/timings.md does not hold: measure them there first"
    if stated:
        assert "timings.md" in text, f"{page} quotes times without a link to docs/timings.md"


@pytest.mark.parametrize("page", [*PAGES, "docs/usage.md"])
def test_every_row_a_page_names_is_in_the_timings_file(page: str) -> None:
    rows = timing_rows()
    text = " ".join((REPO / page).read_text(encoding="utf-8").split())
    named = [n for m in ROW_NAMES.finditer(text) for n in re.findall(r"`([\w-]+)`", m.group(1))]
    assert all(n in rows for n in named), f"{page} names rows {[n for n in named if n not in rows]} not in timings.md"


def test_the_readme_quotes_the_headline_times() -> None:
    rows = timing_rows()
    stated = set(times_in((REPO / "README.md").read_text(encoding="utf-8")))
    for name in ("demo", "demo-shared", "seeds-step", "pytest", "fast-tier", "full-budget-run"):
        assert set(times_in(rows[name][0])) <= stated, f"the README does not quote {name}: {rows[name][0]}"


def test_a_time_is_read_in_one_spelling() -> None:
    assert times_in("about 21 minutes, 18 min 27 s, 1.83 s; 82–90 s and 14.3 days; 3 seeds, 128 M, 2 min\n3 s") == [
        "21 min", "18 min 27 s", "1.83 s", "82–90 s", "14.3 days", "2 min 3 s",
    ]  # fmt: skip
