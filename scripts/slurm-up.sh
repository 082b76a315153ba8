#!/usr/bin/env bash
# Bring up a one-node Slurm cluster on this machine (for tests and local trials), without systemd:
# installs Debian's slurmctld, slurmd, slurm-client and munge if absent, writes a minimal
# /etc/slurm/slurm.conf (no accounting), starts munged, slurmctld and slurmd in the background and
# waits until the node is idle. scripts/slurm-down.sh stops them by their saved PIDs.
set -euo pipefail
STATE=${MLBENCH_SLURM_STATE:-/tmp/mlbench-slurm}
TIMEOUT_S=${MLBENCH_SLURM_TIMEOUT:-60}

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
  echo "slurm-up: installing slurmctld slurmd slurm-client munge" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurmctld slurmd slurm-client munge >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q slurmctld slurmd slurm-client munge >/dev/null; }
fi

if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
  echo "slurm-up: a cluster is already up" >&2
  exit 0
fi

mkdir -p "$STATE"/{ctld,spool} /etc/slurm /run/munge /var/log/munge /var/lib/munge
# slurmd -C prints this machine's real CPUs and memory; the node is named localhost whatever the hostname.
node=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+/NodeName=localhost/; s/ UpTime=.*//')
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=mlbench
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
$node State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- /usr/sbin/munged
fi
pgrep -x munged > "$STATE/munged.pid"

slurmctld -i
slurmd -N localhost

deadline=$((SECONDS + TIMEOUT_S))
until sinfo -h -o %t 2>/dev/null | grep -qx idle; do
  if [ $SECONDS -ge $deadline ]; then
    echo "slurm-up: the node did not become idle in ${TIMEOUT_S}s; logs in $STATE" >&2
    tail -5 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
    exit 1
  fi
  sleep 1
done
echo "slurm-up: one-node cluster idle (state in $STATE)" >&2
