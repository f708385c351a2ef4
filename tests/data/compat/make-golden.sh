#!/usr/bin/env bash
# Writes one golden database for the compatibility test (tests/Sva.Compat.Tests):
#   tests/data/compat/<NAME>/db.dump      pg_dump -Fc of a database written by the sva of one release
#   tests/data/compat/<NAME>/expected/    that release's own answers on it (state, log, history, verify, ...)
#   tests/data/compat/<NAME>/sessions.tsv the sessions it holds and how each was made
#
# usage: make-golden.sh NAME SVA_CHECKOUT
#   SVA_CHECKOUT: a checkout of the release to record with (its ./sva wrapper builds it), e.g. a worktree of
#   the commit: git worktree add /tmp/sva-b4ea429 b4ea429 && make-golden.sh b4ea429 /tmp/sva-b4ea429
# The database is made on the cluster of postgres-init/pg-up.sh (or the server of SVA_ADMIN_DB, a connection
# string of a role that may CREATE DATABASE) under the name sva_golden_<NAME>, then dropped.
#
# Every release adds its own directory and deletes none: a change that no longer reads an old one fails CI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
name="${1:?usage: make-golden.sh NAME SVA_CHECKOUT}"
checkout="$(cd "${2:?usage: make-golden.sh NAME SVA_CHECKOUT}" && pwd)"
[[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "make-golden.sh: NAME must be letters, digits, . _ -" >&2; exit 2; }
out="$here/$name"
[[ -e "$out" ]] && { echo "make-golden.sh: $out exists; golden databases are never rewritten" >&2; exit 2; }

admin="${SVA_ADMIN_DB:-$("$repo/postgres-init/pg-up.sh")}"
# host/port/user from the admin connection string (Host=...;Port=...;Username=...)
kv() { tr ';' '\n' <<<"$admin" | sed -n "s/^$1=//Ip" | head -n 1; }
host="$(kv Host)"; port="$(kv Port)"; user="$(kv Username)"
db="sva_golden_${name//[.-]/_}"
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U "$user" -d postgres "$@"; }
psql_admin -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
export SVA_DB="Host=$host;Port=$port;Username=$user;Database=$db"
unset SVA_DB_READER SVA_SHARDS SVA_SHARD_READERS

sva() { "$checkout/sva" "$@"; }
mkdir -p "$out/expected"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
exec 3>"$out/sessions.tsv"
printf 'session\thow\n' >&3

