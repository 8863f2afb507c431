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
# With REWARDS=1, then the rewards phases (issue 12; REWARDS=only: just those and the ceiling (2),
# about 5 minutes):
#   R1. POST /api/v1/transactions from 32 registers as in (1), but with loadgen's card pool
#       registered as members, without and with a reward program (off, on, on, off; with
#       BASELINE_REV also a server built from that revision: before, off, on, on, off, before);
#   R2. 2,000 members with REDEEM_SALES sales of 240.00 each (25 points apiece) and a reward
#       costing 10: POST /api/v1/redemptions from 32 registers for random members, REDEEM_DURATION
#       seconds, then SQL checks: no balance below zero, one 'spent' row per 201;
#   R3. its ceiling: pgbench running Redeem's statements on the same members in the pgbench
#       database.
# Everything it starts is stopped on exit. All traffic stays on 127.0.0.1.
#
# Knobs (environment): DURATION (30), WARMUP (5), BATCH_DURATION (15), CONCURRENCY (32),
# PGBIN (/usr/lib/postgresql/15/bin), KEEP=1 to keep the work directory, SERVER_ENV (extra
# VAR=value words for the server, e.g. "REGULARS_DB_MAX_CONNS=16"), PROFILE=1 to save 20 s CPU
# profiles of the server under single and batch load (cpu-single.pprof, cpu-batch.pprof in the
# kept work directory; read with `go tool pprof -top WORK/regulars WORK/cpu-single.pprof`).
# REV (build the server from this git revision instead of the working tree, which other work in
# progress may share), REWARDS (unset, 1 or only), BASELINE_REV (a git revision whose server R1
# also measures, e.g. 5102ad8^, the code before rewards), REWARDS_FIX and REWARDS_UNFIX (SQL that
# applies and takes back a fix to try on the API's database, such as an index: R1 then also
# measures the program on with the fix), REDEEM_MEMBERS (2000), REDEEM_SALES (4: 100 points a
# member), REDEEM_DURATION (20; 0 leaves out R2 and R3).
# PHASES (all; "single": only (1), (2) and (3), about 1.5 minutes), COMPARE_REV (a git revision
# whose server also takes phase (1), on a database of its own, in turns with the server under
# test: the order is then test, compare, pgbench, compare, test, so that a drift of the machine
# falls on both alike; e.g. COMPARE_REV=965ae82, the code before group commit), PGSS=1 (load
# pg_stat_statements; each phase (1)'s statements by total time go to pgss-NAME.txt, and
# PostgreSQL's CPU by process to pgcpu-NAME.txt, in the kept work directory). FRESH=1 measures
# phases (1) and R1 on a table that was never analyzed, as runs before session 5 did (see below).
#
# Before a server's first phase (1) or R1, its registers post for WARMUP seconds and the database is
# analyzed, as autovacuum does within a minute or so of a deployment's first sales. Without that,
# phase (1) ran in the table's first minute: statements prepared while it was nearly empty keep
# plans made for an empty table (the refund check read every row of the store, 8 ms a refund
# at 40,000 rows), and those plans last until autovacuum first analyzes the table.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-5}
BATCH_DURATION=${BATCH_DURATION:-15}
CONCURRENCY=${CONCURRENCY:-32}
SERVER_ENV=${SERVER_ENV:-}
PROFILE=${PROFILE:-}
REWARDS=${REWARDS:-}
BASELINE_REV=${BASELINE_REV:-}
REV=${REV:-}
REWARDS_FIX=${REWARDS_FIX:-}
REWARDS_UNFIX=${REWARDS_UNFIX:-}
REDEEM_MEMBERS=${REDEEM_MEMBERS:-2000}
REDEEM_SALES=${REDEEM_SALES:-4}
REDEEM_DURATION=${REDEEM_DURATION:-20}
PHASES=${PHASES:-all}
COMPARE_REV=${COMPARE_REV:-}
PGSS=${PGSS:-}
FRESH=${FRESH:-}
case "$PHASES" in all | single) ;; *) echo "PHASES must be all or single" >&2; exit 1 ;; esac
if [ "$PHASES" = single ] && [ -n "$REWARDS" ] && [ "$REWARDS" != 0 ]; then echo "PHASES=single leaves out REWARDS" >&2; exit 1; fi
case "$REWARDS" in '' | 0 | 1 | only) ;; *) echo "REWARDS must be 1 or only" >&2; exit 1 ;; esac
if [ -n "$REWARDS_FIX" ] && [ -z "$REWARDS_UNFIX" ]; then echo "REWARDS_FIX needs REWARDS_UNFIX" >&2; exit 1; fi
WORK=$(mktemp -d /tmp/regulars-bench.XXXXXX)
chmod 755 "$WORK"
[ "$PROFILE" = 1 ] && KEEP=1
[ "$PGSS" = 1 ] && KEEP=1

. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
# CPU_PID: the server whose CPU a phase counts (default SERVER_PID; the baseline's in its phases).
# wal_syncs: how many times PostgreSQL has synced WAL to disk (every commit waits for one; one
# sync serves every commit written before it). Backends report it within a second or so.
wal_syncs() { "${PSQL[@]}" -d postgres -c 'SELECT wal_sync FROM pg_stat_wal'; }
cpu_begin() { CPU0_SERVER=$(proc_cpu "${CPU_PID:-$SERVER_PID}"); CPU0_PG=$(pg_cpu); WAL0=$(wal_syncs); }
cpu_end() { # phase [client_cpu_s]: appends "phase server_cpu_s postgres_cpu_s client_cpu_s wal_syncs" to cpu.txt
	printf '%s %s %s %s %s\n' "$1" "$(awk -v a="$(proc_cpu "${CPU_PID:-$SERVER_PID}")" -v b="$CPU0_SERVER" 'BEGIN { print a - b }')" \
		"$(awk -v a="$(pg_cpu)" -v b="$CPU0_PG" 'BEGIN { print a - b }')" "${2:--}" "$(($(wal_syncs) - WAL0))" >>"$WORK/cpu.txt"
}
client_cpu() { jq .cpu_seconds "$1"; } # loadgen's own CPU seconds from its JSON
profile() { # seconds file: a CPU profile of the server, in the background
	[ "$PROFILE" = 1 ] || return 0
	curl -fsS -o "$WORK/$2" "http://127.0.0.1:$PPROF_PORT/debug/pprof/profile?seconds=$1" &
}

