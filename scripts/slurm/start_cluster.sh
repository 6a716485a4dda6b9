#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine, as root, for testing sweeplab's Slurm executor
# against a real Slurm (slurmctld + slurmd + munged from Debian's slurm-wlm and munge).
#
# Usage:  scripts/slurm/start_cluster.sh [STATE_DIR]
#         eval "$(scripts/slurm/start_cluster.sh /tmp/slurm-state | grep '^export ')"
#
# Everything the cluster writes (slurm.conf, munge key and socket, controller state, slurmd
# spool, logs, pid files) lives in STATE_DIR (default: a new temp dir), so it touches nothing
# in /etc and several clusters never share state. The munge socket lives there too and
# slurm.conf points at it (AuthInfo=socket=...), so a system munged, if any, is left alone.
# The last line printed is `export SLURM_CONF=STATE_DIR/slurm.conf`: clients (sinfo, sbatch,
# submitit) need it. Idempotent: with a cluster of this script already up on STATE_DIR it
# says so and exits 0. Stop it with scripts/slurm/stop_cluster.sh STATE_DIR.
#
# Exit status: 0 up; 1 a daemon failed to start (see STATE_DIR/log); 3 this machine cannot
# host one (not root, or the binaries are missing and apt-get cannot install them).
#
# Environment: SLURM_CTLD_PORT / SLURM_D_PORT (default 6817 / 6818), SLURM_NODE_CPUS (2),
# SLURM_START_TIMEOUT (seconds to wait for the node to be idle, default 60).

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CTLD_PORT=${SLURM_CTLD_PORT:-6817}
D_PORT=${SLURM_D_PORT:-6818}
CPUS=${SLURM_NODE_CPUS:-2}
TIMEOUT=${SLURM_START_TIMEOUT:-60}

say() { echo "start_cluster: $*" >&2; }
cannot() { say "cannot start a cluster here: $*"; exit 3; }

[ "$(id -u)" -eq 0 ] || cannot "must run as root (slurmd and munged need it)"

# --- binaries: install Debian's packages if missing ----------------------------------------
need=(munged munge slurmctld slurmd sinfo sbatch squeue scancel)
missing() { for b in "${need[@]}"; do command -v "$b" >/dev/null 2>&1 || return 0; done; return 1; }
if missing; then
    command -v apt-get >/dev/null 2>&1 || cannot "slurm/munge binaries missing and no apt-get"
    say "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt_install() {
        apt-get install -y -q --no-install-recommends slurm-wlm munge >&2
    }
    apt_install || { apt-get update -q >&2 && apt_install; } \
        || cannot "apt-get install slurm-wlm munge failed"
    missing && cannot "slurm/munge binaries still missing after apt-get install"
fi

# --- state directory -----------------------------------------------------------------------
STATE=${1:-$(mktemp -d /tmp/sweeplab-slurm.XXXXXX)}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
CONF=$STATE/slurm.conf
MUNGE_DIR=$STATE/munge
SOCKET=$MUNGE_DIR/munge.socket.2
export SLURM_CONF=$CONF
# A unix socket path has at most 107 bytes; say so rather than let munged fail obscurely.
[ ${#SOCKET} -lt 100 ] || { say "state dir path too long for munge's socket: $STATE"; exit 1; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
node_state() { timeout 10 sinfo -h -N -o '%t' 2>/dev/null | head -n1; }

if alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid" && alive "$MUNGE_DIR/munged.pid"; then
    if [ -n "$(node_state)" ]; then
        say "cluster already up with state dir $STATE (node: $(node_state))"
        echo "export SLURM_CONF=$CONF"
        exit 0
    fi
fi
# Half-up leftovers of an earlier start on this state dir: stop them, then start afresh.
"$HERE/stop_cluster.sh" "$STATE" >/dev/null 2>&1 || true

mkdir -p "$STATE/log" "$STATE/ctld" "$STATE/spool" "$MUNGE_DIR"
chmod 711 "$MUNGE_DIR"

# --- munge: a key of this cluster, a daemon of its own ------------------------------------
if [ ! -s "$MUNGE_DIR/munge.key" ]; then
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile="$MUNGE_DIR/munge.key" --force
    else
        dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1 count=1024 status=none
    fi
fi
chmod 600 "$MUNGE_DIR/munge.key"
# --force: munged refuses to run as root without it; here root is the point.
munged --force --key-file="$MUNGE_DIR/munge.key" --socket="$SOCKET" \
    --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" \
    --seed-file="$MUNGE_DIR/munged.seed"
munge -n -S "$SOCKET" | unmunge -S "$SOCKET" >/dev/null \
    || { say "munged is not answering; see $MUNGE_DIR/munged.log"; exit 1; }

# --- slurm.conf ----------------------------------------------------------------------------
HOST=$(hostname -s)
MEM_MB=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
MEM_MB=$(( MEM_MB > 1024 ? MEM_MB - 512 : MEM_MB / 2 ))   # below free: slurmd drains a node
                                                            # that has less than configured
cat >"$CONF" <<EOF
# Written by sweeplab scripts/slurm/start_cluster.sh: a one-node test cluster.
ClusterName=sweeplab-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$D_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MailProg=/bin/true
KillWait=2
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# --- daemons -------------------------------------------------------------------------------
slurmctld -f "$CONF" || { say "slurmctld failed; see $STATE/log/slurmctld.log"; exit 1; }
slurmd -f "$CONF" -N "$HOST" || { say "slurmd failed; see $STATE/log/slurmd.log"; exit 1; }

deadline=$(( $(date +%s) + TIMEOUT ))
state=""
while [ "$(date +%s)" -lt "$deadline" ]; do
    state=$(node_state)
    case "$state" in
        idle*|mix*|alloc*) break ;;
    esac
    sleep 1
done
case "$state" in
    idle*|mix*|alloc*) ;;
    *)
        say "node not idle after ${TIMEOUT}s (state: ${state:-none}); logs in $STATE/log"
        tail -n 5 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
        exit 1 ;;
esac
say "cluster up: node $HOST $state, state dir $STATE"
echo "export SLURM_CONF=$CONF"
