#!/usr/bin/env bash
# The README's test command on Python 3.12 (the GPU machines' Python), in its own venv .venv312: the same
# install (torch 2.13.0 first; PyPI's cp312 wheel is the CUDA build, which runs on the CPU too), `pip check`,
# then the whole test suite.
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
pip install -e ".[test]"
pip check
tests/system-setup.sh
pytest
