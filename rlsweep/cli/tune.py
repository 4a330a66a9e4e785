"""``rlsweep tune <grid overrides> tune=<name>``: tuned ablations. Each arm of the grid (``motivation=none,rnd``) gets
the same hyperparameter search, then its chosen setting is rerun on fresh seeds for the verdict.

This module owns the command line: splitting it into the grid (as ``python sweep.py -m`` takes it), the tune file and
its ``tune.<setting>=`` overrides, and the launcher's ``hydra/launcher=``, ``hydra.launcher.*``,
``hydra.sweep.dir=`` and ``--config-dir`` (whose ``tune/`` folder may hold the user's own tune files); and the exit
status. What a tune file holds and its checks are :mod:`rlsweep.tuning.space`'s; the search and the confirm runs,
:mod:`rlsweep.tuning.tuner`'s.

A form of its own, not ``sweep.py -m ... +tune=x``: a tune file is not part of any run's training config (a Hydra
group under ``conf/`` would be composed into every run and its config checked against the schema), and the tuner
is a different loop from a grid launch, with its own state, lock and exit statuses.

Exit status: 0 searched and confirmed (rerunning then starts nothing), 1 a run did not complete or no trial of an
arm completed (rerun to resume), 2 bad input (nothing started), 3 another tuner runs on the sweep or some of its
points run elsewhere (nothing started), 130 after Ctrl-C.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

USAGE = """usage: rlsweep tune <grid overrides> tune=<name> [tune.<setting>=<value> ...] [launcher overrides] [-cd DIR]

  the grid's arms as for python sweep.py -m (motivation=none,rnd env=maze ...); each arm gets the same search
  tune=<name>              a tune file: rlsweep/tuning/spaces/<name>.yaml, or DIR/tune/<name>.yaml with -cd DIR
  tune.<setting>=<value>   change a setting (trials, steps, rungs, reduction, fresh_seeds, metric, ...)
  tune.space.<key>={log_uniform: [a, b]} | {uniform: [a, b]} | {int: [a, b]} | {choice: [x, y, ...]}
  sweep_name=<name>        the search sweep's name (sweeps/<name>; the confirm runs go to sweeps/<name>-confirm)
  hydra/launcher=local|slurm|submitit_local, hydra.launcher.<setting>=<value>, hydra.sweep.dir=<dir>
                           (not hydra.launcher.wait=false: the tuner waits for each rung's values)
exit: 0 done, 1 a run did not complete (rerun to resume), 2 bad input, 3 busy, 130 Ctrl-C"""
_LAUNCH = ("hydra/launcher=", "hydra.launcher.", "hydra.searchpath=")


def main(argv: Sequence[str] | None = None) -> int:
    from rlsweep.tuning.space import BadSpace

    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        return 0
    try:
        return _run(args)
    except BadSpace as e:
        print(f"rlsweep tune: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("[rlsweep] stopped; rerun the same rlsweep tune to resume", file=sys.stderr)
        return 130
    except RuntimeError as e:
        from rlsweep.tuning.tuner import Busy

        if not isinstance(e, Busy):
            raise
        print(f"rlsweep tune: {e}", file=sys.stderr)
        return 3


def _run(args: list[str]) -> int:
    from rlsweep.cli.sweep import FlagError, parse_flags
    from rlsweep.tuning.space import BadSpace, available, load_spec
    from rlsweep.tuning.tuner import setup, tune

    try:
        flags, overrides = parse_flags(args)
    except FlagError as e:
        raise BadSpace(str(e)) from None
    extra = sorted(set(flags) - {"config_dir", "multirun"})
    if extra:
        raise BadSpace(f"--{extra[0]}: not a flag of rlsweep tune; allowed: -cd/--config-dir (and -m, implied)")
    folders = [Path(str(flags["config_dir"])).expanduser().absolute()] if "config_dir" in flags else []
    name, tune_overrides, launch, grid, sweep_dir = None, [], [], [], None
    for o in overrides:
        if o.startswith("tune="):
            name = o.partition("=")[2]
        elif o.startswith("tune."):
            tune_overrides.append(o)
        elif o.startswith(_LAUNCH):
            launch.append(o)
        elif o.startswith("hydra.sweep.dir="):
            sweep_dir = o.partition("=")[2].strip("'\"")
        else:
            grid.append(o)
    if not name:
        raise BadSpace(f"tune=<name> is missing; allowed: {', '.join(sorted(available(folders)))}")
    spec = load_spec(name, tune_overrides, folders)
    return tune(setup(grid, spec, launch, sweep_dir))
