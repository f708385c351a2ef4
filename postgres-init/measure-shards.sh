#!/usr/bin/env bash
# Measures what README "More than one machine" reports (a measurement script, not a test):
#   aggregate recording throughput of W concurrent `sva generate` writers into 1 shard, then into 2 shards,
#   and the replica's replay delay under that load (what a read-your-writes read waits for).
#
#   SVA_PG_PORT=54380 postgres-init/measure-shards.sh [EVENTS_PER_WRITER=100000] [WRITERS=4]
#
# Brings up its own topology (pg-up.sh --shards 2 --replica, data dir under /var/tmp) and purges it at the end.
# Replay delay: every 100 ms during the load, the primary's WAL insert position is read and the time until the replica
# reports pg_last_wal_replay_lsn() at or past it is measured (psql round trips included: ~5-10 ms of each sample).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${1:-100000}"; W="${2:-4}"
export SVA_PG_PORT="${SVA_PG_PORT:-54380}"
export SVA_PG_DATA="/var/tmp/sva-measure-$$"
export SVA_REPO="$repo"
PSQL=(psql -X -qAt -h 127.0.0.1 -U postgres -d sva)
cleanup() { bash "$repo/postgres-init/pg-down.sh" --all --purge >/dev/null 2>&1 || true; }
trap cleanup EXIT
mapfile -t lines < <(bash "$repo/postgres-init/pg-up.sh" --shards 2 --replica 2>/dev/null)
s1="$(printf '%s\n' "${lines[@]}" | sed -n 's/^shard1\t//p')"
s2="$(printf '%s\n' "${lines[@]}" | sed -n 's/^shard2\t//p')"
p1=$SVA_PG_PORT; rp=$((SVA_PG_PORT + 2))
sva="$repo/sva"
"$sva" kernels >/dev/null # builds once, outside the timing

lag_sampler() { # writes one delay in ms per line until killed
  while true; do
    t0=$(date +%s%N)
    lsn="$("${PSQL[@]}" -p "$p1" -c "SELECT pg_current_wal_insert_lsn()")"
    until [[ "$("${PSQL[@]}" -p "$rp" -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" == t ]]; do sleep 0.002; done
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
    sleep 0.1
  done
}

home() { # the shard (0-based, of 2) ShardedEventStore places a new session on: SHA-256 of the name, first 8 bytes mod 2
  local h; h="$(printf '%s' "$1" | sha256sum | cut -c16)"; echo $(( 16#$h % 2 ))
}
name_on() { # a session name with prefix $1 whose home is shard $2 (of 2)
  local k=0; while [[ "$(home "$1-$k")" != "$2" ]]; do k=$((k + 1)); done; echo "$1-$k"
}

cluster_cpu() { # CPU seconds used so far by the cluster on port $1: its postmaster (with reaped backends) + live children
  local data pm ticks=0 c
  for data in "$SVA_PG_DATA" "$SVA_PG_DATA"-shard*; do
    [[ "$(sed -n 4p "$data/postmaster.pid" 2>/dev/null)" == "$1" ]] || continue
    pm="$(head -1 "$data/postmaster.pid")"
    ticks=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat")
    for c in $(pgrep -P "$pm"); do ticks=$(( ticks + $(awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || echo 0) )); done
  done
  awk "BEGIN { print $ticks / $(getconf CLK_TCK) }"
}

run() { # $1 = label, $2 = SVA_SHARDS
  local label="$1" shards="$2" pids=() lagpid t0 t1 total
  lag_sampler >"/tmp/sva-measure-lag-$label-$$" & lagpid=$!
  local c1a c2a c1b c2b load0
  c1a=$(cluster_cpu "$p1"); c2a=$(cluster_cpu $((p1 + 1))); load0=$(cut -d' ' -f1 /proc/loadavg)
  rm -f "/tmp/sva-measure-cpu-$$"
  t0=$(date +%s%N)
  for i in $(seq 1 "$W"); do
    SVA_SHARDS="$shards" /usr/bin/time -a -o "/tmp/sva-measure-cpu-$$" -f '%U %S' "$sva" generate --devices 4 --mms 8 --events "$N" --seed "$i" --session "$(name_on "m-$label-$i-$$" $((i % 2)))" >/dev/null 2>&1 & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(date +%s%N)
  kill "$lagpid" 2>/dev/null; wait "$lagpid" 2>/dev/null || true
  c1b=$(cluster_cpu "$p1"); c2b=$(cluster_cpu $((p1 + 1)))
  local client server
  client=$(awk '/^[0-9.]+ [0-9.]+$/ { s += $1 + $2 } END { print s }' "/tmp/sva-measure-cpu-$$")
  server=$(awk "BEGIN { print ($c1b - $c1a) + ($c2b - $c2a) }")
  printf '%s: CPU: writers %.1f s (%d events per client CPU-second), servers %.1f s (%d events per server CPU-second; shard1 %.1f s, shard2 %.1f s); load average %s at the start, %s at the end\n' \
    "$label" "$client" "$(awk "BEGIN { print int($N * $W / $client) }")" "$server" "$(awk "BEGIN { print int($N * $W / $server) }")" \
    "$(awk "BEGIN { print $c1b - $c1a }")" "$(awk "BEGIN { print $c2b - $c2a }")" "$load0" "$(cut -d' ' -f1 /proc/loadavg)"
  total=$(( N * W ))
  sort -n "/tmp/sva-measure-lag-$label-$$" >"/tmp/sva-measure-lag-$label-$$.s"
  local n p50 p95
  n=$(wc -l <"/tmp/sva-measure-lag-$label-$$.s")
  p50=$(sed -n "$(( (n * 50 + 99) / 100 ))p" "/tmp/sva-measure-lag-$label-$$.s")
  p95=$(sed -n "$(( (n * 95 + 99) / 100 ))p" "/tmp/sva-measure-lag-$label-$$.s")
  printf '%s: %d writers x %d events in %.1f s = %d events/s; replica replay delay p50 %s ms, p95 %s ms (%d samples)\n' \
    "$label" "$W" "$N" "$(awk "BEGIN { print ($t1 - $t0) / 1e9 }")" "$(( total * 1000000000 / (t1 - t0) ))" "$p50" "$p95" "$n"
  rm -f "/tmp/sva-measure-lag-$label-$$" "/tmp/sva-measure-lag-$label-$$.s"
}

run 1shard "$s1"
run 2shards "$s1|$s2"
for p in "$p1" $((p1 + 1)); do
  echo "port $p: $("${PSQL[@]}" -p "$p" -c "SELECT count(*) || ' sessions, ' || (SELECT count(*) FROM mt_events) || ' events' FROM mt_doc_sessiondoc")"
done
