#!/usr/bin/env bash
# System pieces the test suite uses, from Debian's packages (needs root): headless Chromium for the report's
# browser check, and the one-node SLURM cluster for the launcher tests (launchers/slurm-local.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  echo "[system-setup] installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
launchers/slurm-local.sh start