SERVER_PID= BASELINE_PID= COMPARE_PID=
cleanup() {
	set +e
	local pid
	for pid in $SERVER_PID $BASELINE_PID $COMPARE_PID; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	if [ -f "$WORK/pg/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1
	fi
	if [ "${KEEP:-}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL at $PGBIN (apt-get install postgresql-15, or set PGBIN)" >&2; exit 1; }
command -v pgbench >/dev/null || PATH=$PGBIN:$PATH
command -v jq >/dev/null || { echo "jq is needed to read loadgen's JSON" >&2; exit 1; }

if [ -n "$REV" ]; then
	log "building regulars at $REV ($(git -C "$ROOT" rev-parse --short "$REV")) and loadgen"
	build_rev "$REV" regulars
else
	log "building regulars (the working tree) and loadgen"
	(cd "$ROOT" && go build -o "$WORK/regulars" ./cmd/regulars)
fi
(cd "$ROOT" && go build -o "$WORK/loadgen" ./cmd/loadgen)
if [ -n "$BASELINE_REV" ]; then
	log "building regulars at $BASELINE_REV ($(git -C "$ROOT" rev-parse --short "$BASELINE_REV"), the baseline)"
	build_rev "$BASELINE_REV" regulars-baseline
fi
if [ -n "$COMPARE_REV" ]; then
	log "building regulars at $COMPARE_REV ($(git -C "$ROOT" rev-parse --short "$COMPARE_REV"), compared in phase 1)"
	build_rev "$COMPARE_REV" regulars-compare
fi

PGPORT=$(free_port)
HTTP_PORT=$(free_port)
log "starting PostgreSQL 15 on 127.0.0.1:$PGPORT (fsync=on, synchronous_commit=on)"
mkdir -p "$WORK/pg" "$WORK/sock"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK/pg" "$WORK/sock"
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/sock/postgres.log" -w -o \
	"-p $PGPORT -k $WORK/sock -c listen_addresses=127.0.0.1 -c shared_buffers=512MB -c max_connections=200${PGSS:+ -c shared_preload_libraries=pg_stat_statements}" start >/dev/null
PG_PID=$(head -1 "$WORK/pg/postmaster.pid")
PSQL=("$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE regulars_api' -c 'CREATE DATABASE regulars_pgbench'
"${PSQL[@]}" -d postgres -c 'SHOW fsync' -c 'SHOW synchronous_commit' -c 'SHOW shared_buffers' | paste -sd' ' |
	sed 's/^/fsync, synchronous_commit, shared_buffers: /' >&2
API_URL="postgres://postgres@127.0.0.1:$PGPORT/regulars_api?sslmode=disable"
PGB_URL="postgres://postgres@127.0.0.1:$PGPORT/regulars_pgbench?sslmode=disable"

regulars() { REGULARS_DATA_DIR="$WORK/data-server" REGULARS_LOG_LEVEL=warn "$WORK/regulars" "$@"; }

# start_server BINARY DATABASE PORT NAME [VAR=value...]: `BINARY serve` on 127.0.0.1:PORT against
# DATABASE (it migrates it), logging to WORK/NAME.log; waits until it is ready, sets STARTED_PID.
start_server() {
	local bin=$1 db=$2 port=$3 name=$4
	shift 4
	env REGULARS_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/$db?sslmode=disable" \
		REGULARS_HTTP_ADDR="127.0.0.1:$port" REGULARS_DATA_DIR="$WORK/data-$name" REGULARS_LOG_LEVEL=warn "$@" \
		"$bin" serve 2>"$WORK/$name.log" &
	STARTED_PID=$!
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
		kill -0 "$STARTED_PID" 2>/dev/null || { cat "$WORK/$name.log" >&2; exit 1; }
		sleep 0.1
	done
	curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null
}
# setup_store BINARY DATABASE URL NAME: store bench-1 through the server at URL, an admin key
# (printed) and four register tokens (into WORK/NAME-tokens.txt), made by `BINARY apikey create`.
setup_store() {
	local admin i
	apikey() {
		REGULARS_DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/$2?sslmode=disable" REGULARS_DATA_DIR="$WORK/data-$4" \
			REGULARS_LOG_LEVEL=warn "$1" apikey create "${@:5}"
	}
	admin=$(apikey "$@" --role admin --name bench-admin)
	curl -fsS -X POST "$3/api/v1/stores" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
		-d '{"code":"bench-1","name":"Bench store","timezone":"Europe/Oslo","currency":"NOK"}' >/dev/null
	for i in 1 2 3 4; do
		printf 'bench-1 %s\n' "$(apikey "$@" --role register --store bench-1 --name "bench till $i")"
	done >"$WORK/$4-tokens.txt"
	echo "$admin"
}

# start_other NAME REVISION: a second server, WORK/regulars-NAME (built from REVISION), on a
# database of its own, regulars_NAME, with store bench-1 and register tokens in
# WORK/NAME-tokens.txt; sets STARTED_PID and OTHER_PORT.
start_other() {
	"${PSQL[@]}" -d postgres -c "CREATE DATABASE regulars_$1"
	OTHER_PORT=$(free_port)
	log "starting the $1 regulars serve ($2) on 127.0.0.1:$OTHER_PORT"
	start_server "$WORK/regulars-$1" "regulars_$1" "$OTHER_PORT" "$1"
	setup_store "$WORK/regulars-$1" "regulars_$1" "http://127.0.0.1:$OTHER_PORT" "$1" >/dev/null
}

log "starting regulars serve on 127.0.0.1:$HTTP_PORT"
if [ "$PROFILE" = 1 ]; then
	PPROF_PORT=$(free_port)
	SERVER_ENV="$SERVER_ENV REGULARS_PPROF_ADDR=127.0.0.1:$PPROF_PORT"
fi
# shellcheck disable=SC2086 # SERVER_ENV is a list of VAR=value words
start_server "$WORK/regulars" regulars_api "$HTTP_PORT" server $SERVER_ENV
SERVER_PID=$STARTED_PID
BASE="http://127.0.0.1:$HTTP_PORT"

log "creating store bench-1, an admin key and register tokens"
ADMIN=$(setup_store "$WORK/regulars" regulars_api "$BASE" server)

loadgen() { "$WORK/loadgen" -url "$BASE" -tokens "$WORK/server-tokens.txt" -json "$@"; }
checkpoint() { "${PSQL[@]}" -d postgres -c CHECKPOINT; }

# pg_procs: "pid ticks kind" for each process of the PostgreSQL cluster (kind: "backend DB" for
# a client's backend, else the process's title such as walwriter or "autovacuum worker"); the
# postmaster's line also holds its exited children (reaped backends and autovacuum workers).
pg_procs() {
	local pid
	for pid in "$PG_PID" $(ps -o pid= --ppid "$PG_PID"); do
		printf '%s %s %s\n' "$pid" "$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)" \
			"$(ps -o args= -p "$pid" | awk -v pm="$PG_PID" -v pid="$pid" '{ sub(/^postgres: /, "") }
				pid == pm { print "postmaster+exited"; next }
				$1 == "postgres" { print "backend", $2; next } { print $1, ($2 ~ /^(worker|launcher|process)$/ ? $2 : "") }')"
	done
}
# pg_procs_diff BEFORE AFTER: CPU seconds by kind of process between two pg_procs.
pg_procs_diff() {
	awk -v t="$TICK" 'NR == FNR { t0[$1] = $2; next }
		{ k = $3 " " $4; cpu[k] += ($2 - ($1 in t0 ? t0[$1] : 0)) / t }
		END { for (k in cpu) printf "%7.2f  %s\n", cpu[k], k }' "$1" "$2" | sort -rn
}
pgss_reset() { [ "$PGSS" = 1 ] && "${PSQL[@]}" -d postgres -c 'SELECT pg_stat_statements_reset()' >/dev/null; pg_procs >"$WORK/pgprocs0.txt"; }
pgss_save() { # NAME: statements by total time (planning included) and CPU by process since pgss_reset
	pg_procs >"$WORK/pgprocs1.txt"
	pg_procs_diff "$WORK/pgprocs0.txt" "$WORK/pgprocs1.txt" >"$WORK/pgcpu-$1.txt"
	[ "$PGSS" = 1 ] || return 0
	"${PSQL[@]}" -F' | ' -d postgres -c "SELECT calls, round((total_plan_time + total_exec_time)::numeric, 1) AS total_ms,
		round(total_plan_time::numeric, 1) AS plan_ms, round(((total_plan_time + total_exec_time) / calls)::numeric, 3) AS mean_ms,
		rows, wal_records, left(regexp_replace(query, '\s+', ' ', 'g'), 160)
		FROM pg_stat_statements ORDER BY total_plan_time + total_exec_time DESC LIMIT 20" >"$WORK/pgss-$1.txt"
}

# prime URL TOKENS DB: once per database (unless FRESH=1), the registers post for WARMUP seconds,
# then the database is analyzed (see FRESH above).
prime() {
	if [ "$FRESH" = 1 ] || [ -e "$WORK/primed-$3" ]; then return 0; fi
	log "    priming $3: its registers post for ${WARMUP}s, then ANALYZE"
	"$WORK/loadgen" -url "$1" -tokens "$2" -json -concurrency "$CONCURRENCY" -warmup 0s -duration "${WARMUP}s" \
		-run-id "prime" >/dev/null
	"${PSQL[@]}" -d "$3" -c ANALYZE
	touch "$WORK/primed-$3"
}

# 1. Single transactions, 32 registers posting back to back. phase_single [NAME URL TOKENS PID
# DB] (default: single, the server under test): writes NAME.json.
phase_single() {
	local name=${1:-single} url=${2:-$BASE} tokens=${3:-$WORK/server-tokens.txt} db=${5:-regulars_api}
	CPU_PID=${4:-$SERVER_PID}
	prime "$url" "$tokens" "$db"
	checkpoint
	log "1/4 POST /transactions ($name): $CONCURRENCY registers, ${WARMUP}s warm-up + ${DURATION}s"
	[ "$name" = single ] && (sleep "$WARMUP"; profile 20 cpu-single.pprof) &
	pgss_reset
	cpu_begin
	"$WORK/loadgen" -url "$url" -tokens "$tokens" -json -concurrency "$CONCURRENCY" -warmup "${WARMUP}s" \
		-duration "${DURATION}s" -run-id "$name" >"$WORK/$name.json"
	cpu_end "$name" "$(client_cpu "$WORK/$name.json")"
	pgss_save "$name"
	CPU_PID=
}

# 2. The ceiling: pgbench one-row inserts into the same table in a fresh, migrated database.
phase_pgbench() {
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
	local pgb=(pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -M prepared -c 32 -j 2 -f "$WORK/insert.sql" regulars_pgbench)
	"${pgb[@]}" -T "$WARMUP" >/dev/null 2>&1
	checkpoint
	cpu_begin
	mkdir -p "$WORK/pgblog"
	(cd "$WORK/pgblog" && /usr/bin/time -f '%U %S' -o "$WORK/pgbench.time" "${pgb[@]}" -l -T "$DURATION" >"$WORK/pgbench.txt" 2>&1)
	PGB_CPU=$(awk '{ print $1 + $2 }' "$WORK/pgbench.time")
	cpu_end pgbench "$PGB_CPU"
	PGB_TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$WORK/pgbench.txt" | head -1)
	PGB_LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$WORK/pgbench.txt")
	# Per-transaction log: the third column is the latency in µs; nearest-rank percentiles.
	PGB_PCT=$(cat "$WORK"/pgblog/pgbench_log.* | awk '{ print $3 }' | sort -n | awk '{ v[NR] = $1 }
		END { split("50 95 99", p, " "); for (i = 1; i <= 3; i++) { r = int(p[i] / 100 * NR + 0.999999);
		printf "p%s %.2f ms  ", p[i], v[r] / 1000 }; printf "max %.2f ms", v[NR] / 1000 }')
	rm -rf "$WORK/pgblog"
}

# 3. The same registers paced at half the saturated rate: latency when not queueing.
phase_paced() {
	SINGLE_RPS=$(jq .requests_per_sec "$WORK/single.json")
	local half
	half=$(jq -n "$SINGLE_RPS / 2 | floor")
	checkpoint
	log "3/4 POST /transactions: $CONCURRENCY registers paced at $half req/s, 15s"
	cpu_begin
	loadgen -concurrency "$CONCURRENCY" -rate "$half" -warmup 2s -duration 15s -run-id paced >"$WORK/paced.json"
	cpu_end paced "$(client_cpu "$WORK/paced.json")"
}

# 4. Batches.
phase_batch() {
	log "4/4 POST /transactions/batch"
	: >"$WORK/batch.jsonl"
	local spec size conc
	for spec in 1000:1 1000:2 1000:4 100:4; do
		size=${spec%%:*} conc=${spec##*:}
		checkpoint
		log "    batches of $size, $conc registers, 3s warm-up + ${BATCH_DURATION}s"
		[ "$spec" = 1000:4 ] && (sleep 3; profile 12 cpu-batch.pprof) &
		cpu_begin
		loadgen -batch "$size" -concurrency "$conc" -warmup 3s -duration "${BATCH_DURATION}s" -run-id "b$size-$conc" >"$WORK/batch.json"
		cpu_end "batch-$size-$conc" "$(client_cpu "$WORK/batch.json")"
		cat "$WORK/batch.json" >>"$WORK/batch.jsonl"
	done

	# The batch ceiling: pgbench inserting the same shape of rows (1000 transactions, 40% with a
	# card, 3 items each: the mean of loadgen's 1-5) in one statement, from 4 clients. The lines
	# carry their sale's member, time and kind as the server writes them (migration 00028), so
	# the lines' copy trigger is not called for them, as it is not for the server's (a REV
	# from before 00028 has no such columns: plain lines then).
	local copies="" from_ins=""
	if [ "$("${PSQL[@]}" -d regulars_pgbench -c "SELECT count(*) FROM information_schema.columns WHERE table_name = 'transaction_items' AND column_name = 'occurred_at'")" = 1 ]; then
		copies=", member_id, occurred_at, kind" from_ins=", ins.member_id, ins.occurred_at, ins.kind"
	fi
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
    RETURNING id, member_id, occurred_at, kind
)
INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor$copies)
SELECT ins.id, l, 'SKU-' || (10000 + l), 1, 4000$from_ins FROM ins, generate_series(1, 3) l;
EOF
	checkpoint
	log "    ceiling: pgbench, the same 1000-row inserts in one statement, 4 clients, ${BATCH_DURATION}s"
	cpu_begin
	pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -M prepared -c 4 -j 2 -f "$WORK/batch.sql" -T "$BATCH_DURATION" regulars_pgbench \
		>"$WORK/pgbench-batch.txt" 2>&1 || log "pgbench failed: see $WORK/pgbench-batch.txt"
	cpu_end pgbench-batch
	PGB_BATCH_ROWS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$WORK/pgbench-batch.txt" | head -1 | awk '{ printf "%d", $1 * 1000 }')
}

# Rewards (issue 12). register_members FILE NAME DB makes members of the cards in FILE (one a
# line, from `loadgen -list-cards`), named NAME, in database DB.
register_members() {
	"${PSQL[@]}" -d "$3" <<EOF
CREATE TEMP TABLE bench_cards (card text);
\copy bench_cards FROM '$1'
INSERT INTO members (card, name, status, source) SELECT DISTINCT card, '$2', 'active', 'bench' FROM bench_cards
ON CONFLICT (card) DO NOTHING;
ANALYZE members;
EOF
}
PROGRAM='{"points_per_visit": 1, "points_per_major_unit": 0.1, "min_amount": 0, "expire_after_days": 365}'
program_on() {
	curl -fsS -X PUT "$BASE/api/v1/rewards/program" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
		-d "$PROGRAM" >/dev/null
}
program_off() { "${PSQL[@]}" -d regulars_api -c 'DELETE FROM reward_program'; } # the API has no DELETE: no row, no points
# ledger_counts DB: member sales stored, earned rows, points earned, refund debits (so far); the
# baseline's database has no ledger.
ledger_counts() {
	if [ "$1" = regulars_baseline ]; then
		"${PSQL[@]}" -d "$1" -c "SELECT count(*) || ' 0 0 0' FROM transactions WHERE kind = 'sale' AND member_id IS NOT NULL"
		return
	fi
	"${PSQL[@]}" -F' ' -d "$1" -c "SELECT (SELECT count(*) FROM transactions WHERE kind = 'sale' AND member_id IS NOT NULL),
		count(*) FILTER (WHERE kind = 'earned'), coalesce(sum(points) FILTER (WHERE kind = 'earned'), 0),
		count(*) FILTER (WHERE kind = 'refunded') FROM points_ledger"
}

# R1. POST /transactions as in (1), the card pool registered as members, without and with a
# reward program, in the order off, on, on, off so that a drift that grows with time (the
# table, other load) falls on both alike. With BASELINE_REV, a server built from that revision
# (before rewards: 5102ad8^) on a database of its own with the same members takes turns too:
# before, off, on, on, off, before. With REWARDS_FIX, "fix" (the program on, the fix applied)
# joins in the middle: off, on, fix, fix, on, off.
phase_rewards() {
	local states="off on on off" i=0 state before db url tokens fixed=
	"$WORK/loadgen" -list-cards >"$WORK/cards.txt"
	register_members "$WORK/cards.txt" 'bench member' regulars_api
	if [ -n "$REWARDS_FIX" ]; then states="off on fix fix on off"; fi
	if [ -n "$BASELINE_REV" ]; then
		start_other baseline "$BASELINE_REV"
		BASELINE_PID=$STARTED_PID BASELINE_PORT=$OTHER_PORT
		register_members "$WORK/cards.txt" 'bench member' regulars_baseline
		states="before $states before"
	fi
	log "R1 POST /transactions, $(wc -l <"$WORK/cards.txt") loadgen cards registered as members: $states"
	: >"$WORK/rewards.txt"
	for state in $states; do
		i=$((i + 1))
		db=regulars_api url=$BASE tokens=$WORK/server-tokens.txt CPU_PID=$SERVER_PID
		if [ "$state" = fix ] && [ -z "$fixed" ]; then
			log "    fix: $REWARDS_FIX"
			"${PSQL[@]}" -d regulars_api -c "$REWARDS_FIX"
			fixed=1
		elif [ "$state" != fix ] && [ -n "$fixed" ]; then
			"${PSQL[@]}" -d regulars_api -c "$REWARDS_UNFIX"
			fixed=
		fi
		case $state in
		on | fix) program_on ;;
		off) program_off ;;
		before) db=regulars_baseline url="http://127.0.0.1:$BASELINE_PORT" tokens=$WORK/baseline-tokens.txt CPU_PID=$BASELINE_PID ;;
		esac
		prime "$url" "$tokens" "$db"
		checkpoint
		before=$(ledger_counts "$db")
		log "    $i: $state, $CONCURRENCY registers, ${WARMUP}s warm-up + ${DURATION}s"
		cpu_begin
		"$WORK/loadgen" -url "$url" -tokens "$tokens" -json -concurrency "$CONCURRENCY" -warmup "${WARMUP}s" \
			-duration "${DURATION}s" -run-id "rw$i$state" >"$WORK/rewards-$i.json"
		cpu_end "rewards-$i-$state" "$(client_cpu "$WORK/rewards-$i.json")"
		echo "$i $state $before $(ledger_counts "$db")" >>"$WORK/rewards.txt"
	done
	CPU_PID=
}
# mean_rps STATE: the mean req/s of R1's phases in STATE.
mean_rps() {
	local i state
	while read -r i state _; do
		if [ "$state" = "$1" ]; then jq .requests_per_sec "$WORK/rewards-$i.json"; fi
	done <"$WORK/rewards.txt" | jq -s 'add / length'
}

