# shellcheck shell=bash
# Shared by pg-up.sh and pg-down.sh (sourced, not executed).
# A throwaway local PostgreSQL cluster for development and tests: loopback only, trust auth.

export LC_COLLATE=C  # schema files are applied in byte-wise name order

SVA_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SVA_REPO="$(cd "$SVA_SCRIPT_DIR/.." && pwd)"
SVA_PORT="${SVA_PG_PORT:-54329}"
SVA_HOST="127.0.0.1"
SVA_DB_NAME="sva"
SVA_SCHEMA_DIR="$SVA_SCRIPT_DIR/schema"
# Role files never run concurrently (one advisory lock for all of them).
SVA_SCHEMA_LOCK_SQL="SELECT pg_advisory_xact_lock(7360001)"
SVA_REPO_HASH="$(printf '%s' "$SVA_REPO" | sha256sum | cut -c1-10)"
SVA_IS_ROOT=0
[[ "$(id -u)" == 0 ]] && SVA_IS_ROOT=1

sva_log() { printf '%s: %s\n' "${SVA_ME:-pg}" "$*" >&2; }
sva_die() { printf '%s: ERROR: %s\n' "${SVA_ME:-pg}" "$*" >&2; exit 1; }

if ! [[ "$SVA_PORT" =~ ^[0-9]+$ ]] || (( SVA_PORT < 1024 || SVA_PORT > 65535 )); then
  sva_die "SVA_PG_PORT must be a port number in 1024..65535, got '$SVA_PORT'"
fi

# Runs a command as the postgres OS user when we are root (server binaries refuse to run as root).
sva_as_pg() {
  if (( SVA_IS_ROOT )); then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Prints the PostgreSQL bin dir holding initdb (prefers 15, else the highest version), or nothing.
sva_find_bindir() {
  if [[ -n "${SVA_PG_BIN:-}" && -x "$SVA_PG_BIN/initdb" ]]; then echo "$SVA_PG_BIN"; return; fi
  if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then echo /usr/lib/postgresql/15/bin; return; fi
  local d best="" bestv=0 v
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/initdb" ]] || continue
    v="$(basename "$(dirname "$d")")"
    [[ "$v" =~ ^[0-9]+$ ]] || continue
    if (( v > bestv )); then bestv=$v; best="$d"; fi
  done
  [[ -n "$best" ]] && echo "$best"
  return 0
}

# The data directory: <repo>/.state/pg when the postgres OS user can reach it, else
# /var/tmp/sva-pg-<hash of repo path> (e.g. repo under /root, which is 0700 on CI).
# SVA_PG_DATA overrides both.
sva_primary_datadir() { echo "$SVA_REPO/.state/pg"; }
sva_fallback_datadir() { echo "/var/tmp/sva-pg-$SVA_REPO_HASH"; }
sva_choose_datadir() {
  if [[ -n "${SVA_PG_DATA:-}" ]]; then echo "$SVA_PG_DATA"; return; fi
  local primary; primary="$(sva_primary_datadir)"
  if (( ! SVA_IS_ROOT )); then echo "$primary"; return; fi
  if ! id -u postgres >/dev/null 2>&1; then echo "$primary"; return; fi
  if mkdir -p "$SVA_REPO/.state" 2>/dev/null && sva_as_pg test -x "$SVA_REPO/.state" 2>/dev/null; then
    echo "$primary"
  else
    sva_fallback_datadir
  fi
}

# The lock file serializing pg-up.sh / pg-down.sh of this repo.
sva_lockfile() {
  if mkdir -p "$SVA_REPO/.state" 2>/dev/null && [[ -w "$SVA_REPO/.state" ]]; then
    echo "$SVA_REPO/.state/pg.lock"
  else
    echo "${TMPDIR:-/tmp}/sva-pg-$SVA_REPO_HASH.lock"
  fi
}

# PID of the postmaster running on data dir $1 (from postmaster.pid), or nothing.
sva_running_pid() {
  local pidfile="$1/postmaster.pid" pid
  [[ -r "$pidfile" ]] || return 0
  pid="$(head -n1 "$pidfile" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if kill -0 "$pid" 2>/dev/null && grep -qa postgres "/proc/$pid/cmdline" 2>/dev/null; then echo "$pid"; fi
  return 0
}

# Port recorded in postmaster.pid of data dir $1 (line 4).
sva_running_port() { sed -n 4p "$1/postmaster.pid" 2>/dev/null || true; }

sva_connstr() { echo "Host=$SVA_HOST;Port=$SVA_PORT;Username=postgres;Database=$SVA_DB_NAME"; }

# Hash of the schema files (names and contents), to skip re-applying an unchanged schema.
sva_schema_files() {
  local f
  for f in "$SVA_SCHEMA_DIR"/*.sql; do [[ -f "$f" ]] && printf '%s\n' "$f"; done
  return 0
}
sva_schema_hash() {
  local f
  { while IFS= read -r f; do basename "$f"; cat -- "$f"; done < <(sva_schema_files); } | sha256sum | cut -c1-64
}

# Tail of the server log, for error messages.
sva_tail_log() {
  local log="$1/server.log"
  if [[ -r "$log" ]]; then
    echo "---- last lines of $log ----" >&2
    tail -n 30 "$log" >&2
    echo "----" >&2
  fi
}
