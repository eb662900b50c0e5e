#!/usr/bin/env bash
# Instructions settlement spends per bill row: reading the kept ZIP, spilling both sides, matching
# (user space, counted by valgrind's callgrind: the same count on every run, where this VM's
# timings move by a third from minute to minute; the kernel's copies are not counted).
#
# Makes two days with reconciler/benches/settle.rs (20 rows and ROWS rows, default 100000), runs
# the bench's child on each under callgrind and prints the difference per row, so what every run
# spends once (TLS's entropy, connecting, the runtime) cancels out. Drops each day after.
#
#     bench/settle_instructions.sh [ROWS]
#
# Needs valgrind, psql and jq, and the Postgres of DATABASE_ADMIN_URL (default as the bench's).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-100000}
admin=${DATABASE_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
exe=$(cargo bench -p reconciler --bench settle --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.target.name == "settle" and .executable != null) | .executable' | tail -1)
# Instructions the child spends matching a fresh day of $1 rows. Called in a subshell (its
# variables are its own; the day is dropped when the subshell ends, however it ends).
instructions() {
    kept=$(SETTLE_BENCH_KEEP=1 "$exe" "$1" 2>&1 >/dev/null | grep '^kept: ')
    db=$(sed -E 's/^kept: database ([^,]+), bill (.*)$/\1/' <<<"$kept")
    file=$(sed -E 's/^kept: database ([^,]+), bill (.*)$/\2/' <<<"$kept")
    out=$(mktemp)
    trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; rm -f "$file" "$out"' EXIT
    url="${admin%/*}/$db"
    tenant=$(psql "$url" -Atc "SELECT tenant_id FROM trades LIMIT 1")
    SETTLE_BENCH_CHILD="$url $file $1 $tenant" valgrind --tool=callgrind --callgrind-out-file="$out" "$exe" \
        >/dev/null 2>&1
    grep '^summary:' "$out" | awk '{print $2}'
}

small=$(instructions 20)
large=$(instructions "$rows")
echo "$rows rows: $large instructions; 20 rows: $small; per row: $(((large - small) / (rows - 20)))"
