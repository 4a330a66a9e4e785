#!/usr/bin/env bash
# Rehearse the GPU machine on this one: a clean Python 3.12 venv holding only what the GPU image holds that
# rlsweep touches (torch, numpy 2.5, matplotlib, pillow, pandas, scipy, ...; no envpool, gymnasium, Hydra,
# submitit or W&B), then benchmarks/gpu-install.sh from gpu-carry/ alone with the registry switched off, then
# a Montezuma smoke run on the CPU and the Atari env tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -d gpu-carry/wheels ]] || benchmarks/gpu-wheels.sh
py=python3.12
if ! "$py" --version >/dev/null 2>&1 && command -v pyenv >/dev/null; then
  PYENV_VERSION=$(pyenv versions --bare | grep -E '^3\.12(\.|$)' | sort -V | tail -1)
  export PYENV_VERSION
fi
venv=${REHEARSAL_VENV:-/tmp/gpu-like}
rm -rf "$venv" && "$py" -m venv "$venv" && . "$venv/bin/activate"
# The GPU image's own packages, at its versions: torch 2.11 and numpy 2.5.2. PyPI's torch 2.11 is the image's
# build, 2.11.0+cu130; with the NVIDIA libraries it loads at import the venv is 5.2 GB (3 minutes here with
# pip's cache warm); it runs on the CPU. REHEARSAL_TORCH=2.13.0 takes the local CPU wheel instead: smaller,
# but not the torch the GPU machine runs.
pip install --quiet "torch==${REHEARSAL_TORCH:-2.11.0}" numpy==2.5.2 matplotlib pillow pyyaml psutil opencv-python-headless cloudpickle \
  packaging typing-extensions pandas scipy scikit-learn pytest pytest-timeout pytest-xdist
export PIP_NO_INDEX=1 PIP_FIND_LINKS=  # from here on, as there: no registry
GPU_SITE=$(mktemp -d)
export GPU_SITE
. benchmarks/gpu-install.sh
if python -c "import wandb" 2>/dev/null; then echo "wandb is importable: the rehearsal is not like the GPU image" >&2; exit 1; fi
work=$(mktemp -d)
(cd "$work" && python "$OLDPWD/sweep.py" env=montezuma budget=smoke debug=smoke logger=none device=cpu)
python -m pytest -q -p no:cacheprovider -n 0 tests/unit/test_envs.py -k atari
echo "rehearsal passed: rlsweep ran on Python 3.12 from gpu-carry/ alone"
