#!/usr/bin/env bash
# The local multi-server topology: several primaries (shards) and a streaming replica of the first.
# Called by pg-up.sh / pg-down.sh when they are given options; not meant to be run directly.
#
#   pg-topology.sh up   --shards N [--replica]
#   pg-topology.sh down [--shards N] [--replica] [--all] [--purge]
#
# Ports: shardK = SVA_PG_PORT + K - 1 (shard1 is the default cluster), replica1 = SVA_PG_PORT + N.
# Data dirs: shard1 = the default data dir D, shardK = D-shardK, replica1 = D-replica1.
# Each primary is brought up by pg-up.sh itself (same code path as the default cluster: initdb, roles, loopback only,
# trust). The replica is made with pg_basebackup -R from shard1 (primary_conninfo + standby.signal) and runs as a hot
# standby; the initdb default pg_hba.conf trusts replication connections on loopback.
set -euo pipefail
SVA_ME="pg-topology"
# shellcheck source=pg-common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pg-common.sh"

ACTION="${1:-}"; shift || true
SHARDS=""; REPLICA=0; ALL=0; PURGE=0
while (( $# > 0 )); do
  case "$1" in
    --shards) [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || sva_die "--shards needs a number >= 1"; SHARDS="$2"; shift 2 ;;
    --shards=*) SHARDS="${1#--shards=}"; [[ "$SHARDS" =~ ^[1-9][0-9]*$ ]] || sva_die "--shards needs a number >= 1"; shift ;;
    --replica) REPLICA=1; shift ;;
    --all) ALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) sva_die "unknown argument '$1' (usage: pg-up.sh --shards N [--replica]; pg-down.sh [--shards N] [--replica] [--all] [--purge])" ;;
  esac
done

BASE_PORT="$SVA_PORT"
BASE_DATA="$(sva_choose_datadir)"
BIN="$(sva_find_bindir)"
UP="$SVA_SCRIPT_DIR/pg-up.sh"
DOWN="$SVA_SCRIPT_DIR/pg-down.sh"

shard_data() { if (( $1 == 1 )); then echo "$BASE_DATA"; else echo "$BASE_DATA-shard$1"; fi; }
replica_data() { echo "$BASE_DATA-replica1"; }

if [[ "$ACTION" == up ]]; then
  [[ -n "$SHARDS" ]] || SHARDS=1
  (( ALL == 0 && PURGE == 0 )) || sva_die "--all and --purge are options of pg-down.sh"
  (( BASE_PORT + SHARDS + REPLICA - 1 <= 65535 )) || sva_die "ports $BASE_PORT.. do not fit"
  lines=()
  for (( k = 1; k <= SHARDS; k++ )); do
    port=$(( BASE_PORT + k - 1 ))
    # pg-up.sh without options: its one-line contract, for this port and data dir.
    if ! cs="$(SVA_PG_PORT="$port" SVA_PG_DATA="$(shard_data "$k")" bash "$UP")"; then sva_die "shard$k (port $port) did not come up (see above)"; fi
    lines+=("shard$k"$'\t'"$cs")
  done
  if (( REPLICA )); then
    [[ -n "$BIN" ]] || sva_die "no PostgreSQL binaries found"
    rport=$(( BASE_PORT + SHARDS ))
    rdata="$(replica_data)"
    exec 9>>"$(sva_lockfile)"
    flock -w 600 9 || sva_die "timed out waiting for the lock"
    pid="$(sva_running_pid "$rdata")"
    if [[ -n "$pid" && "$(sva_running_port "$rdata")" != "$rport" ]]; then
      sva_die "the replica in $rdata runs on port $(sva_running_port "$rdata"), not $rport; run pg-down.sh --replica first"
    fi
    # A replica whose primary was re-initialized since (different system identifier) is rebuilt.
    if [[ -z "$pid" && -f "$rdata/standby.signal" ]]; then
      want="$("$BIN/psql" -X -qAt -h "$SVA_HOST" -p "$BASE_PORT" -U postgres -d postgres -c "SELECT system_identifier FROM pg_control_system()")"
      have="$(sva_as_pg "$BIN/pg_controldata" -D "$rdata" 2>/dev/null | sed -n 's/^Database system identifier: *//p')"
      if [[ "$want" != "$have" ]]; then sva_log "replica in $rdata belongs to another primary: re-making it"; rm -rf -- "$rdata"; fi
    fi
    if [[ -z "$pid" && ! -f "$rdata/standby.signal" ]]; then
      if [[ -d "$rdata" && -n "$(ls -A "$rdata" 2>/dev/null)" ]]; then
        [[ -f "$rdata/PG_VERSION" ]] || sva_die "$rdata is not empty and not a PostgreSQL data dir; refusing to touch it"
        rm -rf -- "$rdata"
      fi
      mkdir -p "$rdata"
      if (( SVA_IS_ROOT )); then chown postgres:postgres "$rdata"; fi
      chmod 700 "$rdata"
      sva_log "pg_basebackup -R of shard1 (port $BASE_PORT) into $rdata ..."
      if ! out="$(sva_as_pg "$BIN/pg_basebackup" -h "$SVA_HOST" -p "$BASE_PORT" -U postgres -D "$rdata" -R -X stream -c fast --no-sync 2>&1)"; then
        printf '%s\n' "$out" >&2
        sva_die "pg_basebackup from $SVA_HOST:$BASE_PORT failed (output above)"
      fi
    fi
    if [[ -z "$pid" ]]; then
      (exec 2>/dev/null; : <"/dev/tcp/$SVA_HOST/$rport") && sva_die "port $SVA_HOST:$rport is already in use; set SVA_PG_PORT so that $BASE_PORT..$rport are free"
      rm -f "$rdata/postmaster.pid"
      cat >"$rdata/sva.conf" <<EOF
