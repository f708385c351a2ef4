#!/usr/bin/env bash
# Stops the throwaway local PostgreSQL cluster started by pg-up.sh.
#
#   postgres-init/pg-down.sh           stop it (fast shutdown)
#   postgres-init/pg-down.sh --purge   stop it and delete its data directory
#   postgres-init/pg-down.sh --shards N [--replica] [--purge]
#                                      stop the topology pg-up.sh --shards N [--replica] started
#   postgres-init/pg-down.sh --all [--purge]
#                                      stop every shard and replica of this data dir, and the default cluster
#
# Same environment as pg-up.sh (SVA_PG_DATA, SVA_PG_BIN). Messages go to stderr.
set -euo pipefail
SVA_ME=pg-down
# shellcheck source=pg-common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pg-common.sh"

for arg in "$@"; do
  case "$arg" in
    --shards|--shards=*|--replica|--all) exec bash "$SVA_SCRIPT_DIR/pg-topology.sh" down "$@" ;;
  esac
done
PURGE=0
for arg in "$@"; do
  case "$arg" in
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) sva_die "unknown argument '$arg' (usage: pg-down.sh [--purge])" ;;
  esac
done

LOCK="$(sva_lockfile)"
exec 9>>"$LOCK"
flock -w 600 9 || sva_die "timed out waiting for the lock $LOCK"

BIN="$(sva_find_bindir)"

# The chosen data dir, plus the other candidate if it holds a cluster (e.g. permissions changed since).
candidates=("$(sva_choose_datadir)")
if [[ -z "${SVA_PG_DATA:-}" ]]; then
  for d in "$(sva_primary_datadir)" "$(sva_fallback_datadir)"; do
    [[ "$d" == "${candidates[0]}" ]] && continue
    [[ -f "$d/PG_VERSION" ]] && candidates+=("$d")
  done
fi

stop_cluster() {
  local data="$1" pid
  pid="$(sva_running_pid "$data")"
  if [[ -z "$pid" ]]; then
    sva_log "no cluster running in $data"
    return 0
  fi
  sva_log "stopping the cluster in $data (pid $pid) ..."
  if [[ -n "$BIN" ]] && sva_as_pg "$BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1; then
    return 0
  fi
  # No pg_ctl, or it failed: fast shutdown by signal, then immediate.
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -QUIT "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  sva_tail_log "$data"
  sva_die "could not stop the postmaster (pid $pid) of $data"
}

for d in "${candidates[@]}"; do
  stop_cluster "$d"
  if (( PURGE )) && [[ -d "$d" ]]; then
    if [[ -f "$d/PG_VERSION" || -f "$d/sva-initialized" || -z "$(ls -A "$d" 2>/dev/null)" ]]; then
      rm -rf -- "$d"
      sva_log "purged $d"
    else
      sva_die "$d does not look like a PostgreSQL data dir; not deleting it"
    fi
  fi
done
