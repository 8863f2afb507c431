#!/usr/bin/env bash
# bench-api.sh: the till API figures of docs/benchmarks.md, each beside its ceiling measured in
# the same run on the same machine.
#
#   sudo scripts/bench-api.sh            # about 3.5 minutes; prints a summary (KEEP=1 keeps raw output)
#
# It starts a private PostgreSQL 15 cluster under /tmp (as user postgres when run as root, with
# fsync and synchronous_commit at their defaults: every acknowledged purchase is durable),
# builds and starts `regulars serve` against it, and measures:
#   1. POST /api/v1/transactions from 32 registers (closed loop), after a warm-up;
#   2. the ceiling: pgbench, 32 clients, a one-row INSERT ... ON CONFLICT DO NOTHING into the
#      same table with the same indexes, in a fresh database migrated by `regulars migrate`;
#   3. the same 32 registers paced at half the rate of (1), for latency below saturation;
#   4. POST /api/v1/transactions/batch with batches of 1000 (and 100) at a few concurrencies.
# Everything it starts is stopped on exit. All traffic stays on 127.0.0.1.
#
# Knobs (environment): DURATION (30), WARMUP (5), BATCH_DURATION (15), CONCURRENCY (32),
# PGBIN (/usr/lib/postgresql/15/bin), KEEP=1 to keep the work directory, SERVER_ENV (extra
# VAR=value words for the server, e.g. "REGULARS_DB_MAX_CONNS=16"), PROFILE=1 to save 20 s CPU
# profiles of the server under single and batch load (cpu-single.pprof, cpu-batch.pprof in the
# kept work directory; read with `go tool pprof -top WORK/regulars WORK/cpu-single.pprof`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-5}
BATCH_DURATION=${BATCH_DURATION:-15}
CONCURRENCY=${CONCURRENCY:-32}
SERVER_ENV=${SERVER_ENV:-}
PROFILE=${PROFILE:-}
WORK=$(mktemp -d /tmp/regulars-bench.XXXXXX)
chmod 755 "$WORK"
[ "$PROFILE" = 1 ] && KEEP=1

. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
cpu_begin() { CPU0_SERVER=$(proc_cpu "$SERVER_PID"); CPU0_PG=$(pg_cpu); }
cpu_end() { # phase name: appends "phase server_cpu_s postgres_cpu_s" to cpu.txt
	printf '%s %s %s\n' "$1" "$(awk -v a="$(proc_cpu "$SERVER_PID")" -v b="$CPU0_SERVER" 'BEGIN { print a - b }')" \
		"$(awk -v a="$(pg_cpu)" -v b="$CPU0_PG" 'BEGIN { print a - b }')" >>"$WORK/cpu.txt"
}
profile() { # seconds file: a CPU profile of the server, in the background
	[ "$PROFILE" = 1 ] || return 0
	curl -fsS -o "$WORK/$2" "http://127.0.0.1:$PPROF_PORT/debug/pprof/profile?seconds=$1" &
}

