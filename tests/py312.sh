#!/usr/bin/env bash
# The README's install on Python 3.12 (the GPU machines' Python), in its own venv .venv312: the same install
# (torch 2.13.0 first; PyPI's cp312 wheel is the CUDA build, which runs on the CPU too), `pip check`, then the
# tests that prove that install: what differs on 3.12 is the installed packages (numpy 2.5, scipy 1.18, torch's
# CUDA build, envpool's cp312 wheel), so the fast tier, which runs every module on them (the networks, Atari and
# Procgen through envpool, the statistics, the report's figures), and the end-to-end test of the installed wheel
# (a real `rlsweep` process that plans a grid and trains a point). The launchers, locks and SLURM code are pure
# Python that the full suite runs on 3.11; `tests/py312.sh --all` runs the whole suite here too, and
# `tests/py312.sh --torch-only` only makes the venv and installs torch (.ci/run, while the 3.11 suite runs).
set -euo pipefail
cd "$(dirname "$0")/.."
py=python3.12
if ! "$py" --version >/dev/null 2>&1 && command -v pyenv >/dev/null; then
  # pyenv's shim answers only for the selected versions: select the newest installed 3.12 for this script.
  PYENV_VERSION=$(pyenv versions --bare | grep -E '^3\.12(\.|$)' | sort -V | tail -1)
  export PYENV_VERSION
fi
"$py" --version
"$py" -m venv .venv312
. .venv312/bin/activate
# No pip cache: a CI machine starts empty, and the cp312 torch wheel alone would add 1.4 GB to its disk.
export PIP_NO_CACHE_DIR=1
pip install torch==2.13.0
if [[ ${1:-} == --torch-only ]]; then
  exit 0  # .ci/run: the download, during the 3.11 suite; the rest once it has ended
fi
pip install -e ".[test]"
pip check
tests/system-setup.sh
if [[ ${1:-} == --all ]]; then
  pytest
else
  pytest -m fast
  pytest tests/launching/test_package.py
fi
