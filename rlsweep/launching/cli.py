"""The ``rlsweep`` command: ``rlsweep report <sweep_dir>`` (more subcommands come with the launchers)."""

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
    args = parser.parse_args(argv)

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