SERVER_PID=
cleanup() {
	set +e
	if [ -n "$SERVER_PID" ]; then
		kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	fi
	if [ -f "$WORK/pg/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1
	fi
	if [ "${KEEP:-}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL at $PGBIN (apt-get install postgresql-15, or set PGBIN)" >&2; exit 1; }
command -v pgbench >/dev/null || PATH=$PGBIN:$PATH
command -v jq >/dev/null || { echo "jq is needed to read loadgen's JSON" >&2; exit 1; }

log "building regulars and loadgen"
(cd "$ROOT" && go build -o "$WORK/regulars" ./cmd/regulars && go build -o "$WORK/loadgen" ./cmd/loadgen)

PGPORT=$(free_port)
HTTP_PORT=$(free_port)
log "starting PostgreSQL 15 on 127.0.0.1:$PGPORT (fsync=on, synchronous_commit=on)"
mkdir -p "$WORK/pg" "$WORK/sock"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK/pg" "$WORK/sock"
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/sock/postgres.log" -w -o \
	"-p $PGPORT -k $WORK/sock -c listen_addresses=127.0.0.1 -c shared_buffers=512MB -c max_connections=200" start >/dev/null
PG_PID=$(head -1 "$WORK/pg/postmaster.pid")
PSQL=("$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE regulars_api' -c 'CREATE DATABASE regulars_pgbench'
"${PSQL[@]}" -d postgres -c 'SHOW fsync' -c 'SHOW synchronous_commit' -c 'SHOW shared_buffers' | paste -sd' ' |
	sed 's/^/fsync, synchronous_commit, shared_buffers: /' >&2
API_URL="postgres://postgres@127.0.0.1:$PGPORT/regulars_api?sslmode=disable"
PGB_URL="postgres://postgres@127.0.0.1:$PGPORT/regulars_pgbench?sslmode=disable"

regulars() { REGULARS_DATA_DIR="$WORK/data" REGULARS_LOG_LEVEL=warn "$WORK/regulars" "$@"; }

log "starting regulars serve on 127.0.0.1:$HTTP_PORT"
if [ "$PROFILE" = 1 ]; then
	PPROF_PORT=$(free_port)
	SERVER_ENV="$SERVER_ENV REGULARS_PPROF_ADDR=127.0.0.1:$PPROF_PORT"
fi
# shellcheck disable=SC2086 # SERVER_ENV is a list of VAR=value words
env REGULARS_DATABASE_URL="$API_URL" REGULARS_HTTP_ADDR="127.0.0.1:$HTTP_PORT" \
	REGULARS_DATA_DIR="$WORK/data" REGULARS_LOG_LEVEL=warn $SERVER_ENV \
	"$WORK/regulars" serve 2>"$WORK/server.log" &
SERVER_PID=$!
BASE="http://127.0.0.1:$HTTP_PORT"
for _ in $(seq 100); do
	curl -fsS "$BASE/readyz" >/dev/null 2>&1 && break
	kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
	sleep 0.1
done
curl -fsS "$BASE/readyz" >/dev/null

log "creating store bench-1, an admin key and register tokens"
ADMIN=$(REGULARS_DATABASE_URL="$API_URL" regulars apikey create --role admin --name bench-admin)
curl -fsS -X POST "$BASE/api/v1/stores" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
	-d '{"code":"bench-1","name":"Bench store","timezone":"Europe/Oslo","currency":"NOK"}' >/dev/null
for i in 1 2 3 4; do
	printf 'bench-1 %s\n' "$(REGULARS_DATABASE_URL="$API_URL" regulars apikey create --role register --store bench-1 --name "bench till $i")"
done >"$WORK/tokens.txt"

loadgen() { "$WORK/loadgen" -url "$BASE" -tokens "$WORK/tokens.txt" -json "$@"; }
checkpoint() { "${PSQL[@]}" -d postgres -c CHECKPOINT; }

# 1. Single transactions, 32 registers posting back to back.
checkpoint
log "1/4 POST /transactions: $CONCURRENCY registers, ${WARMUP}s warm-up + ${DURATION}s"
(sleep "$WARMUP"; profile 20 cpu-single.pprof) &
cpu_begin
loadgen -concurrency "$CONCURRENCY" -warmup "${WARMUP}s" -duration "${DURATION}s" -run-id single >"$WORK/single.json"
cpu_end single

# 2. The ceiling: pgbench one-row inserts into the same table in a fresh, migrated database.
log "2/4 pgbench ceiling: 32 clients, ${WARMUP}s warm-up + ${DURATION}s"
REGULARS_DATABASE_URL="$PGB_URL" regulars migrate >/dev/null
"${PSQL[@]}" -d regulars_pgbench -c \
	"INSERT INTO stores (code, name, timezone, currency) VALUES ('bench-1', 'Bench store', 'Europe/Oslo', 'NOK')"
STORE_ID=$("${PSQL[@]}" -d regulars_pgbench -c "SELECT id FROM stores WHERE code = 'bench-1'")
# A row like the API's: 40% carry a (so far unregistered) card, so the same partial index grows.
cat >"$WORK/insert.sql" <<EOF
\set r random(1, 9000000000000000000)
\set c random(0, 99)
\set amount random(2000, 200000)
INSERT INTO transactions (store_id, txn_id, register, kind, occurred_at, amount_minor, currency,
                          member_card, content_hash)
VALUES ($STORE_ID, 'pgb-' || :client_id || '-' || :r, 'till-' || :client_id, 'sale', now(), :amount, 'NOK',
        CASE WHEN :c < 40 THEN '29' || lpad((:r % 100000000000)::text, 11, '0') END,
        '\\x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff')
ON CONFLICT (store_id, txn_id) DO NOTHING;
EOF
PGB=(pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -M prepared -c 32 -j 2 -f "$WORK/insert.sql" regulars_pgbench)
"${PGB[@]}" -T "$WARMUP" >/dev/null 2>&1
checkpoint
cpu_begin
mkdir -p "$WORK/pgblog"
(cd "$WORK/pgblog" && /usr/bin/time -f '%U %S' -o "$WORK/pgbench.time" "${PGB[@]}" -l -T "$DURATION" >"$WORK/pgbench.txt" 2>&1)
cpu_end pgbench
PGB_CPU=$(awk '{ print $1 + $2 }' "$WORK/pgbench.time")
PGB_TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$WORK/pgbench.txt" | head -1)
PGB_LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$WORK/pgbench.txt")
# Per-transaction log: the third column is the latency in µs; nearest-rank percentiles.
PGB_PCT=$(cat "$WORK"/pgblog/pgbench_log.* | awk '{ print $3 }' | sort -n | awk '{ v[NR] = $1 }
	END { split("50 95 99", p, " "); for (i = 1; i <= 3; i++) { r = int(p[i] / 100 * NR + 0.999999);
	printf "p%s %.2f ms  ", p[i], v[r] / 1000 }; printf "max %.2f ms", v[NR] / 1000 }')
rm -rf "$WORK/pgblog"

# 3. The same registers paced at half the saturated rate: latency when not queueing.
SINGLE_RPS=$(jq .requests_per_sec "$WORK/single.json")
HALF=$(jq -n "$SINGLE_RPS / 2 | floor")
checkpoint
log "3/4 POST /transactions: $CONCURRENCY registers paced at $HALF req/s, 15s"
cpu_begin
loadgen -concurrency "$CONCURRENCY" -rate "$HALF" -warmup 2s -duration 15s -run-id paced >"$WORK/paced.json"
cpu_end paced

# 4. Batches.
log "4/4 POST /transactions/batch"
: >"$WORK/batch.jsonl"
for spec in 1000:1 1000:2 1000:4 100:4; do
	size=${spec%%:*} conc=${spec##*:}
	checkpoint
	log "    batches of $size, $conc registers, 3s warm-up + ${BATCH_DURATION}s"
	[ "$spec" = 1000:4 ] && (sleep 3; profile 12 cpu-batch.pprof) &
	cpu_begin
	loadgen -batch "$size" -concurrency "$conc" -warmup 3s -duration "${BATCH_DURATION}s" -run-id "b$size-$conc" >>"$WORK/batch.jsonl"
	cpu_end "batch-$size-$conc"
done

# The batch ceiling: pgbench inserting the same shape of rows (1000 transactions, 40% with a
# card, 3 items each: the mean of loadgen's 1-5) in one statement, from 4 clients.
cat >"$WORK/batch.sql" <<EOF
\set r random(1, 9000000000000000000)
WITH ins AS (
    INSERT INTO transactions (store_id, txn_id, register, kind, occurred_at, amount_minor, currency,
                              member_card, content_hash)
    SELECT $STORE_ID, 'pgb-' || :client_id || '-' || :r || '-' || g, 'till-' || :client_id, 'sale', now(), 12950, 'NOK',
           CASE WHEN g % 5 < 2 THEN '29' || lpad(((:r::bigint + g) % 100000000000)::text, 11, '0') END,
           '\\x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff'
    FROM generate_series(1, 1000) g
    ON CONFLICT (store_id, txn_id) DO NOTHING
    RETURNING id
)
INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
SELECT ins.id, l, 'SKU-' || (10000 + l), 1, 4000 FROM ins, generate_series(1, 3) l;
EOF
checkpoint
log "    ceiling: pgbench, the same 1000-row inserts in one statement, 4 clients, ${BATCH_DURATION}s"
cpu_begin
pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -M prepared -c 4 -j 2 -f "$WORK/batch.sql" -T "$BATCH_DURATION" regulars_pgbench \
	>"$WORK/pgbench-batch.txt" 2>&1 || log "pgbench failed: see $WORK/pgbench-batch.txt"
cpu_end pgbench-batch
PGB_BATCH_ROWS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$WORK/pgbench-batch.txt" | head -1 | awk '{ printf "%d", $1 * 1000 }')

ROWS_API=$("${PSQL[@]}" -d regulars_api -c 'SELECT count(*) FROM transactions')
ROWS_PGB=$("${PSQL[@]}" -d regulars_pgbench -c 'SELECT count(*) FROM transactions')

# Summary.
pct() { jq -n "$1 * 100 / $2 | . * 10 | round / 10"; }
yes_no() { if jq -en "$1" >/dev/null; then echo met; else echo MISSED; fi; }
{
	echo
	echo "== regulars till API benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
	echo "   PostgreSQL $("${PSQL[@]}" -d postgres -c 'SHOW server_version'), fsync=on, synchronous_commit=on, shared_buffers=512MB"
	echo
	jq -r '"POST /transactions, \(.concurrency) registers, closed loop, \(.seconds|floor)s:\n  \(.requests_per_sec|floor) req/s   p50 \(.latency_ms.p50) ms  p95 \(.latency_ms.p95) ms  p99 \(.latency_ms.p99) ms  max \(.latency_ms.max) ms   errors \(.errors)"' "$WORK/single.json"
	echo "pgbench ceiling, 32 clients, one-row INSERT ... ON CONFLICT DO NOTHING, ${DURATION}s:"
	echo "  $PGB_TPS tps   latency average $PGB_LAT ms  $PGB_PCT"
	echo "  API / pgbench = $(pct "$SINGLE_RPS" "$PGB_TPS")%  (target >= 50%: $(yes_no "$SINGLE_RPS >= 0.5 * $PGB_TPS"))"
	echo "  p99 target <= 25 ms at 32 registers: $(yes_no "$(jq .latency_ms.p99 "$WORK/single.json") <= 25")"
	jq -r '"POST /transactions, \(.concurrency) registers paced at \(.rate) req/s, \(.seconds|floor)s:\n  \(.requests_per_sec|floor) req/s   p50 \(.latency_ms.p50) ms  p95 \(.latency_ms.p95) ms  p99 \(.latency_ms.p99) ms  max \(.latency_ms.max) ms   errors \(.errors)"' "$WORK/paced.json"
	echo "POST /transactions/batch:"
	jq -r '"  batch \(.batch), \(.concurrency) registers: \(.rows_per_sec|floor) rows/s (\(.requests_per_sec*10|floor/10) req/s)   p50 \(.latency_ms.p50) ms  p99 \(.latency_ms.p99) ms   errors \(.errors)"' "$WORK/batch.jsonl"
	BEST=$(jq -s 'map(.rows_per_sec) | max | floor' "$WORK/batch.jsonl")
	echo "  best $BEST rows/s (target >= 40000: $(yes_no "$BEST >= 40000"))"
	echo "  ceiling: pgbench, the same rows as 1000-row INSERTs, 4 clients: $PGB_BATCH_ROWS rows/s (API best = $(pct "$BEST" "$PGB_BATCH_ROWS")%)"
	echo "rows stored: API database $ROWS_API, pgbench database $ROWS_PGB"
	echo "CPU seconds per phase (warm-ups included; 2 cores = 2 CPU-s per second):"
	paste -d' ' "$WORK/cpu.txt" <(jq -s -r --arg pgb "$PGB_CPU" '.[0].cpu_seconds, $pgb, (.[1:][] | .cpu_seconds), "-"' \
		"$WORK/single.json" "$WORK/paced.json" "$WORK/batch.jsonl") |
		awk '{ printf "  %-16s server %6.1f  postgres %6.1f  client %6s\n", $1, $2, $3, $4 }'
} | tee "$WORK/summary.txt"
