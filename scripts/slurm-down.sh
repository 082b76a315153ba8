#!/usr/bin/env bash
# Stop the one-node cluster that scripts/slurm-up.sh started, by the PIDs it saved.
set -u
STATE=${MLBENCH_SLURM_STATE:-/tmp/mlbench-slurm}
for daemon in slurmd slurmctld munged; do
  pidfile="$STATE/$daemon.pid"
  if [ -s "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
done
echo "slurm-down: stopped" >&2
