#!/usr/bin/env bash
# bench-flows.sh: the flow figures of issue 11 (docs/benchmarks.md, "Flows (issue 11)"):
#   1. trigger detection on the metrics benchmark's data (1,000,000 members, 10,000,000
#      transactions): for every trigger kind, one engine tick's entry statement beside a
#      hand-written SELECT count(*) of the same condition, alternated, median of REPEATS; the
#      event triggers again over a day of events; the lapsed triggers with the proposed index
#      and precomputed median gaps; with NOJIT=1, lapsed 60 and p_alive_below with jit off;
#   2. flow mail throughput through `regulars serve` beside campaign throughput, alternated,
#      ROUNDS each (cmd/benchsend -flow).
#
#   sudo cmd/benchflows/bench-flows.sh                                   # everything, full scale
#   sudo MEMBERS=20000 ROWS=200000 N=2000 cmd/benchflows/bench-flows.sh  # a quick small run
#   sudo KEEP=1 cmd/benchflows/bench-flows.sh                            # keep cluster and data
#   sudo WORK=/tmp/regulars-bench-flows.XXXX cmd/benchflows/bench-flows.sh   # reuse them
#
# It starts a private PostgreSQL 15 cluster under /tmp (as user postgres when run as root; fsync
# on, every other setting at its default), builds ./cmd/regulars, ./cmd/gencsv, ./cmd/benchflows
# and ./cmd/benchsend, writes the members and sales exactly as scripts/bench-metrics.sh does
# (gencsv -format members and -format retail) but piped through `benchflows shift`, which moves
# their times so that the data ends now (gencsv's end on 2026-01-01 falls on the start of the run)
# and gives 40% of members a birthday; loads them with `regulars import` (received_at stamped
# LIVE_DAYS days ago, as if the history had been imported when the tills went live); runs
# `regulars metrics run` as of today (p_alive); `benchflows prepare` (the last LIVE_DAYS days'
# sales live, confirmed_at for consented members, a tier ladder; VACUUM ANALYZE); then
# `benchflows triggers` and `benchsend -flow`. Everything it starts is stopped on exit; the work
# directory is removed unless KEEP=1.
#
# Knobs (environment): MEMBERS (1000000), STORES (10), ROWS (10000000), TZNAME (Europe/Oslo),
# REPEATS (5), FIX_REPEATS (REPEATS), LIVE_DAYS (30), N (20000 mails each way), CONCURRENCY (16), ROUNDS (3),
# METRICS=0 (synthetic p_alive instead of a metrics run), SKIP_TRIGGERS=1, SKIP_FIX=1, SKIP_SEND=1, NOJIT=1,
# ONLY (trigger kinds whose name starts with it), ENTER_ONLY (lapsed,p_alive), PGBIN, KEEP=1, WORK.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
MEMBERS=${MEMBERS:-1000000}
STORES=${STORES:-10}
ROWS=${ROWS:-10000000}
TZNAME=${TZNAME:-Europe/Oslo}
REPEATS=${REPEATS:-5}
# Kinds whose ticks stop after the entry statement: their first tick also checks the exits of,
# and moves, every member who entered (hundreds of thousands), which takes minutes here.
ENTER_ONLY=${ENTER_ONLY-lapsed,p_alive}
LIVE_DAYS=${LIVE_DAYS:-30}
N=${N:-20000}
CONCURRENCY=${CONCURRENCY:-16}
ROUNDS=${ROUNDS:-3}
REUSE=
if [ -n "${WORK:-}" ] && [ -d "$WORK/pg" ]; then REUSE=1; KEEP=1; else WORK=$(mktemp -d /tmp/regulars-bench-flows.XXXXXX); fi
chmod 755 "$WORK"
export LC_NUMERIC=C

. "$ROOT/scripts/bench-lib.sh"

