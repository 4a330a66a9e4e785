#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for rlsweep's SLURM tests and for trying
# `hydra/launcher=slurm` without a cluster:  launchers/slurm-local.sh start | stop | status
#
# Installs Debian's slurm-wlm 22.05 and munge when missing (needs root and apt), writes a one-node
# slurm.conf (node "localhost", partition "debug", all cores, no accounting) under $RLSWEEP_SLURM_DIR
# (default /tmp/rlsweep-slurm) and starts munged, slurmctld and slurmd directly (no systemd needed).
# `stop` ends only what `start` started: the daemons whose PID files it owns under $RLSWEEP_SLURM_DIR (munged only
# if this script started it), and on that cluster only the calling user's jobs; other users' jobs keep it running.
set -euo pipefail

DIR=${RLSWEEP_SLURM_DIR:-/tmp/rlsweep-slurm}
CONF=/etc/slurm/slurm.conf

log() { echo "[slurm-local] $*"; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
      && command -v sbatch >/dev/null; then
    return
  fi
  log "installing munge and slurm-wlm from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
}

start_munge() {
  if [ -f /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then return; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- munged --pid-file=/run/munge/munged.pid
  # a munged that was running already serves others too: only the one started here is stopped by `stop`
  mkdir -p "$DIR/run"
  cp /run/munge/munged.pid "$DIR/run/munged.started"
  munge -n | unmunge >/dev/null
}

write_conf() {
  mkdir -p "$DIR"/{state,spool,run,log} /etc/slurm
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p') - 512 ))
  cat > "$CONF" <<CONF
ClusterName=rlsweeplocal
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5,sched_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
MinJobAge=600
Waittime=0
JobRequeue=1
MaxArraySize=1001
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The process of PID file $1 if it is alive and is program $2: a stale file's PID may since be another process's.
ours() { alive "$1" && [ "$(cat "/proc/$(cat "$1")/comm" 2>/dev/null)" = "$2" ]; }

start() {
  install
  start_munge
  if alive "$DIR/run/slurmctld.pid" && alive "$DIR/run/slurmd.pid"; then log "already running"; return; fi
  write_conf
  slurmctld -c
  for _ in $(seq 1 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.1; done
  slurmd -N localhost
  for _ in $(seq 1 150); do
    state=$(sinfo -h -N -n localhost -o %T 2>/dev/null || true)
    case "$state" in idle*) log "node localhost idle (partition debug, $(nproc) CPUs)"; return ;; esac
    sleep 0.2
  done
  log "node did not become idle: $(sinfo -N 2>&1)"; exit 1
}

stop() {
  local me others pidfile pid
  if ours "$DIR/run/slurmctld.pid" slurmctld; then
    # Only this cluster is asked (its controller is the one started here); the rest of its jobs end with it.
    me=$(id -un)
    scancel --user "$me" 2>/dev/null || true
    others=$(squeue -h -o '%u %i' 2>/dev/null | awk -v me="$me" '$1 != me' | wc -l)
    if [ "$others" -gt 0 ]; then
      log "not stopped: $others job(s) of other users run on this cluster (squeue); they would end with it"; exit 1
    fi
  fi
  for entry in "$DIR/run/slurmd.pid slurmd" "$DIR/run/slurmctld.pid slurmctld" "$DIR/run/munged.started munged"; do
    read -r pidfile name <<<"$entry"
    if ours "$pidfile" "$name"; then
      pid=$(cat "$pidfile"); kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo && squeue ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
