"""Bad input to ``rlsweep eval``: the exception every part raises for it, the exit status it ends with, and the two
helpers that keep its message to one line.

Bad input is a value on the command line that names nothing usable: no such run, no checkpoint, a step without a
snapshot, an unreadable file, a checkpoint that does not fit the run's model, a device that is not there. The
command (:mod:`rlsweep.evaluation.cli`) prints it as one line on stderr naming the value and what exists, and
exits with :data:`EXIT_BAD_INPUT`; no traceback, since nothing is wrong with the program.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """A value on the command line that names nothing usable; the message is one line for the user."""


def few(items: Sequence[Any], n: int = 8) -> str:
    """The first ``n`` items, comma-separated, and how many there are in all when some are left out: what exists,
    short enough for the one line."""
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type where it has none: a foreign
    library's error, cut to fit the one line."""
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]