cleanup() {
	set +e
	if [ -f "$WORK/pg/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1
	fi
	if [ "${KEEP:-}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL at $PGBIN" >&2; exit 1; }

log "building regulars, gencsv, benchflows and benchsend"
(cd "$ROOT" && go build -o "$WORK/regulars" ./cmd/regulars && go build -o "$WORK/gencsv" ./cmd/gencsv &&
	go build -o "$WORK/benchflows" ./cmd/benchflows && go build -o "$WORK/benchsend" ./cmd/benchsend)

mkdir -p "$WORK/pg" "$WORK/sock"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK/pg" "$WORK/sock"
if [ -z "$REUSE" ]; then
	as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
fi
PGPORT=$(free_port)
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/sock/postgres.log" -w -o \
	"-p $PGPORT -k $WORK/sock -c listen_addresses=127.0.0.1" start >/dev/null
PSQL=("$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
URL="postgres://postgres@127.0.0.1:$PGPORT/bench?sslmode=disable"
REGULARS=(env REGULARS_DATABASE_URL="$URL" REGULARS_DATA_DIR="$WORK/data" REGULARS_LOG_LEVEL=warn REGULARS_TIMEZONE="$TZNAME" "$WORK/regulars")
# A kept data set gets the migrations the tree has gained since it was loaded.
[ -n "$REUSE" ] && "${REGULARS[@]}" migrate >/dev/null
timed() { # label cmd...: wall seconds into times.txt, output into label.out
	local label=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$@" >"$WORK/$label.out" 2>&1 || { cat "$WORK/$label.out" >&2; exit 1; }
	t1=$EPOCHREALTIME
	awk -v l="$label" -v a="$t0" -v b="$t1" 'BEGIN { printf "%-16s %8.2f s\n", l, b - a }' | tee -a "$WORK/times.txt" >&2
}

if [ -z "$REUSE" ]; then
	TO=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	log "writing $MEMBERS members and $ROWS transactions with gencsv, ending at $TO"
	"$WORK/gencsv" -members "$MEMBERS" -stores "$STORES" -format members | "$WORK/benchflows" shift -to "$TO" >"$WORK/members.csv"
	"$WORK/gencsv" -members "$MEMBERS" -stores "$STORES" -rows "$ROWS" -format retail | "$WORK/benchflows" shift -to "$TO" >"$WORK/txns.csv"
	"${PSQL[@]}" -d postgres -c "CREATE DATABASE bench"
	"${REGULARS[@]}" migrate >/dev/null
	"${PSQL[@]}" -d bench -c "INSERT INTO stores (code, name, timezone, currency)
		SELECT format('store-%s', to_char(i, 'FM00')), format('Store %s', i), '$TZNAME', 'NOK' FROM generate_series(1, $STORES) i"
	"${PSQL[@]}" -d postgres -c CHECKPOINT
	# The history was imported when the tills went live, LIVE_DAYS days ago: the import stamps
	# received_at with the column's default, set to that time for the load (prepare then marks
	# the sales since then live, received when they occurred).
	IMPORTED_AT=$(date -u -d "$TO - $LIVE_DAYS days" +%Y-%m-%dT%H:%M:%SZ)
	"${PSQL[@]}" -d bench -c "ALTER TABLE transactions ALTER COLUMN received_at SET DEFAULT '$IMPORTED_AT'"
	timed import-members "${REGULARS[@]}" import members "$WORK/members.csv"
	timed import-txns "${REGULARS[@]}" import transactions "$WORK/txns.csv"
	"${PSQL[@]}" -d bench -c "ALTER TABLE transactions ALTER COLUMN received_at SET DEFAULT now()"
	rm -f "$WORK/txns.csv" "$WORK/members.csv"
	"${PSQL[@]}" -d bench -c "VACUUM ANALYZE"
	if [ "${METRICS:-1}" = 1 ]; then
		timed metrics-run "${REGULARS[@]}" metrics run --as-of "$(TZ=$TZNAME date +%F)"
	fi
	timed prepare "$WORK/benchflows" prepare -url "$URL" -live-since "$IMPORTED_AT"
	cat "$WORK/prepare.out" >&2
	"${PSQL[@]}" -d postgres -c CHECKPOINT
fi

if [ "${SKIP_TRIGGERS:-}" != 1 ]; then
	log "trigger detection: engine entry statement vs hand-written query, $REPEATS repeats per kind (load $(cut -d' ' -f1-3 /proc/loadavg))"
	"$WORK/benchflows" triggers -url "$URL" -tz "$TZNAME" -repeats "$REPEATS" -explain "$WORK/explain" ${ONLY:+-only "$ONLY"} \
		-enter-only "$ENTER_ONLY" |
		tee "$WORK/triggers.out"
	log "EXPLAIN (ANALYZE, BUFFERS) of each kind in $WORK/explain"
	log "event triggers catching up a day of events (the engine stopped for a day)"
	"$WORK/benchflows" triggers -url "$URL" -tz "$TZNAME" -repeats "$REPEATS" -window 24h \
		-only joined,first_purchase,purchase_count,tier_changed | tee "$WORK/triggers-24h.out"
fi

if [ "${SKIP_FIX:-}" != 1 ]; then
	# The proposed fixes of the lapsed triggers (docs/benchmarks.md): an index that gives each
	# member's last sale from the index alone, and the median gap between purchase days read
	# from a table made once (in the product: a member_metrics column the metrics run fills).
	log "lapsed triggers with the proposed index and precomputed median gaps"
	"$WORK/benchflows" triggers -url "$URL" -tz "$TZNAME" -repeats "${FIX_REPEATS:-$REPEATS}" -explain "$WORK/explain-fix" \
		-only lapsed -hand-only "lapsed personal" -enter-only "$ENTER_ONLY" \
		-setup "CREATE INDEX transactions_member_last_sale ON transactions (member_id, occurred_at DESC, id DESC)
		        WHERE kind = 'sale' AND member_id IS NOT NULL; MEDIAN_GAP; VACUUM ANALYZE transactions; ANALYZE bench_median_gap" \
		-teardown "DROP INDEX transactions_member_last_sale; DROP TABLE bench_median_gap" | tee "$WORK/triggers-fix.out"
fi
if [ "${NOJIT:-}" = 1 ]; then
	log "lapsed 60 and p_alive_below with jit off for every statement, engine's and hand-written"
	"$WORK/benchflows" triggers -url "$URL" -tz "$TZNAME" -repeats "$REPEATS" -set jit=off -only "lapsed 60,p_alive" | tee "$WORK/triggers-nojit.out"
fi

if [ "${SKIP_SEND:-}" != 1 ]; then
	log "throughput: $N flow mails vs $N campaign mails through regulars serve, $ROUNDS rounds each, alternated (load $(cut -d' ' -f1-3 /proc/loadavg))"
	"$WORK/benchsend" -database-url "postgres://postgres@127.0.0.1:$PGPORT/send?sslmode=disable" -regulars "$WORK/regulars" \
		-flow -rounds "$ROUNDS" -n "$N" -concurrency "$CONCURRENCY" -work "$WORK" | tee "$WORK/send.out"
fi
log "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $("$PGBIN/postgres" --version), $(go version | cut -d' ' -f3), load $(cut -d' ' -f1-3 /proc/loadavg)"
