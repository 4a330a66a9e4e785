#!/usr/bin/env bash
# System pieces the test suite uses, from Debian's packages (needs root): headless Chromium for the report's
# browser check, the Qt 5 GUI library that envpool's Procgen draws with, the one-node SLURM cluster for the
# launcher tests (launchers/slurm-local.sh), and the PostgreSQL server for the tuner's studies on a server
# (launchers/postgres-local.sh, localhost:55432).
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v chromium >/dev/null || missing+=(chromium)
[[ $(ldconfig -p) == *"libQt5Gui.so.5 "* ]] || missing+=(libqt5gui5)
if ((${#missing[@]})); then
  echo "[system-setup] installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
launchers/slurm-local.sh start
launchers/postgres-local.sh start
