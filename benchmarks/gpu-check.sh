#!/usr/bin/env bash
# The GPU check (issue #13 item 4): everything a lent GPU machine should tell us, in one call of at most 9
# minutes (the steps' time limits sum to 560 s) on one GPU with 16 cores, written under $OUT as at most 8 files
# (the device tool brings back 8).
#
# On the GPU machine (device tool; carry ["gpu-carry"], made here by benchmarks/gpu-wheels.sh):
#   benchmarks/gpu-check.sh                    # OUT is set by the device tool
# Rehearsed here on the CPU, small shapes, in the clean Python 3.12 venv of benchmarks/gpu-rehearsal.sh:
#   REHEARSE=1 OUT=/tmp/gpu-check benchmarks/gpu-check.sh
#
# Steps (each under its own time limit, so one that hangs or fails costs only its share; every step runs and
# its exit status and time go into the summary):
#   info        nvidia-smi, Python, torch, CUDA, numpy, cores
#   cuda-tests  the test suite's CUDA tests (smoke runs with the defaults and with bf16 + CUDA graphs + NCHW; two
#               seeds stacked in one process)
#   emulation   the box's emulation limit: envpool alone stepping Montezuma, random actions, all cores
#   throughput  the seed's config (128 envs x 128 steps, model A, RND) end to end and by parts, defaults
#   concurrent  the defaults and bf16 autocast, one run and 4 runs sharing the GPU, summed steps/s (the CPU rehearsal
#               leaves bf16 out on a CPU without bf16 instructions, which emulates it at minutes per iteration)
#   seeds       4 seeds in one process (seeds_per_process=4, stacked networks): the process's steps/s, to set
#               against the 4 separate runs of the concurrent step; and one run with double-buffered sampling
#               (perf.double_buffer) and one with NCHW convolutions (perf.channels_last=false: the NHWC default
#               was measured on the CPU only), each to set against the concurrent step's one run with the defaults
#   learning    PPO on Road Runner (experiment=atari_check) on CUDA, seeds 1 and 2: must beat the CPU test's 60
# Files in $OUT: gpu-check.md (the summary and every table), logs.tar.gz (every step's log) and the JSON of
# emulation, throughput, concurrent, seeds and learning.
set -uo pipefail  # not -e: a failed step is recorded and the next one runs
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the results}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
work=$(mktemp -d)
summary="$OUT/gpu-check.md"
start_all=$(date +%s)

if [[ -n "${REHEARSE:-}" ]]; then  # the CPU rehearsal: the same steps at sizes a 2-core machine finishes
  device=cpu preset=cpu envs=16 secs=3 repeats=1 iters=1 warm=1 seeds=1 concurrent=2
  limits=(60 120 60 300 400 300 260)
else
  device=cuda preset=seed envs=128 secs=8 repeats=3 iters=3 warm=1 seeds=2 concurrent=4
  limits=(10 75 35 100 130 90 120)  # 560 s at most; each step usually ends well before its limit
fi

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log to $work/NAME.log, one summary row
  local name=$1 limit=$2 t0 rc
  shift 2
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$work/$name.log" 2>&1
  rc=$?
  local note=""
  ((rc == 124 || rc == 137)) && note="time limit ${limit} s reached"
  echo "| $name | $rc | $(($(date +%s) - t0)) | $note |" >>"$work/steps.md"
  echo "[gpu-check] $name: exit $rc after $(($(date +%s) - t0)) s" >&2
}

if ! "$PY" -c "import envpool, hydra, submitit" 2>/dev/null; then
  [[ -d gpu-carry/wheels ]] || { echo "no envpool here and no gpu-carry/ to install it from" >&2; exit 2; }
  GPU_SITE=${GPU_SITE:-$work/site}
  export GPU_SITE
  . benchmarks/gpu-install.sh  # the wheels gpu-wheels.sh gathered: no registry needed
fi
export WANDB_MODE=disabled PYTHONUNBUFFERED=1
bf16=(--variant "bf16=perf.autocast=bf16")
if [[ -n "${REHEARSE:-}" ]] && ! "$PY" -c "import sys; from rlsweep.compute.perf import cpu_has_bf16; sys.exit(not cpu_has_bf16())"
then
  bf16=()  # a CPU without bf16 instructions emulates it: minutes per iteration, which the rehearsal need not wait for
fi

step info "${limits[0]}" bash -c "nvidia-smi || true; nproc; $PY -c 'import sys, torch, numpy; \
print(sys.version); print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.is_available(), \
torch.cuda.get_device_name() if torch.cuda.is_available() else \"-\"); print(\"numpy\", numpy.__version__)'"
step cuda-tests "${limits[1]}" "$PY" -m pytest -q -p no:cacheprovider -n 0 -m gpu -rs tests/integration/test_training.py \
  tests/integration/test_seeds_per_process.py
step emulation "${limits[2]}" "$PY" benchmarks/emulation_limit.py --num-envs "$envs" --seconds "$secs" \
  --out "$work/emulation"
step throughput "${limits[3]}" "$PY" benchmarks/throughput.py --preset "$preset" --device "$device" \
  --repeats "$repeats" --e2e-iters "$iters" --e2e-warmup-iters "$warm" --out "$work/throughput"
step concurrent "${limits[4]}" "$PY" benchmarks/compare.py --preset "$preset" --device "$device" --rounds 1 \
  --iters "$iters" --warmup-iters "$warm" --concurrent "$concurrent" --out "$work/concurrent" \
  --variant "defaults=" "${bf16[@]}"
step seeds "${limits[6]}" "$PY" benchmarks/compare.py --preset "$preset" --device "$device" --rounds 1 \
  --iters "$iters" --warmup-iters "$warm" --out "$work/seeds" \
  --variant "$concurrent seeds in one process=seeds_per_process=$concurrent" \
  --variant "double buffer=perf.double_buffer=true" --variant "nchw=perf.channels_last=false"
step learning "${limits[5]}" "$PY" benchmarks/atari_learning_check.py --seeds "$seeds" --random-seeds 0 \
  --device "$device" --results "$work/learning"

{
  echo "# GPU check ($(date -u +%Y-%m-%dT%H:%MZ), $(($(date +%s) - start_all)) s${REHEARSE:+, CPU rehearsal})"
  echo
  echo "| step | exit | seconds | note |"
  echo "|---|---|---|---|"
  cat "$work/steps.md"
  echo
  for name in info emulation throughput concurrent seeds learning; do
    echo
    echo "## $name"
    echo
    if [[ -f "$work/$name.md" ]]; then cat "$work/$name.md"; else echo '```'; tail -n 40 "$work/$name.log"; echo '```'; fi
  done
  echo
  echo "## cuda-tests"
  echo
  echo '```'
  tail -n 25 "$work/cuda-tests.log"
  echo '```'
} >"$summary"
for name in emulation throughput concurrent seeds learning; do
  [[ -f "$work/$name.json" ]] && cp "$work/$name.json" "$OUT/$name.json"
done
tar -czf "$OUT/logs.tar.gz" -C "$work" --exclude=site .
echo "[gpu-check] done in $(($(date +%s) - start_all)) s: $(ls "$OUT" | tr '\n' ' ')" >&2