# R2. Redemptions: REDEEM_MEMBERS members (loadgen -seed 2's cards) with REDEEM_SALES sales of
# 240.00 NOK each through /transactions/batch (1 + ⌊0.1 × 240⌋ = 25 points a sale), a reward
# costing 10, and 32 registers redeeming it for random members.
phase_redeem() {
	"$WORK/loadgen" -list-cards -seed 2 -cards "$REDEEM_MEMBERS" >"$WORK/redeem-cards.txt"
	register_members "$WORK/redeem-cards.txt" 'bench redeem' regulars_api
	program_on
	curl -fsS -X POST "$BASE/api/v1/rewards" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
		-d '{"code": "coffee", "name": "Free coffee", "cost_points": 10, "discount_minor": 3500}' >/dev/null
	local till at s
	till=$(awk 'NR == 1 { print $2 }' "$WORK/server-tokens.txt")
	at=$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)
	log "R2 redemptions: $REDEEM_MEMBERS members, $REDEEM_SALES sale(s) of 240.00 each through /transactions/batch"
	for s in $(seq "$REDEEM_SALES"); do
		jq -R -s -c --arg at "$at" --arg s "$s" 'split("\n") | map(select(length > 0)) | to_entries
			| map({id: "seed-\($s)-\(.key)", store: "bench-1", register: "till-seed", kind: "sale", occurred_at: $at,
			       amount: 24000, currency: "NOK", member: {card: .value},
			       items: [{sku: "SKU-10000", qty: 1, unit_price: 24000}]})
			| . as $all | range(0; length; 1000) as $i | {transactions: $all[$i:$i + 1000]}' "$WORK/redeem-cards.txt"
	done | while read -r batch; do
		curl -fsS -X POST "$BASE/api/v1/transactions/batch" -H "Authorization: Bearer $till" -H 'Content-Type: application/json' \
			--data-binary @- <<<"$batch" | jq -e '.failed == 0' >/dev/null
	done
	cohort_balances >"$WORK/redeem-before.txt"
	checkpoint
	log "    $CONCURRENCY registers redeeming 'coffee' (10 points) for random members, ${REDEEM_DURATION}s (no warm-up: every 201 is counted)"
	cpu_begin
	loadgen -redeem coffee -seed 2 -cards "$REDEEM_MEMBERS" -concurrency "$CONCURRENCY" -warmup 0s \
		-duration "${REDEEM_DURATION}s" -run-id redeem >"$WORK/redeem.json"
	cpu_end redeem "$(client_cpu "$WORK/redeem.json")"
	cohort_balances >"$WORK/redeem-after.txt"
	"${PSQL[@]}" -d regulars_api -c "SELECT count(*) FROM members m WHERE m.name = 'bench redeem'
		AND (SELECT coalesce(sum(points), 0) FROM points_ledger l WHERE l.member_id = m.id) < 10" >"$WORK/redeem-exhausted.txt"
	# Every member's balance (the sum of the ledger), not only the cohort's; 'spent' rows and
	# redemptions in the whole database (nothing else redeems).
	"${PSQL[@]}" -F' ' -d regulars_api -c "SELECT
		(SELECT count(*) FROM (SELECT member_id FROM points_ledger GROUP BY member_id HAVING sum(points) < 0) o),
		(SELECT count(*) FROM points_ledger WHERE kind = 'spent'),
		(SELECT count(*) FROM redemptions),
		(SELECT count(*) FROM (SELECT member_id FROM redemptions GROUP BY member_id
		                        HAVING count(*) * 10 > 25 * $REDEEM_SALES) o)" >"$WORK/redeem-check.txt"
	# 201s by second of the run: the rate, and when balances start running out.
	"${PSQL[@]}" -d regulars_api -c "SELECT string_agg(n::text, ' ' ORDER BY s) FROM (
		SELECT date_trunc('second', created_at) AS s, count(*) AS n FROM redemptions GROUP BY 1) x" >"$WORK/redeem-seconds.txt"
}
# cohort_balances: the redemption cohort's members, their lowest and highest balance, total points.
cohort_balances() {
	"${PSQL[@]}" -F' ' -d "${1:-regulars_api}" -c "SELECT count(*), min(b), max(b), sum(b) FROM (
		SELECT m.id, coalesce((SELECT sum(points) FROM points_ledger l WHERE l.member_id = m.id), 0) AS b
		FROM members m WHERE m.name = 'bench redeem') c"
}

