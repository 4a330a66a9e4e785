"""Which code produced a run: the git commit of the checkout that holds the ``rlsweep`` package, and whether
its tracked files had uncommitted changes.

The repository is found from the package's own location, not from the working directory: sweeps run from
anywhere (a temp dir in the tests, a scratch dir on a cluster) while the code is what we want to identify.
An installed copy outside any checkout, or a machine without the ``git`` binary, gives ``None`` for both
fields rather than an error: a run must never fail because its provenance is unknown.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class GitInfo:
    """``commit``: full SHA of HEAD (None: no repo / no git); ``dirty``: tracked files differ from HEAD."""

    commit: str | None
    dirty: bool | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def short(self) -> str | None:
        return self.commit[:8] if self.commit else None


def _git(args: list[str], cwd: Path) -> str | None:
    # GIT_OPTIONAL_LOCKS=0: `git status` otherwise refreshes the index and takes index.lock, which can
    # collide with a commit being made in the same checkout while a sweep runs.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT_S, env=env, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_info(path: Path | str | None = None) -> GitInfo:
    """Commit and dirty flag of the repository containing ``path`` (default: the rlsweep package)."""
    where = Path(path) if path is not None else _PACKAGE_DIR
    if not where.is_dir():
        where = where.parent
    head = _git(["rev-parse", "--verify", "HEAD"], where)
    if head is None:
        return GitInfo(None, None)
    # Untracked files are ignored on purpose: sweep outputs (sweeps/, notebooks' scratch) live inside the
    # checkout and would otherwise mark every run dirty; what matters is whether tracked code was edited.
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    return GitInfo(head.strip(), None if status is None else bool(status.strip()))


@functools.cache
def code_version() -> GitInfo:
    """:func:`git_info` of the rlsweep package, computed once per process (code does not change mid-run)."""
    return git_info()
