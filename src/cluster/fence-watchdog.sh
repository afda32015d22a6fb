#!/bin/bash
# fence-watchdog.sh: the fencing watchdog of one cluster host (C4, docs/cluster.md "Fencing").
#
#   bash fence-watchdog.sh MARKER_DIR FENCE_AFTER_CS DEADLINE_CS
#
# Started by wpard (src/cluster/fence.ts) in a session of its own, fed on stdin. It depends on
# nothing of the daemon: a stopped, hung or dead daemon simply stops feeding it. Every step is a
# bash builtin (no fork, no `timeout`, no `sleep`), so it keeps its deadline whatever the daemon does.
#
# Times are centiseconds of /proc/uptime (CLOCK_BOOTTIME: monotonic, never set back). Lines read:
#   feed DEADLINE_CS          the lease was renewed: fence at DEADLINE_CS unless fed again
#   add NAME SPEC...          a failover WPAR runs; SPEC says how to kill it (below)
#   del NAME                  it stopped
#   stop                      a clean daemon stop: exit without fencing
# When the deadline passes, for every WPAR added: MARKER_DIR/NAME is written, then every SPEC is
# applied; one line "fenced NAME RENEWED_AGO_MS" goes to stdout (ignored if nobody reads); then it
# exits 0. On end of input (the daemon died) it keeps its deadline and fences, as nobody renews.
#   cgkill:FILE               cgroup v2: write 1 to FILE (the cgroup's cgroup.kill)
#   freezer:DIR               cgroup v1: freeze DIR, SIGKILL every pid in DIR/cgroup.procs, thaw
#   procs:FILE                SIGKILL every pid listed in FILE (a cgroup.procs), three rounds
#   pid:PID:START             SIGKILL PID if its start time (field 22 of /proc/PID/stat) is START
#   pgrp:PGID:START           SIGKILL the group PGID if its leader's start time is START
set -u
trap '' INT HUP PIPE QUIT

dir=$1
after=$2
deadline=$3
declare -A specs=()
eof=0
# A pipe open for reading and writing: a read on it waits for its timeout (a sleep without a fork).
exec {idle}<> <(:)

now_cs() {
  local up _
  read -r up _ < /proc/uptime
  now=$((10#${up/./}))
}

start_of() { # start time of pid $1 into $start ("" if gone)
  local stat
  start=
  { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 0
  stat=${stat##*) }
  local -a f
  read -r -a f <<< "$stat"
  start=${f[19]:-}
}

kill_listed() { # SIGKILL every pid in file $1
  local pid
  while read -r pid; do [ -n "$pid" ] && kill -9 "$pid"; done < "$1"
}

apply() {
  local spec=$1 kind=${1%%:*} rest=${1#*:} pid want state i
  case $kind in
    cgkill) echo 1 > "$rest" ;;
    freezer)
      echo FROZEN > "$rest/freezer.state"
      for ((i = 0; i < 100; i++)); do
        read -r state < "$rest/freezer.state"
        [ "$state" = FROZEN ] && break
        read -r -t 0.01 -u "$idle" _
      done
      kill_listed "$rest/cgroup.procs"
      echo THAWED > "$rest/freezer.state" ;;
    procs) for i in 1 2 3; do kill_listed "$rest"; done ;;
    pid|pgrp)
      pid=${rest%%:*} want=${rest#*:}
      start_of "$pid"
      if [ -n "$start" ] && [ "$start" = "$want" ]; then
        if [ "$kind" = pid ]; then kill -9 "$pid"; else kill -9 -- "-$pid"; fi
      fi ;;
    *) echo "fence-watchdog: unknown spec $spec" >&2 ;;
  esac
}

fence() {
  local name ms ago spec
  ms=${EPOCHREALTIME/./}
  ms=$((10#$ms / 1000))
  ago=$(( (now - deadline + after) * 10 ))
  # The markers first: a daemon that sees the processes end knows why at once.
  for name in "${!specs[@]}"; do
    printf '{"name":"%s","at":%d,"renewedAgoMs":%d}\n' "$name" "$ms" "$ago" > "$dir/$name" 2>/dev/null
  done
  for name in "${!specs[@]}"; do
    for spec in ${specs[$name]}; do apply "$spec" 2>/dev/null; done
  done
  for name in "${!specs[@]}"; do
    echo "fenced $name $ago" 2>/dev/null
  done
  echo "done" 2>/dev/null
  exit 0
}

while :; do
  now_cs
  if ((now >= deadline)); then fence; fi
  left=$((deadline - now))
  printf -v t '%d.%02d' $((left / 100)) $((left % 100))
  if ((eof)); then
    read -r -t "$t" -u "$idle" _
    continue
  fi
  if read -r -t "$t" cmd name rest; then
    case $cmd in
      feed) [[ $name =~ ^[0-9]+$ ]] && deadline=$((10#$name)) ;;
      add) [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] && specs[$name]=$rest ;;
      del) [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] && unset "specs[$name]" ;;
      stop) exit 0 ;;
    esac
  elif (($? <= 128)); then
    eof=1
  fi
done