# R3. The redemption ceiling: pgbench running Redeem's statements (models/redemptions.go: the
# replay check, the member lookup and row lock, the replay check again, the balance, the reward,
# and, when the balance covers it, the redemption and its 'spent' row) on the same members with
# the same balances in the pgbench database, 32 clients. It picks members by id, not card.
phase_redeem_ceiling() {
	register_members "$WORK/redeem-cards.txt" 'bench redeem' regulars_pgbench
	local lo hi
	"${PSQL[@]}" -d regulars_pgbench <<EOF
INSERT INTO reward_program (points_per_visit, points_per_major_unit, min_amount, expire_after_days) VALUES (1, 0.1, 0, 365);
INSERT INTO rewards (code, name, cost_points, discount_minor) VALUES ('coffee', 'Free coffee', 10, 3500);
WITH t AS (
    INSERT INTO transactions (store_id, txn_id, register, kind, occurred_at, amount_minor, currency, member_id,
                              member_card, content_hash, live)
    SELECT $STORE_ID, 'seed-' || s || '-' || m.id, 'till-seed', 'sale', now(), 24000, 'NOK', m.id, m.card, '\\x00', true
    FROM members m, generate_series(1, $REDEEM_SALES) s WHERE m.name = 'bench redeem'
    RETURNING id, member_id, received_at)
INSERT INTO points_ledger (member_id, kind, points, transaction_id, expires_at)
SELECT member_id, 'earned', 25, id, received_at + interval '365 days' FROM t;
ANALYZE;
EOF
	read -r lo hi < <("${PSQL[@]}" -F' ' -d regulars_pgbench -c "SELECT min(id), max(id) FROM members WHERE name = 'bench redeem'")
	cat >"$WORK/redeem.sql" <<EOF
\set m random($lo, $hi)
\set r random(1, 9000000000000000000)
SELECT r.id FROM redemptions r WHERE r.store_id = $STORE_ID AND r.txn_id = 'pgb-' || :client_id || '-' || :r;
BEGIN;
SELECT m.id FROM members m WHERE m.id = :m AND m.status <> 'erased';
SELECT id FROM members WHERE id = :m FOR UPDATE;
SELECT r.id FROM redemptions r WHERE r.store_id = $STORE_ID AND r.txn_id = 'pgb-' || :client_id || '-' || :r;
SELECT coalesce(sum(points), 0) AS balance FROM points_ledger WHERE member_id = :m \\gset
SELECT code, cost_points, active FROM rewards WHERE code = 'coffee';
\\if :balance >= 10
INSERT INTO redemptions (store_id, txn_id, member_id, reward_code, points_spent, discount_minor, content_hash)
VALUES ($STORE_ID, 'pgb-' || :client_id || '-' || :r, :m, 'coffee', 10, 3500, '\\x00')
ON CONFLICT (store_id, txn_id) DO NOTHING RETURNING id AS rid \\gset
INSERT INTO points_ledger (member_id, kind, points, redemption_id) VALUES (:m, 'spent', -10, :rid);
COMMIT;
\\else
ROLLBACK;
\\endif
EOF
	checkpoint
	log "R3 ceiling: pgbench, Redeem's statements, 32 clients, ${REDEEM_DURATION}s"
	cpu_begin
	/usr/bin/time -f '%U %S' -o "$WORK/pgbench-redeem.time" pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -M prepared -c 32 -j 2 \
		-f "$WORK/redeem.sql" -T "$REDEEM_DURATION" regulars_pgbench >"$WORK/pgbench-redeem.txt" 2>&1 ||
		{ cat "$WORK/pgbench-redeem.txt" >&2; exit 1; }
	cpu_end pgbench-redeem "$(awk '{ print $1 + $2 }' "$WORK/pgbench-redeem.time")"
	PGB_REDEEM_TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$WORK/pgbench-redeem.txt" | head -1)
	PGB_REDEEM_LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$WORK/pgbench-redeem.txt")
	"${PSQL[@]}" -F' ' -d regulars_pgbench -c "SELECT
		(SELECT count(*) FROM (SELECT member_id FROM points_ledger GROUP BY member_id HAVING sum(points) < 0) o),
		(SELECT count(*) FROM points_ledger WHERE kind = 'spent')" >"$WORK/pgbench-redeem-check.txt"
}

