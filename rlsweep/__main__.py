"""``python -m rlsweep <overrides>``: the same as ``python sweep.py`` (launchers start each point this way)."""

import sys

from rlsweep.cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
