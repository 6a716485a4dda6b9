#!/usr/bin/env bash
# Stop the one-node Slurm cluster that scripts/slurm/start_cluster.sh started on STATE_DIR.
#
# Usage:  scripts/slurm/stop_cluster.sh STATE_DIR
#
# Kills only the daemons recorded in STATE_DIR's pid files (slurmd and slurmctld, then
# munged), waits for them to exit (SIGKILL after 10 s) and leaves the state dir in place
# (its logs are worth reading after a failure). Safe to run twice: a missing or stale pid
# file is skipped.

set -uo pipefail

STATE=${1:?usage: stop_cluster.sh STATE_DIR}
[ -d "$STATE" ] || { echo "stop_cluster: no state dir $STATE" >&2; exit 0; }

pid_of() {  # the live pid recorded in a pid file, or nothing
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && cat "$1"
}

stop() {  # stop NAME=PIDFILE ...: SIGTERM to all at once, wait (10 s), then SIGKILL
    local item name pidfile pid
    local -a names=() pids=() files=()
    for item in "$@"; do
        name=${item%%=*} pidfile=${item#*=}
        pid=$(pid_of "$pidfile") || { rm -f "$pidfile"; continue; }
        kill -TERM "$pid" 2>/dev/null
        names+=("$name") pids+=("$pid") files+=("$pidfile")
    done
    for _ in $(seq 100); do
        local any=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && any=1; done
        [ "$any" -eq 0 ] && break
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if kill -0 "${pids[$i]}" 2>/dev/null; then
            echo "stop_cluster: ${names[$i]} (${pids[$i]}) ignored SIGTERM; killing it" >&2
            kill -KILL "${pids[$i]}" 2>/dev/null
        fi
        echo "stop_cluster: stopped ${names[$i]} (${pids[$i]})" >&2
        rm -f "${files[$i]}"
    done
}

# Slurm's daemons first (together: each takes a couple of seconds to wind down), munge last.
stop slurmd="$STATE/slurmd.pid" slurmctld="$STATE/slurmctld.pid"
stop munged="$STATE/munge/munged.pid"
exit 0