if [ -n "$COMPARE_REV" ] && [ "$REWARDS" != only ]; then
	start_other compare "$COMPARE_REV"
	COMPARE_PID=$STARTED_PID COMPARE_PORT=$OTHER_PORT
fi
compare_single() { phase_single "$1" "http://127.0.0.1:$COMPARE_PORT" "$WORK/compare-tokens.txt" "$COMPARE_PID" regulars_compare; }
if [ "$PGSS" = 1 ]; then "${PSQL[@]}" -d postgres -c 'CREATE EXTENSION pg_stat_statements'; fi
if [ "$REWARDS" != only ]; then
	phase_single
	if [ -n "$COMPARE_REV" ]; then compare_single compare; fi
fi
phase_pgbench
if [ -n "$COMPARE_REV" ] && [ "$REWARDS" != only ]; then compare_single compare2; phase_single single2; fi
if [ "$REWARDS" != only ]; then
	phase_paced
	if [ "$PHASES" = all ]; then phase_batch; fi
fi
if [ -n "$REWARDS" ] && [ "$REWARDS" != 0 ]; then
	phase_rewards
	if [ "$REDEEM_DURATION" != 0 ]; then phase_redeem; phase_redeem_ceiling; fi
fi

ROWS_API=$("${PSQL[@]}" -d regulars_api -c 'SELECT count(*) FROM transactions')
ROWS_PGB=$("${PSQL[@]}" -d regulars_pgbench -c 'SELECT count(*) FROM transactions')

