#!/usr/bin/env bash
# bench-metrics.sh: the figures of issue 5 (docs/benchmarks.md, "Segment metrics at scale"): the
# whole metrics job, each segment family against one hand-written SQL query computing customers,
# repeat_purchase_rate and aov for the same family in the same run, the BG/NBD fit alone, and
# the peak RSS.
#
#   sudo scripts/bench-metrics.sh                      # 1,000,000 members, 10,000,000 transactions
#   sudo MEMBERS=100000 ROWS=1000000 scripts/bench-metrics.sh   # a quick smaller run
#
# It starts a private PostgreSQL 15 cluster under /tmp (as user postgres when run as root; fsync
# on, every other setting at its default), builds ./cmd/regulars, ./cmd/gencsv and
# ./cmd/benchmetrics, writes MEMBERS members over STORES stores (gencsv -format members) and ROWS
# transactions over 2024-2025 (gencsv -format retail: 25% anonymous, ~2% refunds), loads them
# with `regulars import members` and `regulars import transactions` (timed), runs ANALYZE, then:
#   1. `regulars metrics run --as-of $AS_OF` under /usr/bin/time: the whole job, wall and peak RSS;
#   2. cmd/benchmetrics: per family, interleaved ROUNDS times, the hand-written query then
#      metrics.Compute with Options.Families set to that family alone (each statement of the job
#      timed by a pgx tracer), an empty family (the job's fixed cost), and the BG/NBD fit alone;
#   3. EXPLAIN (ANALYZE, BUFFERS) of each hand-written query, saved in the work directory.
# Everything it starts is stopped on exit; the work directory is removed unless KEEP=1.
#
# Issue 16 (docs/benchmarks.md, "Catalogue"): LINES=1 also writes a catalogue (gencsv -format
# products: PRODUCTS products in 40 categories, 10% without a cost) and every transaction's
# receipt lines (gencsv -format retail -lines: ~2.5 a sale, amounts the sums of their lines),
# loaded with `regulars import products` and \copy plus one INSERT joining the transactions by
# (store, txn_id). CATALOGUE=1 then runs cmd/benchcatalogue: a segment count with one
# bought_category rule beside a hand-written query of the same set, ROUNDS interleaved rounds,
# with EXPLAINs, and in the same rounds GET /metrics/revenue's statement for REVENUE_FROM to
# REVENUE_TO (2025-01-01 to 2026-01-01) beside a plain GROUP BY of the same rows, and the metrics
# run's per-member aggregation of lines (units, margins) beside that of transactions;
# CATEGORIES (all,store:store-01,bought) adds GET /metrics/categories for those segment keys
# ("bought": a saved segment with the CATEGORY rule) beside a plain GROUP BY category of the same
# lines, each statement and its EXPLAIN cut at LIMIT (5m; the server's own limit is 30 s);
# CATEGORIES= (empty) leaves it out. SKIP_FAMILIES=1 skips the per-family comparison (step 2).
#
#   sudo LINES=1 CATALOGUE=1 SKIP_FAMILIES=1 KEEP=1 scripts/bench-metrics.sh
#
# Knobs (environment): MEMBERS (1000000), STORES (10), ROWS (10000000), ROUNDS (2),
# AS_OF (2026-01-01), TZNAME (Europe/Oslo), PGBIN (/usr/lib/postgresql/15/bin), KEEP=1,
# WORK (an existing work directory of a KEEP=1 run: reuse its cluster and data, skip the load),
# SKIP_RUN=1 (skip step 1, e.g. when reusing a run that measured it), LINES=1, PRODUCTS (5000),
# CATALOGUE=1, CATEGORY ("Category 01"), REVENUE_FROM, REVENUE_TO, CATEGORIES, LIMIT, SKIP_FAMILIES=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
MEMBERS=${MEMBERS:-1000000}
STORES=${STORES:-10}
ROWS=${ROWS:-10000000}
ROUNDS=${ROUNDS:-2}
AS_OF=${AS_OF:-2026-01-01}
TZNAME=${TZNAME:-Europe/Oslo}
REUSE=
if [ -n "${WORK:-}" ] && [ -d "$WORK/pg" ]; then REUSE=1; KEEP=1; else WORK=$(mktemp -d /tmp/regulars-bench-metrics.XXXXXX); fi
chmod 755 "$WORK"
export LC_NUMERIC=C

. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

