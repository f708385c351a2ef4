#!/usr/bin/env bash
# Brings up (or reuses) the throwaway local PostgreSQL cluster of this repo and applies the schema.
#
#   postgres-init/pg-up.sh        -> prints exactly one line on stdout, the Npgsql connection string:
#                                    Host=127.0.0.1;Port=54329;Username=postgres;Database=sva
#
# Everything else goes to stderr. Exit status non-zero on failure, with a message naming what failed.
# Environment:
#   SVA_PG_PORT   TCP port on 127.0.0.1 (default 54329)
#   SVA_PG_DATA   data directory (default <repo>/.state/pg, or /var/tmp/sva-pg-<hash> when the
#                 postgres OS user cannot reach the repo)
#   SVA_PG_BIN    PostgreSQL bin directory (default /usr/lib/postgresql/15/bin, else the newest installed)
#
# Safe to run concurrently (flock); fast (no lock, no DDL) when the cluster is up and the schema unchanged.
#
#   postgres-init/pg-up.sh --shards N [--replica]
#                                 -> the local topology for sharding (README, "More than one machine"): N primaries
#                                    (shard1 is the default cluster above, shardK on port SVA_PG_PORT+K-1, data dir
#                                    <data dir>-shardK) and, with --replica, a streaming hot standby of shard1 made
#                                    with pg_basebackup -R (port SVA_PG_PORT+N, data dir <data dir>-replica1).
#                                    Prints one line per cluster on stdout: "<name><TAB><connection string>", e.g.
#                                    shard1  Host=127.0.0.1;Port=54329;Username=postgres;Database=sva
#                                    shard2  Host=127.0.0.1;Port=54330;Username=postgres;Database=sva
#                                    replica1        Host=127.0.0.1;Port=54331;Username=sva_reader;Database=sva
set -euo pipefail
SVA_ME=pg-up
if (( $# > 0 )); then
  # Topology mode: this script once per primary (each its own port and data dir), then the replica.
  exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pg-topology.sh" up "$@"
fi
exec 3>&1 1>&2 # fd 3 = the real stdout, reserved for the connection string
# shellcheck source=pg-common.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pg-common.sh"
trap 'rc=$?; sva_log "ERROR: failed (exit $rc) at line $LINENO: $BASH_COMMAND"; exit $rc' ERR

DATA="$(sva_choose_datadir)"
BIN="$(sva_find_bindir)"

psql_cmd() { "$BIN/psql" -X -q -h "$SVA_HOST" -p "$SVA_PORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }

emit() { echo "$(sva_connstr)" >&3; exit 0; }

# Up, ours (postmaster.pid of our data dir names our port), schema stamp current, database answers.
is_ready() {
  [[ -n "$BIN" ]] || return 1
  [[ -n "$(sva_running_pid "$DATA")" ]] || return 1
  [[ "$(sva_running_port "$DATA")" == "$SVA_PORT" ]] || return 1
  [[ -r "$DATA/sva-schema.stamp" && "$(cat "$DATA/sva-schema.stamp")" == "$(sva_schema_hash)" ]] || return 1
  psql_cmd -d "$SVA_DB_NAME" -Atc "SELECT 1 FROM pg_roles WHERE rolname = 'sva_reader'" | grep -qx 1 >/dev/null 2>&1 || return 1
}

# ---- fast path: no lock ----
if is_ready; then emit; fi

# ---- slow path: one process at a time ----
LOCK="$(sva_lockfile)"
exec 9>>"$LOCK"
if ! flock -w 600 9; then sva_die "timed out waiting for the lock $LOCK (another pg-up.sh/pg-down.sh is stuck?)"; fi
if is_ready; then emit; fi # another process did the work while we waited

install_postgres() {
  (( SVA_IS_ROOT )) || sva_die "PostgreSQL server binaries (initdb) not found in /usr/lib/postgresql/*/bin; install the 'postgresql' package (we are not root, so we cannot)"
  command -v apt-get >/dev/null || sva_die "PostgreSQL server binaries not found and apt-get is not available; install PostgreSQL (initdb, pg_ctl, psql)"
  sva_log "PostgreSQL server not found: installing the 'postgresql' package with apt-get (once per machine) ..."
  # Debian would create and start a 'main' cluster on 5432; we do not want it (createcluster.conf includes this dir).
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/sva-no-main-cluster.conf
  export DEBIAN_FRONTEND=noninteractive
  # (3>&- 9>&- below: services the packages may start must not inherit our stdout pipe or the lock)
  if ! apt-get update -qq 3>&- 9>&-; then sva_die "apt-get update failed (see above)"; fi
  if ! apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold postgresql 3>&- 9>&-; then
    sva_die "apt-get install postgresql failed (see above)"
  fi
  BIN="$(sva_find_bindir)"
  [[ -n "$BIN" ]] || sva_die "installed the 'postgresql' package but found no initdb in /usr/lib/postgresql/*/bin"
}

[[ -n "$BIN" ]] || install_postgres
if (( SVA_IS_ROOT )) && ! id -u postgres >/dev/null 2>&1; then
  sva_log "creating the 'postgres' OS user"
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi
PG_MAJOR="$("$BIN/pg_config" --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/' || true)"
[[ -n "$PG_MAJOR" ]] || PG_MAJOR="$(basename "$(dirname "$BIN")")"
DATA="$(sva_choose_datadir)" # again: the postgres user may exist only now
if [[ "$DATA" == "$(sva_fallback_datadir)" ]]; then
  sva_log "the postgres OS user cannot reach $SVA_REPO/.state: using data dir $DATA"
else
  sva_log "data dir: $DATA"
fi

# ---- initdb when needed ----
running_pid="$(sva_running_pid "$DATA")"
if [[ -z "$running_pid" && -f "$DATA/sva-initialized" && -f "$DATA/PG_VERSION" && "$(cat "$DATA/PG_VERSION")" != "$PG_MAJOR" ]]; then
  sva_log "data dir was made by PostgreSQL $(cat "$DATA/PG_VERSION"), binaries are $PG_MAJOR: throwaway cluster, re-initializing"
  rm -f "$DATA/sva-initialized"
fi
if [[ ! -f "$DATA/sva-initialized" ]]; then
  [[ -z "$running_pid" ]] || sva_die "a postmaster (pid $running_pid) runs on $DATA, which pg-up.sh did not finish initializing; stop it first"
  if [[ -d "$DATA" ]] && [[ -n "$(ls -A "$DATA" 2>/dev/null)" ]]; then
    # Only ever wipe something that is (or was being made into) a PostgreSQL data dir.
    if [[ -f "$DATA/PG_VERSION" || -f "$DATA/postgresql.conf" || -d "$DATA/global" ]]; then
      sva_log "removing the unfinished or outdated cluster in $DATA"
      find "$DATA" -mindepth 1 -delete
    else
      sva_die "data dir $DATA is not empty and is not a PostgreSQL data dir; refusing to touch it"
    fi
  fi
  mkdir -p "$DATA"
  if (( SVA_IS_ROOT )); then chown postgres:postgres "$DATA"; fi
  chmod 700 "$DATA"
  sva_log "initdb ($BIN) ..."
  if ! out="$(sva_as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync 2>&1)"; then
    printf '%s\n' "$out" >&2
    sva_die "initdb failed for $DATA (output above)"
  fi
  # Settings live in sva.conf, rewritten on every start.
  echo "include_if_exists = 'sva.conf'" >>"$DATA/postgresql.conf"
  touch "$DATA/sva-initialized"
fi

# ---- start when needed ----
running_pid="$(sva_running_pid "$DATA")"
if [[ -n "$running_pid" ]]; then
  running_port="$(sva_running_port "$DATA")"
  [[ "$running_port" == "$SVA_PORT" ]] || sva_die "the cluster in $DATA already runs on port $running_port, not $SVA_PORT; run postgres-init/pg-down.sh first or use SVA_PG_PORT=$running_port"
else
  if [[ -f "$DATA/postmaster.pid" ]]; then
    sva_log "removing stale $DATA/postmaster.pid"
    rm -f "$DATA/postmaster.pid"
  fi
  if (exec 2>/dev/null; : <"/dev/tcp/$SVA_HOST/$SVA_PORT"); then
    sva_die "port $SVA_HOST:$SVA_PORT is already in use by another process (not the cluster in $DATA); set SVA_PG_PORT to a free port"
  fi
  cat >"$DATA/sva.conf" <<EOF
# Written by postgres-init/pg-up.sh on every start: edits are lost.
listen_addresses = '$SVA_HOST'    # loopback only
port = $SVA_PORT
unix_socket_directories = ''      # no socket: TCP on loopback only
# THROWAWAY cluster: durability is traded for speed. A crash of the machine may lose or
# corrupt data, which is fine for a local dev/test database (never do this in production).
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
log_min_error_statement = panic   # do not log statements (some carry 100k-element arrays)
log_line_prefix = '%m [%p] %q%u@%d '
wal_level = replica               # (the default) a streaming replica can be made of any cluster (pg-up.sh --replica)
max_wal_senders = 10
EOF
  if (( SVA_IS_ROOT )); then chown postgres:postgres "$DATA/sva.conf"; fi
  sva_log "starting PostgreSQL $PG_MAJOR on $SVA_HOST:$SVA_PORT ..."
  # 3>&- 9>&-: the postmaster must not inherit our stdout pipe (callers reading it to EOF would hang)
  # nor the lock file descriptor (it would hold the flock for as long as the server runs).
  if ! sva_as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start >/dev/null 2>&1 3>&- 9>&-; then
    sva_tail_log "$DATA"
    sva_die "pg_ctl start failed for $DATA on port $SVA_PORT (server log above)"
  fi
fi

# ---- database and schema ----
if ! exists="$(psql_cmd -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$SVA_DB_NAME'" 2>&1)"; then
  printf '%s\n' "$exists" >&2
  sva_tail_log "$DATA"
  sva_die "cannot connect to $SVA_HOST:$SVA_PORT as postgres"
fi
if [[ "$exists" != 1 ]]; then
  sva_log "creating database $SVA_DB_NAME"
  psql_cmd -d postgres -c "CREATE DATABASE $SVA_DB_NAME" >/dev/null || sva_die "CREATE DATABASE $SVA_DB_NAME failed"
fi
hash="$(sva_schema_hash)"
while IFS= read -r f; do
  # One transaction per file, under the advisory lock sva takes while Marten migrates the schema.
  if ! out="$(PGOPTIONS='-c client_min_messages=warning' psql_cmd -d "$SVA_DB_NAME" -1 -c "$SVA_SCHEMA_LOCK_SQL" -f "$f" 2>&1 >/dev/null)"; then
    printf '%s\n' "$out" >&2
    sva_die "applying schema file $f failed (psql output above)"
  fi
  [[ -z "$out" ]] || printf '%s\n' "$out" >&2
done < <(sva_schema_files)
echo "$hash" >"$DATA/sva-schema.stamp"
sva_log "ready: $(sva_connstr)"
emit