# Summary.
pct() { jq -n "$1 * 100 / $2 | . * 10 | round / 10"; }
yes_no() { if jq -en "$1" >/dev/null; then echo met; else echo MISSED; fi; }
# single_line NAME DB LABEL: phase (1)'s NAME run, its share of pgbench, its CPU per request
# (the phase's CPU, warm-up included, over its requests, the warm-up's counted at the measured
# rate) and the rows per group commit (rows per distinct received_at, the statement's now()).
single_line() {
	local server pg groups syncs
	read -r _ server pg _ syncs < <(grep "^$1 " "$WORK/cpu.txt")
	groups=$("${PSQL[@]}" -d "$2" -c "SELECT round(count(*)::numeric / greatest(count(DISTINCT received_at), 1), 1)
		FROM transactions WHERE txn_id LIKE '%-$1-%'")
	jq -r --arg title "$3" --arg pgb "$PGB_TPS" --argjson server "$server" --argjson pg "$pg" --arg groups "$groups" --argjson syncs "$syncs" \
		--argjson span "$(jq -n "($WARMUP + $DURATION) / $DURATION")" \
		'"POST /transactions, \($title), \(.concurrency) registers, closed loop, \(.seconds|floor)s:\n  \(.requests_per_sec|floor) req/s (\(.requests_per_sec * 1000 / ($pgb|tonumber) | round / 10)% of pgbench)   p50 \(.latency_ms.p50) ms  p95 \(.latency_ms.p95) ms  p99 \(.latency_ms.p99) ms  max \(.latency_ms.max) ms   errors \(.errors)\n  CPU per request: server \($server * 1e6 / (.requests * $span) | round) µs, PostgreSQL \($pg * 1e6 / (.requests * $span) | round) µs, loadgen \(.cpu_seconds * 1e6 / (.requests * $span) | round) µs, total \(($server + $pg + .cpu_seconds) * 1e6 / (.requests * $span) | round) µs;  rows per group commit \($groups), per WAL sync \(.requests * $span / ([$syncs, 1] | max) * 10 | round / 10)\(if .latency_refund_ms then "\n  sales p50 \(.latency_sale_ms.p50) ms  p99 \(.latency_sale_ms.p99) ms;  refunds (\(.refunds)) p50 \(.latency_refund_ms.p50) ms  p99 \(.latency_refund_ms.p99) ms" else "" end)"' \
		"$WORK/$1.json"
}
summary_core() {
	local rev=${REV:-the working tree} pgb_cpu pgb_syncs
	single_line single regulars_api "$rev"
	if [ -n "$COMPARE_REV" ]; then
		single_line compare regulars_compare "$COMPARE_REV (compared)"
		single_line compare2 regulars_compare "$COMPARE_REV (compared), after pgbench"
		single_line single2 regulars_api "$rev, after pgbench"
		echo "  mean of the two runs each: $(jq -s '(.[0].requests_per_sec + .[1].requests_per_sec) / 2 | floor' "$WORK/single.json" "$WORK/single2.json") req/s" \
			"against $(jq -s '(.[0].requests_per_sec + .[1].requests_per_sec) / 2 | floor' "$WORK/compare.json" "$WORK/compare2.json") req/s ($COMPARE_REV)"
	fi
	echo "pgbench ceiling, 32 clients, one-row INSERT ... ON CONFLICT DO NOTHING, ${DURATION}s:"
	echo "  $PGB_TPS tps   latency average $PGB_LAT ms  $PGB_PCT"
	read -r _ _ pgb_cpu _ pgb_syncs < <(grep "^pgbench " "$WORK/cpu.txt")
	echo "  CPU per row: PostgreSQL $(jq -n "$pgb_cpu * 1e6 / ($PGB_TPS * $DURATION) | round") µs, pgbench $(jq -n "$PGB_CPU * 1e6 / ($PGB_TPS * $DURATION) | round") µs;  rows per WAL sync $(jq -n "$PGB_TPS * $DURATION / ([$pgb_syncs, 1] | max) * 10 | round / 10")"
	echo "  API / pgbench = $(pct "$SINGLE_RPS" "$PGB_TPS")%  (target >= 50%: $(yes_no "$SINGLE_RPS >= 0.5 * $PGB_TPS"))"
	echo "  p99 target <= 25 ms at 32 registers: $(yes_no "$(jq .latency_ms.p99 "$WORK/single.json") <= 25")"
	jq -r '"POST /transactions, \(.concurrency) registers paced at \(.rate) req/s, \(.seconds|floor)s:\n  \(.requests_per_sec|floor) req/s   p50 \(.latency_ms.p50) ms  p95 \(.latency_ms.p95) ms  p99 \(.latency_ms.p99) ms  max \(.latency_ms.max) ms   errors \(.errors)"' "$WORK/paced.json"
	[ "$PHASES" = all ] || return 0
	echo "POST /transactions/batch:"
	jq -r '"  batch \(.batch), \(.concurrency) registers: \(.rows_per_sec|floor) rows/s (\(.requests_per_sec*10|floor/10) req/s)   p50 \(.latency_ms.p50) ms  p99 \(.latency_ms.p99) ms   errors \(.errors)"' "$WORK/batch.jsonl"
	BEST=$(jq -s 'map(.rows_per_sec) | max | floor' "$WORK/batch.jsonl")
	echo "  best $BEST rows/s (target >= 40000: $(yes_no "$BEST >= 40000"))"
	echo "  ceiling: pgbench, the same rows as 1000-row INSERTs, 4 clients: $PGB_BATCH_ROWS rows/s (API best = $(pct "$BEST" "$PGB_BATCH_ROWS")%)"
}
summary_rewards() {
	local off on before fix
	echo "Rewards (issue 12): POST /transactions, $CONCURRENCY registers, closed loop, loadgen's cards registered as members:"
	echo "  pgbench ceiling of this run (one-row insert): $PGB_TPS tps   latency average $PGB_LAT ms  $PGB_PCT"
	# CPU per request: the phase's CPU (warm-up included) over its requests, the warm-up's
	# counted at the measured rate.
	while read -r i state s0 e0 p0 d0 s1 e1 p1 d1; do
		read -r _ server pg _ < <(grep "^rewards-$i-" "$WORK/cpu.txt")
		jq -r --arg h "$i $state" --arg pgb "$PGB_TPS" --arg earn "member sales $((s1 - s0)), credited $((e1 - e0)) ($((p1 - p0)) points), refund debits $((d1 - d0))" \
			--argjson server "$server" --argjson pg "$pg" --argjson span "$(jq -n "($WARMUP + $DURATION) / $DURATION")" \
			'"  \($h)  \(.requests_per_sec|floor) req/s \(if $pgb == "" then "" else "(\(.requests_per_sec * 1000 / ($pgb|tonumber) | round / 10)% of pgbench)" end)  p50 \(.latency_ms.p50) ms  p99 \(.latency_ms.p99) ms  errors \(.errors)\n      CPU per request: server \($server * 1e6 / (.requests * $span) | round) µs, PostgreSQL \($pg * 1e6 / (.requests * $span) | round) µs, loadgen \(.cpu_seconds * 1e6 / (.requests * $span) | round) µs;  \($earn)"' \
			"$WORK/rewards-$i.json"
	done <"$WORK/rewards.txt"
	off=$(mean_rps off) on=$(mean_rps on)
	echo "  mean off $(jq -n "$off | floor") req/s, on $(jq -n "$on | floor") req/s: on / off = $(pct "$on" "$off")%  (target >= 90%: $(yes_no "$on >= 0.9 * $off"))"
	if [ -n "$REWARDS_FIX" ]; then
		fix=$(mean_rps fix)
		echo "  mean fix (on, with $REWARDS_FIX) $(jq -n "$fix | floor") req/s: fix / off = $(pct "$fix" "$off")%, fix / on = $(pct "$fix" "$on")%"
	fi
	if [ -n "$BASELINE_REV" ]; then
		before=$(mean_rps before)
		echo "  mean before ($BASELINE_REV) $(jq -n "$before | floor") req/s: off / before = $(pct "$off" "$before")%, on / before = $(pct "$on" "$before")%  (target >= 90%: $(yes_no "$on >= 0.9 * $before"))"
		if [ -n "$REWARDS_FIX" ]; then echo "  fix / before = $(pct "$fix" "$before")%"; fi
	fi
	[ "$REDEEM_DURATION" != 0 ] || return 0
	echo "Redemptions: $REDEEM_MEMBERS members, $REDEEM_SALES sale(s) of 240.00 each, reward 'coffee' costs 10, $CONCURRENCY registers, random members:"
	read -r n lo hi sum <"$WORK/redeem-before.txt"
	echo "  before: $n members, balances $lo..$hi, $sum points"
	jq -r '"  \(.requests|tostring) requests in \(.seconds*10|round/10)s: \(.requests_per_sec|floor) req/s  p50 \(.latency_ms.p50) ms  p99 \(.latency_ms.p99) ms\n  201 \(.created) (\(.created / .seconds | floor) redemptions/s; their p50 \(.latency_created_ms.p50) ms  p99 \(.latency_created_ms.p99) ms)   409 insufficient_points \(.insufficient_points // 0)   other errors \(.errors)"' "$WORK/redeem.json"
	echo "  201s in each second of the run: $(cat "$WORK/redeem-seconds.txt")"
	read -r n lo hi sum <"$WORK/redeem-after.txt"
	echo "  after: balances $lo..$hi, $sum points; members left with less than the reward's 10: $(cat "$WORK/redeem-exhausted.txt")"
	read -r overdrawn spent redemptions over_cap <"$WORK/redeem-check.txt"
	local created
	created=$(jq .created "$WORK/redeem.json")
	echo "  members with a balance below zero: $overdrawn; members with more redemptions than their points buy: $over_cap  ($(yes_no "$overdrawn == 0 and $over_cap == 0"))"
	echo "  'spent' rows $spent, redemptions $redemptions, 201s $created  ($(yes_no "$spent == $created and $redemptions == $created"))"
	read -r overdrawn spent <"$WORK/pgbench-redeem-check.txt"
	if [ -z "$PGB_REDEEM_TPS" ]; then
		echo "  ceiling: pgbench gave no rate (see pgbench-redeem.txt in the kept work directory)"
		return
	fi
	echo "  ceiling: pgbench, Redeem's statements, 32 clients, same members and balances: $PGB_REDEEM_TPS tps (latency average $PGB_REDEEM_LAT ms), $spent redeemed, $overdrawn overdrawn"
	echo "  API / pgbench = $(pct "$(jq .requests_per_sec "$WORK/redeem.json")" "$PGB_REDEEM_TPS")%"
}
{
	echo
	echo "== regulars till API benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "   PostgreSQL $("${PSQL[@]}" -d postgres -c 'SHOW server_version'), fsync=on, synchronous_commit=on, shared_buffers=512MB"
	if [ -n "$REV" ]; then
		echo "   server built from $REV ($(git -C "$ROOT" rev-parse --short "$REV"))"
	else
		echo "   server built from the working tree (HEAD $(git -C "$ROOT" rev-parse --short HEAD), $(git -C "$ROOT" status --porcelain | wc -l) paths changed or new)"
	fi
	if [ -n "$REWARDS_FIX" ]; then echo "   REWARDS_FIX: $REWARDS_FIX; REWARDS_UNFIX: $REWARDS_UNFIX"; fi
	echo
	if [ "$REWARDS" != only ]; then summary_core; fi
	if [ -n "$REWARDS" ] && [ "$REWARDS" != 0 ]; then summary_rewards; fi
	echo "rows stored: API database $ROWS_API, pgbench database $ROWS_PGB"
	echo "CPU seconds per phase (warm-ups included; 2 cores = 2 CPU-s per second):"
	awk '{ printf "  %-16s server %6.1f  postgres %6.1f  client %6s   WAL syncs %s\n", $1, $2, $3, $4 == "-" ? "-" : sprintf("%.1f", $4), $5 }' "$WORK/cpu.txt"
} | tee "$WORK/summary.txt"
