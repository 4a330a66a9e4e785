"""The ``rlsweep`` command: ``status``, ``report``, ``seeds``, ``tune`` and ``eval`` of a sweep or run directory.

``seeds``, ``tune`` and ``eval`` parse their own arguments in their modules (``rlsweep.cli.seeds``,
``rlsweep.cli.tune``, ``rlsweep.evaluation``); this parser only names them so that ``rlsweep --help`` lists every
command.
Every command's output may go into a pipe that closes early (``rlsweep status <sweep> | head``): the command
then ends quietly with the status of a tool killed by SIGPIPE (:func:`quiet_on_closed_stdout`).
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

# What a shell reports for a tool that SIGPIPE ended (128 + 13), as for `yes | head -1`'s `yes`; Python ignores
# SIGPIPE, so a write to the closed pipe raises BrokenPipeError instead of ending the process.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def quiet_on_closed_stdout(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a command's main so that a reader closing stdout early ends it with EXIT_BROKEN_PIPE, no traceback."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> int:
        try:
            try:
                return main(*args, **kwargs)
            finally:
                # Output to a pipe is buffered: the write that fails may be this flush (also after argparse's
                # --help, which leaves by SystemExit), not a print. Flushed here, the error is caught below
                # instead of being reported at the interpreter's exit.
                sys.stdout.flush()
        except BrokenPipeError:
            # The Python docs' recipe (signal module, "Note on SIGPIPE"): the interpreter flushes stdout once
            # more on the way out; pointed at devnull, that flush has nowhere to fail.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_BROKEN_PIPE

    return wrapper


# Commands whose module owns its argument parser: name -> one-line help (_delegate runs them).
DELEGATED = {
    "seeds": "add seeds only where a comparison is not yet decided (sequential test)",
    "eval": "play a run's checkpoint for N episodes: video, score, rooms, episode length",
    "tune": "tuned ablation: the same hyperparameter search per arm, then each arm's best on fresh seeds",
}


@quiet_on_closed_stdout
def main(argv: Sequence[str] | None = None) -> int:
    from rlsweep.rundir.record import RecordWriteError

    try:
        return _dispatch(list(sys.argv[1:] if argv is None else argv))
    except RecordWriteError as e:  # a run's record or the sweep's state file: one line, not a traceback
        print(f"rlsweep: error: {e}; make it writable, then rerun", file=sys.stderr)
        return 1


def _dispatch(args_list: list[str]) -> int:
    if args_list and args_list[0] in DELEGATED:
        return _delegate(args_list[0], args_list[1:])
    parser = argparse.ArgumentParser(prog="rlsweep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    rep = sub.add_parser(
        "report",
        help="write report.html, summary.md/csv and PNGs for a sweep (several directories: read as one sweep)",
    )
    rep.add_argument("sweep_dir", type=Path, nargs="+")
    rep.add_argument("--out", type=Path, default=None, help="output directory (default: <first sweep_dir>/report)")
    rep.add_argument(
        "--metric",
        action="append",
        default=None,
        help="primary metric the answer is about (repeatable; default by env family: cells on the maze, "
        "rooms and score on Montezuma, score elsewhere)",
    )
    rep.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="FACTOR=LEVEL",
        help="level the factor's other levels are compared against (repeatable; default: the first level, sorted)",
    )
    rep.add_argument(
        "--wandb",
        action="store_true",
        help="also build the W&B Report (runset = the sweep's W&B group); saved only when W&B is online",
    )
    rep.add_argument("--project", default=None, help="W&B project of the report (default: the runs' project)")
    rep.add_argument("--entity", default=None, help="W&B entity (default: the runs' entity, else your default)")
    st = sub.add_parser("status", help="table of a sweep's points: status, attempts, progress, last metric, log")
    st.add_argument("sweep_dir", type=Path)
    args = parser.parse_args(args_list)

    if args.command == "status":
        from rlsweep.launching.launcher import reconcile
        from rlsweep.launching.ledger import Ledger
        from rlsweep.launching.points import status_table

        ledger = Ledger(args.sweep_dir)
        if not ledger.exists():
            print(f"rlsweep status: error: {args.sweep_dir} is not a launched sweep (no sweep.json)", file=sys.stderr)
            return 2
        reconcile(ledger)
        print(status_table(ledger))
        return 0

    if args.command == "report":
        from rlsweep.analysis import write_report

        try:
            html = write_report(args.sweep_dir, args.out, metrics=args.metric, baselines=args.baseline)
        except (FileNotFoundError, ValueError) as e:
            print(f"rlsweep report: error: {e}", file=sys.stderr)
            return 2
        print(f"report: {html}")
        if args.wandb:
            return _wandb_report(args, html.parent)
        return 0
    return 2


def _delegate(command: str, argv: list[str]) -> int:
    """Run a command of DELEGATED with the rest of the command line. Its module is imported here, not at the top:
    ``rlsweep status`` need not pay for the imports of ``eval``."""
    if command == "eval":
        from rlsweep.evaluation import main as eval_main

        return eval_main(argv)
    if command == "tune":
        from rlsweep.cli.tune import main as tune_main

        return tune_main(argv)
    from rlsweep.cli.seeds import main as seeds_main

    return seeds_main(argv)


def _wandb_report(args: argparse.Namespace, out: Path) -> int:
    """Build the W&B Report; save it when online, else write its spec next to report.html and say why."""
    from rlsweep.analysis import load_sweep
    from rlsweep.analysis.report import chosen_metrics
    from rlsweep.analysis.wandb_report import build_wandb_report, report_spec, save_wandb_report, wandb_target
    from rlsweep.tracking import wandb_mode

    data = load_sweep(args.sweep_dir)
    project, entity = wandb_target(data)
    project = args.project or project
    online = wandb_mode("auto") == "online"
    entity = args.entity or entity
    if entity is None:
        if online:
            import wandb

            entity = wandb.Api().default_entity
        else:
            entity = "offline"  # placeholder: the report is not saved offline, only its spec is written
    summary = (out / "summary.md").read_text(encoding="utf-8") if (out / "summary.md").exists() else ""
    report = build_wandb_report(
        data, chosen_metrics(data, args.metric), project=project, entity=str(entity), summary_markdown=summary
    )
    (out / "wandb_report.json").write_text(report_spec(report), encoding="utf-8")
    if not online:
        print(
            f"W&B report built ({len(report.blocks)} blocks) but not saved: W&B is offline (no API key). "
            f"Spec: {out / 'wandb_report.json'}. After `wandb login` and "
            f"`wandb sync {' '.join(f'{d}/*/wandb/offline-run-*' for d in args.sweep_dir)}`, rerun with --wandb "
            "to save it."
        )
        return 0
    print(f"W&B report: {save_wandb_report(report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
