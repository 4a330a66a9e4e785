#!/usr/bin/env bash
# The GPU measurement of the throughput issue in one call, for an H100-class machine (16 cores), from the
# repository root with the project's venv active. Writes benchmarks/results/gpu-<name>-<date>*.{json,md}.
#   benchmarks/gpu.sh                 # parts + end-to-end of the seed's config, then the switches, 4 runs at once
#   ROUNDS=1 benchmarks/gpu.sh        # quicker
# Not run yet: no GPU was lent to the sessions that wrote it (see benchmarks/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-2}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python benchmarks/throughput.py --preset seed --device cuda --repeats 5
python benchmarks/compare.py --preset seed --device cuda --rounds "$ROUNDS" --iters 3 --warmup-iters 2 --concurrent 4 \
    --variant "defaults=" \
    --variant "switches off=perf.fused_adam=false perf.overlap_env=false perf.pin_memory=false" \
    --variant "bf16=perf.autocast=bf16" \
    --variant "nchw=perf.channels_last=false" \
    --variant "compile=perf.compile=default" \
    --variant "cuda graphs=perf.compile=reduce-overhead"
