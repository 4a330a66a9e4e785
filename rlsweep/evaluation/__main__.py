"""``python -m rlsweep.evaluation <run_dir> [options]``: the same as ``rlsweep eval <run_dir> [options]``."""

import sys

from rlsweep.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
