"""A run's ``metrics.jsonl``, read by one function: :func:`read_metrics`, for every reader (the status table, the
launcher rebuilding a damaged record, the tracker resuming a run, the report).

The file holds one JSON object per logged iteration. rlsweep writes null for a value that is not finite (JSON has
no NaN or infinity: :meth:`rlsweep.tracking.Tracker.log`), but Python's json module reads and writes the literals
``NaN``, ``Infinity`` and ``-Infinity`` all the same (a file written by another tool, by hand, or by an older
rlsweep), and a number too large for a float reads as infinity. Read as numbers, such values would show as ``inf``
in the status table and in the report's IQM. So each of them is read as missing (None), as rlsweep would have
written it, and a warning names the file, the line and the key: on stderr once per file in a process, and in the
``notes`` of every read that asks for them (the report lists those).

This module imports nothing heavy: the launcher reads metrics before it knows whether anything will train.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
# Files already warned about on stderr in this process (status refreshes, a report reads each file once more).
_warned: set[str] = set()


def read_metrics(
    path: Path,
    *,
    tail_bytes: int | None = None,
    last: int | None = None,
    notes: list[str] | None = None,
    require: str | None = None,
) -> list[dict[str, Any]]:
    """The objects of ``path``'s lines, in file order, each non-finite value read as None; no file: no lines.

    Skipped, with a line in ``notes`` (if given) saying which: a line that does not parse (the last one: a job
    stopped while writing it), a line that is not a JSON object, and one without the key ``require`` (if given).
    ``tail_bytes``: read only the file's last so many bytes, whose first, likely cut, line is dropped; ``last``:
    parse only the last so many lines that are kept (the status table wants the last line of each of many runs).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            start = 0
            if tail_bytes is not None:
                start = max(0, f.seek(0, 2) - tail_bytes)
                f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return []
    pieces = data.split(b"\n")
    first = 1 if start > 0 else 0  # a tail's first piece may be the end of a longer line

    def line_number(i: int) -> int:
        """Counted only for a note: a tail's lines count from the newlines before it."""
        before = _newlines_before(path, start) if start > 0 else 0
        return before + i + 1

    nonblank = [i for i in range(first, len(pieces)) if pieces[i].strip()]
    final = nonblank[-1] if nonblank else -1
    rows: list[dict[str, Any]] = []
    found: list[tuple[int, str, object]] = []  # (piece, key, value) of the non-finite values
    for i in reversed(nonblank) if last is not None else nonblank:
        if last is not None and len(rows) >= last:
            break
        try:
            obj = json.loads(pieces[i].decode("utf-8", errors="replace"))
        except json.JSONDecodeError:
            if notes is not None:
                what = "truncated final line" if i == final else "unparsable line"
                why = " (job interrupted while writing)" if i == final else ""
                notes.append(f"{path}: skipped {what} {line_number(i)}{why}")
            continue
        if not isinstance(obj, dict) or (require is not None and require not in obj):
            if notes is not None:
                notes.append(f"{path}: skipped line {line_number(i)} without {require or 'a JSON object'}")
            continue
        for key, value in obj.items():
            if isinstance(value, float) and not math.isfinite(value):
                found.append((i, key, value))
                obj[key] = None
        rows.append(obj)
    if last is not None:
        rows.reverse()
    if found:
        _warn(path, found, line_number, notes)
    return rows


def _warn(path: Path, found: list[tuple[int, str, object]], line_number: Callable[[int], int],
          notes: list[str] | None) -> None:  # fmt: skip
    i, key, value = min(found, key=lambda f: f[0])  # the first in the file
    text = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[str(value)]
    more = f" (and {len(found) - 1} more such value(s))" if len(found) > 1 else ""
    message = (f"{path}: line {line_number(i)}: {key} is {text}{more}, which JSON does not allow (rlsweep writes null "
               "for a value that is not finite); read as missing")  # fmt: skip
    if notes is not None:
        notes.append(message)
    if str(path) not in _warned:
        _warned.add(str(path))
        print(f"rlsweep: warning: {message}", file=sys.stderr, flush=True)


def _newlines_before(path: Path, offset: int) -> int:
    count, done = 0, 0
    with open(path, "rb") as f:
        while done < offset:
            chunk = f.read(min(1 << 20, offset - done))
            if not chunk:
                break
            count += chunk.count(b"\n")
            done += len(chunk)
    return count


def last_metrics(run_dir: Path) -> dict[str, Any]:
    """The last complete line of ``<run_dir>/metrics.jsonl`` (reading only the file's tail); {} if none."""
    try:
        rows = read_metrics(Path(run_dir) / METRICS_FILE, tail_bytes=16384, last=1)
    except OSError:
        return {}
    return rows[-1] if rows else {}
