"""The ``rlsweep`` command: ``rlsweep status <sweep_dir>`` and ``rlsweep report <sweep_dir>``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlsweep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="write report.html, summary.md/csv and PNGs for a sweep directory")
    rep.add_argument("sweep_dir", type=Path)
    rep.add_argument("--out", type=Path, default=None, help="output directory (default: <sweep_dir>/report)")
    rep.add_argument("--metric", action="append", default=None, help="metric to report (repeatable)")
    st = sub.add_parser("status", help="table of a sweep's points: status, attempts, progress, last metric, log")
    st.add_argument("sweep_dir", type=Path)
    args = parser.parse_args(argv)

    if args.command == "status":
        from rlsweep.launching.ledger import Ledger
        from rlsweep.launching.points import status_table
        from rlsweep.launching.slurm import reconcile

        ledger = Ledger(args.sweep_dir)
        if not ledger.exists():
            print(f"rlsweep status: error: {args.sweep_dir} has no ledger (not a launched sweep)", file=sys.stderr)
            return 2
        reconcile(ledger)  # jobs that left the SLURM queue without recording an end
        print(status_table(ledger))
        return 0

    if args.command == "report":
        from rlsweep.analysis import write_report

        try:
            html = write_report(args.sweep_dir, args.out, metrics=args.metric)
        except (FileNotFoundError, ValueError) as e:
            print(f"rlsweep report: error: {e}", file=sys.stderr)
            return 2
        print(f"report: {html}")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
