#!/usr/bin/env bash
# Runs every test against a real PostgreSQL: SVA_DB when set, else the throwaway local cluster that
# postgres-init/pg-up.sh installs (apt-get, when missing) and starts. Ends with "N passed, N failed".
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$repo"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export SVA_REPO="$repo"
if [[ -z "${SVA_DB:-}" ]]; then
    SVA_DB="$("$repo/postgres-init/pg-up.sh")" || { echo "test.sh: could not start PostgreSQL (see above)" >&2; echo "0 passed, 1 failed"; exit 1; }
    export SVA_DB
fi
echo "test.sh: database $SVA_DB" >&2

# The timeline test renders the HTML page in Debian's headless Chromium.
if ! command -v chromium >/dev/null 2>&1; then
    echo "test.sh: installing chromium (apt-get) for the timeline test" >&2
    if [[ $(id -u) -eq 0 ]]; then apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
    else sudo apt-get update -qq >&2 && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2; fi \
        || echo "test.sh: could not install chromium; the timeline test will fail" >&2
fi

results="$repo/.state/test-results"
rm -rf "$results"
mkdir -p "$results"
dotnet test "$repo/Sva.EventSourced.sln" -c Release --logger "trx" --results-directory "$results" "$@"
rc=$?
# The BenchmarkDotNet micro-benchmarks are outside the solution (a fresh clone's build stays short); they must still build.
if ! dotnet build "$repo/bench/Sva.Bench/Sva.Bench.csproj" -c Release -nologo -v q >&2; then echo "test.sh: bench/Sva.Bench does not build" >&2; rc=1; fi

passed=0; failed=0
for trx in "$results"/*.trx; do
    [[ -f "$trx" ]] || continue
    counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
    p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
if [[ $rc -ne 0 && $failed -eq 0 ]]; then failed=1; echo "test.sh: dotnet test failed (exit $rc) outside any test (build error?)" >&2; fi
echo "$passed passed, $failed failed"
[[ $rc -eq 0 && $failed -eq 0 && $passed -gt 0 ]]