# Recorded scripts (every example of that release), one session each.
for f in "$checkout"/examples/*.sva; do
    s="run-$(basename "$f" .sva)"
    sva run "$f" --session "$s" --json >"$out/expected/run-output.$s.jsonl"
    printf '%s\trun examples/%s\n' "$s" "$(basename "$f")" >&3
done
# A generated workload long enough for several snapshots (4096 events apart).
sva generate --devices 4 --mms 6 --events 12000 --seed 42 --kernel 6.8 --session gen-6.8 >/dev/null
printf 'gen-6.8\tgenerate --devices 4 --mms 6 --events 12000 --seed 42 --kernel 6.8\n' >&3
sva generate --devices 3 --mms 3 --events 3000 --seed 7 --kernel 6.7 --session gen-6.7 >/dev/null
printf 'gen-6.7\tgenerate --devices 3 --mms 3 --events 3000 --seed 7 --kernel 6.7\n' >&3
# Since kernel names resolve (issue 16) and kernel files exist (issue 17): a release named as a user pastes it,
# a rule set of its own (6.10) and a what-if kernel file, stored in the log. Only where the release knows them.
if sva kernels --help 2>&1 | grep -q -- '--switches'; then
    sva run "$checkout/examples/uacce-double-open.sva" --kernel 6.12.9-arch1-1 --session run-uname-6.12 --json \
        >"$out/expected/run-output.run-uname-6.12.jsonl" 2>/dev/null
    printf 'run-uname-6.12\trun examples/uacce-double-open.sva --kernel 6.12.9-arch1-1\n' >&3
    sva run "$checkout/examples/two-devices-one-mm.sva" --kernel "$checkout/examples/6.8-rebind-ebusy.toml" \
        --session run-kernel-file --json >"$out/expected/run-output.run-kernel-file.jsonl" 2>/dev/null
    printf 'run-kernel-file\trun examples/two-devices-one-mm.sva --kernel examples/6.8-rebind-ebusy.toml\n' >&3
    sva generate --devices 3 --mms 4 --events 2500 --seed 11 --kernel 6.10 --session gen-6.10 >/dev/null 2>&1
    printf 'gen-6.10\tgenerate --devices 3 --mms 4 --events 2500 --seed 11 --kernel 6.10\n' >&3
fi
# Since the VT-d/AMD driver rules (issue 19): in-driver page requests (5.11, page_request_handled), responses that
# carry their wire code (6.9), an AMD device on 6.10. Only where the release has those scripts.
if [[ -f "$checkout/tests/data/vtd-amd/expected.txt" ]]; then
    for spec in "D04-vtd-prq-in-driver 5.11" "D17-failure-code-on-the-wire 6.9" "D01-amd-no-sva-before-6.10 6.10" "D12-vtd-large-invalidate 6.6"; do
        read -r d k <<<"$spec"
        s="vtd-${d%%-*}-$k"
        sva run "$checkout/tests/data/vtd-amd/$d.sva" --kernel "$k" --session "$s" --json >"$out/expected/run-output.$s.jsonl"
        printf '%s\trun tests/data/vtd-amd/%s.sva --kernel %s\n' "$s" "$d" "$k" >&3
    done
fi
# Imports: a JSONL capture of the project and real pasted captures (ftrace, dmesg, QEMU trace).
imp() {
    local s="$1" file="$2"; shift 2
    sva import "$file" --session "$s" --json "$@" >"$out/expected/import-output.$s.json"
    printf '%s\timport %s %s\n' "$s" "${file#"$checkout"/}" "$*" >&3
}
imp imp-jsonl "$checkout/examples/captures/uacce-double-open.jsonl"
imp imp-ftrace-smmu "$checkout/tests/data/captures/ftrace-sva-smmu-1.txt"
imp imp-dmesg-dmar "$checkout/tests/data/captures/dmesg-dmar-1.txt"
imp imp-qemu-vtd "$checkout/tests/data/captures/qemu-trace-vtd-2.unwrapped.txt"
exec 3>&-

# The async audit projection caught up, so its documents are in the dump too.
sva projections daemon --once >/dev/null

# That release's own answers.
sva sessions --json >"$out/expected/sessions.jsonl"
sva verify --json >"$out/expected/verify.jsonl"
tail -n +2 "$out/sessions.tsv" | cut -f1 | while read -r s; do
    sva state "$s" --json >"$out/expected/state.$s.json"
    last="$(sva log "$s" --json | tail -n 1 | sed -n 's/.*"seq":\([0-9]*\).*/\1/p')"
    mid=$(( last / 2 > 0 ? last / 2 : 1 ))
    sva state "$s" --at "$mid" --json >"$out/expected/state-at-$mid.$s.json"
    echo "$mid" >"$out/expected/mid.$s"
    sva log "$s" --json >"$out/expected/log.$s.jsonl"
    sva history "$s" --json >"$out/expected/history.$s.jsonl" || true
    # compare re-decides every call: kept for the short sessions (the generated ones would be megabytes)
    [[ "$s" == gen-* ]] || sva compare "$s" --kernel 6.7 --kernel 6.8 --json >"$out/expected/compare.$s.json" || true
done
sva projections verify >"$out/expected/projections-verify.txt"

# Large answers are kept gzipped (the test reads FILE.gz as FILE).
find "$out/expected" -type f -size +64k -exec gzip -9 -n {} +

# Custom format, compressed; restored with pg_restore --no-owner (grants to the sva_* roles kept).
pg_dump -Fc -Z 9 -h "$host" -p "$port" -U "$user" -d "$db" -f "$out/db.dump"
(cd "$checkout" && git rev-parse HEAD) >"$out/commit"
psql_admin -c "DROP DATABASE $db"
echo "make-golden.sh: wrote $out ($(du -sh "$out" | cut -f1))" >&2
