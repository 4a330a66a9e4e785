"""The launcher interface and its registry: what the sweep, ``rlsweep seeds`` and ``rlsweep status`` ask of a
launcher, whichever runs the sweep.

Before a launcher sees a point, :func:`rlsweep.launching.points.prepare` has decided what runs (completed points
skipped, live ones left alone, each record written) and :func:`~rlsweep.launching.points.process_groups` has
grouped the points one job each. A launcher then only runs those jobs: :meth:`Launcher.run`. Where a scheduler
can end a job without the job writing its end (SLURM's ``scancel`` before the job started, a dead node),
:meth:`Launcher.reconcile` brings the records up to date before anyone reads them. Two launchers implement it:
``local`` (processes on this machine, :mod:`rlsweep.launching.local`) and ``slurm`` (job arrays through
submitit, :mod:`rlsweep.launching.slurm`). Their settings (``hydra.launcher.*``) are typed and checked in the
config layer (:data:`rlsweep.config.launchers.LAUNCHERS`), before any job starts; a new launcher is its module
here and its settings there (docs/architecture.md).
"""

from __future__ import annotations

from typing import Protocol

from rlsweep.config.launchers import LAUNCHERS as SETTINGS
from rlsweep.config.launchers import LocalSettings, SlurmSettings
from rlsweep.launching.ledger import Ledger
from rlsweep.launching.local import LocalLauncher
from rlsweep.launching.plan import Plan, Point
from rlsweep.launching.points import process_groups
from rlsweep.launching.slurm import SlurmLauncher

__all__ = ["LAUNCHERS", "Launcher", "launcher_for", "reconcile", "start"]


class Launcher(Protocol):
    name: str

    def run(self, p: Plan, groups: list[list[Point]], ledger: Ledger) -> bool:
        """Run the prepared jobs ``groups`` of ``p`` (one process group each) and show where they stand; True when
        it followed them to their end, False when it submitted them to run on their own (nothing to report yet)."""
        ...

    def reconcile(self, ledger: Ledger) -> None:
        """Record the ends the scheduler knows of and the jobs did not write, before the records are read."""
        ...


LAUNCHERS: dict[str, type[LocalLauncher] | type[SlurmLauncher]] = {c.name: c for c in (LocalLauncher, SlurmLauncher)}
if set(LAUNCHERS) != set(SETTINGS):
    raise ImportError(f"launchers {', '.join(LAUNCHERS)} but launcher settings for {', '.join(SETTINGS)}")


def launcher_for(name: str, settings: LocalSettings | SlurmSettings | None = None) -> Launcher:
    """The launcher ``name`` (``hydra/launcher=<name>``) with its checked settings (their defaults without)."""
    settings = settings if settings is not None else SETTINGS[name]()
    launcher: Launcher = LAUNCHERS[name](settings)  # type: ignore[arg-type]
    return launcher


def start(p: Plan, todo: list[Point]) -> bool:
    """Run the prepared points ``todo`` of ``p``, one job per process group, with the plan's launcher; False when
    the launcher submitted them to run on their own (SLURM with ``wait=false``). The sweep, ``rlsweep seeds`` and
    ``rlsweep tune`` all start their points here."""
    return launcher_for(p.launcher, p.settings).run(p, process_groups(p, todo), Ledger(p.out_dir))


def reconcile(ledger: Ledger) -> None:
    """Bring the sweep's records up to date with the scheduler of the launcher that last launched it, before they
    are read (``rlsweep status``, ``rlsweep seeds``). A run started inline by ``sweep.py`` without ``-m``, or a sweep
    whose sweep.json names no launcher, has no scheduler to ask."""
    name = ledger.launch_info().get("launcher")
    if name in LAUNCHERS:
        launcher_for(str(name)).reconcile(ledger)