cleanup() {
	set +e
	if [ -f "$WORK/pg/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1
	fi
	if [ "${KEEP:-}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL at $PGBIN" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

log "building regulars, gencsv and benchmetrics"
(cd "$ROOT" && go build -o "$WORK/regulars" ./cmd/regulars && go build -o "$WORK/gencsv" ./cmd/gencsv &&
	go build -o "$WORK/benchmetrics" ./cmd/benchmetrics && go build -o "$WORK/benchcatalogue" ./cmd/benchcatalogue)

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
timed() { # label cmd...: wall seconds and peak RSS into times.txt, output into label.out
	local label=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	/usr/bin/time -f '%M %U %S' -o "$WORK/$label.time" "$@" >"$WORK/$label.out" 2>&1 || { cat "$WORK/$label.out" >&2; exit 1; }
	t1=$EPOCHREALTIME
	read -r rss u s <"$WORK/$label.time"
	awk -v l="$label" -v a="$t0" -v b="$t1" -v r="$rss" -v u="$u" -v s="$s" \
		'BEGIN { printf "%-14s %8.2f s  peak RSS %5.0f MB  CPU %.2f s\n", l, b - a, r / 1024, u + s }' | tee -a "$WORK/times.txt" >&2
}

if [ -z "$REUSE" ]; then
	log "writing $MEMBERS members and $ROWS transactions with gencsv"
	"$WORK/gencsv" -members "$MEMBERS" -stores "$STORES" -format members >"$WORK/members.csv"
	if [ "${LINES:-}" = 1 ]; then
		"$WORK/gencsv" -format products -products "${PRODUCTS:-5000}" >"$WORK/products.csv"
		"$WORK/gencsv" -members "$MEMBERS" -stores "$STORES" -rows "$ROWS" -products "${PRODUCTS:-5000}" \
			-format retail -lines "$WORK/lines.csv" >"$WORK/txns.csv"
	else
		"$WORK/gencsv" -members "$MEMBERS" -stores "$STORES" -rows "$ROWS" -format retail >"$WORK/txns.csv"
	fi
	"${PSQL[@]}" -d postgres -c "CREATE DATABASE bench"
	"${REGULARS[@]}" migrate >/dev/null
	"${PSQL[@]}" -d bench -c "INSERT INTO stores (code, name, timezone, currency)
		SELECT format('store-%s', to_char(i, 'FM00')), format('Store %s', i), '$TZNAME', 'NOK' FROM generate_series(1, $STORES) i"
	"${PSQL[@]}" -d postgres -c CHECKPOINT
	timed import-members "${REGULARS[@]}" import members "$WORK/members.csv"
	timed import-txns "${REGULARS[@]}" import transactions "$WORK/txns.csv"
	if [ "${LINES:-}" = 1 ]; then
		timed import-products "${REGULARS[@]}" import products "$WORK/products.csv"
		[ "$(id -u)" = 0 ] && chmod 644 "$WORK/lines.csv"
		timed load-lines "${PSQL[@]}" -d bench -c "CREATE UNLOGGED TABLE lines_staging (store text, txn_id text, line int, sku text, qty int, unit_price_minor bigint)" \
			-c "\\copy lines_staging FROM '$WORK/lines.csv' WITH (FORMAT csv, HEADER true)" \
			-c "INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor, member_id, occurred_at, kind)
				SELECT t.id, l.line, l.sku, l.qty, l.unit_price_minor, t.member_id, t.occurred_at, t.kind
				FROM lines_staging l JOIN stores s ON s.code = l.store JOIN transactions t ON t.store_id = s.id AND t.txn_id = l.txn_id" \
			-c "DROP TABLE lines_staging"
	fi
	rm -f "$WORK/txns.csv" "$WORK/members.csv" "$WORK/products.csv" "$WORK/lines.csv"
	"${PSQL[@]}" -d bench -c "VACUUM ANALYZE" -c CHECKPOINT
fi
"${PSQL[@]}" -d bench -c "SELECT 'members ' || (SELECT count(*) FROM members) || ', transactions ' || count(*) ||
	' (' || count(*) FILTER (WHERE member_id IS NOT NULL) || ' with a member, ' || count(*) FILTER (WHERE kind = 'refund') ||
	' refunds), ' || pg_size_pretty(pg_total_relation_size('transactions')) ||
	', receipt lines ' || (SELECT count(*) FROM transaction_items) || ' (' || pg_size_pretty(pg_total_relation_size('transaction_items')) ||
	'), products ' || (SELECT count(*) FROM products) FROM transactions" | tee -a "$WORK/times.txt" >&2

if [ "${SKIP_RUN:-}" != 1 ]; then
	log "the whole job: regulars metrics run --as-of $AS_OF"
	timed metrics-run "${REGULARS[@]}" metrics run --as-of "$AS_OF"
	head -1 "$WORK/metrics-run.out" >&2
fi

mkdir -p "$WORK/explain"
if [ "${SKIP_FAMILIES:-}" != 1 ]; then
	log "per family: hand-written query vs Compute with that family alone ($ROUNDS rounds), and the fit alone"
	/usr/bin/time -f '%M' -o "$WORK/benchmetrics.time" "$WORK/benchmetrics" -url "$URL" -as-of "$AS_OF" -tz "$TZNAME" \
		-rounds "$ROUNDS" -explain "$WORK/explain" | tee "$WORK/benchmetrics.out"
	echo "benchmetrics peak RSS $(awk '{ printf "%.0f MB", $1 / 1024 }' "$WORK/benchmetrics.time")"
fi
if [ "${CATALOGUE:-}" = 1 ]; then
	log "segment count with one bought_category rule vs a hand-written query ($ROUNDS rounds)"
	"$WORK/benchcatalogue" -url "$URL" -as-of "$AS_OF" -tz "$TZNAME" -category "${CATEGORY:-Category 01}" \
		-rounds "$ROUNDS" -explain "$WORK/explain" -lines \
		-revenue-from "${REVENUE_FROM:-2025-01-01}" -revenue-to "${REVENUE_TO:-2026-01-01}" \
		-categories "${CATEGORIES-all,store:store-01,bought}" -limit "${LIMIT:-5m}" | tee "$WORK/benchcatalogue.out"
fi
echo
echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $("${PSQL[@]}" -d bench -c "SELECT 'PostgreSQL ' || current_setting('server_version') || ', shared_buffers=' || current_setting('shared_buffers') || ', work_mem=' || current_setting('work_mem')")"
cat "$WORK/times.txt"
