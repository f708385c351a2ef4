#!/usr/bin/env bash
# The main job on the embedded default: record the uacce double-open example in a fresh session on the
# local throwaway PostgreSQL, then show its state just after the second bind, at the end, and its log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
session="demo-$(date +%s)-$$"
./sva run examples/uacce-double-open.sva --session "$session"
./sva state "$session" --at 10
./sva state "$session"
./sva log "$session"