# Written by postgres-init/pg-topology.sh on every start of the replica: edits are lost.
listen_addresses = '$SVA_HOST'
port = $rport
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
log_min_error_statement = panic
log_line_prefix = '%m [%p] %q%u@%d '
hot_standby = on                  # read-only queries while it replays
hot_standby_feedback = on         # no query on the standby is cancelled for a vacuum on the primary
wal_receiver_status_interval = 1s
EOF
      if (( SVA_IS_ROOT )); then chown postgres:postgres "$rdata/sva.conf"; fi
      sva_log "starting the replica of shard1 on $SVA_HOST:$rport ..."
      if ! sva_as_pg "$BIN/pg_ctl" -D "$rdata" -l "$rdata/server.log" -w -t 60 start >/dev/null 2>&1 3>&- 9>&-; then
        sva_tail_log "$rdata"
        sva_die "pg_ctl start failed for the replica in $rdata"
      fi
    fi
    # Streaming, not merely up: the primary sees its WAL sender.
    for _ in $(seq 1 100); do
      n="$("$BIN/psql" -X -qAt -h "$SVA_HOST" -p "$BASE_PORT" -U postgres -d postgres -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" 2>/dev/null || echo 0)"
      [[ "$n" -ge 1 ]] && break
      sleep 0.1
    done
    [[ "$n" -ge 1 ]] || { sva_tail_log "$rdata"; sva_die "the replica on port $rport does not stream from shard1"; }
    lines+=("replica1"$'\t'"Host=$SVA_HOST;Port=$rport;Username=sva_reader;Database=$SVA_DB_NAME")
  fi
  shards_env=""
  for l in "${lines[@]}"; do
    [[ "$l" == shard* ]] && shards_env+="${shards_env:+|}${l#*$'\t'}"
  done
  sva_log "ready. To use it: export SVA_SHARDS='$shards_env'"
  (( REPLICA )) && sva_log "and reads from the replica of shard1: export SVA_SHARD_READERS='Host=$SVA_HOST;Port=$(( BASE_PORT + SHARDS ));Username=sva_reader;Database=$SVA_DB_NAME'"
  printf '%s\n' "${lines[@]}"
  exit 0
fi

[[ "$ACTION" == down ]] || sva_die "usage: pg-topology.sh up|down ..."
dirs=()
if (( ALL )); then
  for d in "$BASE_DATA"-replica* "$BASE_DATA"-shard*; do [[ -d "$d" ]] && dirs+=("$d"); done
else
  if (( REPLICA )); then dirs+=("$(replica_data)"); fi
  if [[ -n "$SHARDS" ]]; then for (( k = 2; k <= SHARDS; k++ )); do dirs+=("$(shard_data "$k")"); done; fi
fi
purge=(); (( PURGE )) && purge=(--purge)
# Replicas first (a primary stopping first would leave them retrying), the default cluster last.
for d in "${dirs[@]}"; do
  SVA_PG_DATA="$d" bash "$DOWN" "${purge[@]}"
done
SVA_PG_DATA="$BASE_DATA" bash "$DOWN" "${purge[@]}"
