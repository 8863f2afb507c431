#!/usr/bin/env bash
# bench-import.sh: the bulk import figures of docs/benchmarks-import.part.md, beside their
# ceiling, psql's \copy of the same rows into the same table, measured in the same run.
#
#   sudo scripts/bench-import.sh         # about 2 minutes on 2 cores with the defaults; prints a summary
#
# It starts a private PostgreSQL 15 cluster under /tmp (as user postgres when run as root, with
# fsync and synchronous_commit on and the other settings at their defaults), builds
# ./cmd/regulars and ./cmd/gencsv, writes ROWS transactions twice with gencsv (the import format
# and the table's own columns, the same rows), and then runs ROUNDS interleaved rounds of three
# loads, each into a fresh database (CREATE DATABASE, `regulars migrate`, stores oslo-1, oslo-2,
# bergen-1 and trondheim-1 inserted in that order so their ids 1-4 match the table-format file,
# CHECKPOINT):
#   a. regulars import transactions txns.csv         (a file: the direct path, COPY into the table)
#   b. psql \copy transactions (...) FROM txns-table.csv   (the ceiling)
#   c. cat txns.csv | regulars import transactions -  (a pipe: the staging path)
# After the rounds it imports the same file again into the last round's loaded database (every
# row already present). Each load is timed on the wall clock; the peak RSS and CPU time of the
# importing process come from /usr/bin/time (else VmHWM is polled), the CPU time of PostgreSQL
# from /proc. Everything it starts is stopped on exit. All traffic stays on 127.0.0.1.
#
# Knobs (environment): ROWS (1000000), ROUNDS (3), PGBIN (/usr/lib/postgresql/15/bin),
# KEEP=1 to keep the work directory (the CSVs, the raw times and the server log).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d /tmp/regulars-bench-import.XXXXXX)
export LC_NUMERIC=C # printf and sort read decimal points
chmod 755 "$WORK"

. "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"
group() { sed -E ':a; s/^([0-9]+)([0-9]{3})/\1,\2/; ta' <<<"$1"; } # 1234567 -> 1,234,567

cleanup() {
	set +e
	if [ -f "$WORK/pg/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1
	fi
	if [ "${KEEP:-}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM

[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL at $PGBIN (apt-get install postgresql-15, or set PGBIN)" >&2; exit 1; }
case "$ROWS$ROUNDS" in *[!0-9]*) echo "ROWS and ROUNDS must be positive integers" >&2; exit 1 ;; esac
[ "$ROWS" -gt 0 ] && [ "$ROUNDS" -gt 0 ] || { echo "ROWS and ROUNDS must be positive integers" >&2; exit 1; }
TIMEV=
[ -x /usr/bin/time ] && TIMEV=/usr/bin/time
[ "${NO_TIME_V:-}" = 1 ] && TIMEV= # to try the VmHWM fallback
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

log "building regulars and gencsv"
(cd "$ROOT" && go build -o "$WORK/regulars" ./cmd/regulars && go build -o "$WORK/gencsv" ./cmd/gencsv)

log "writing $ROWS transactions with gencsv (import format and table format)"
"$WORK/gencsv" -rows "$ROWS" -format import >"$WORK/txns.csv"
"$WORK/gencsv" -rows "$ROWS" -format table >"$WORK/txns-table.csv"
mib() { awk -v b="$1" 'BEGIN { printf "%.0f MB", b / 1e6 }'; }
CSV_SIZES="txns.csv $(mib "$(stat -c %s "$WORK/txns.csv")"), txns-table.csv $(mib "$(stat -c %s "$WORK/txns-table.csv")")"

PGPORT=$(free_port)
log "starting PostgreSQL 15 on 127.0.0.1:$PGPORT (fsync=on, default settings)"
mkdir -p "$WORK/pg" "$WORK/sock"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK/pg" "$WORK/sock"
# --locale=C as in the hand-run measurement: text indexes compare bytes.
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/sock/postgres.log" -w -o \
	"-p $PGPORT -k $WORK/sock -c listen_addresses=127.0.0.1" start >/dev/null
PG_PID=$(head -1 "$WORK/pg/postmaster.pid")
PSQL=("$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt)
PG_SETTINGS=$("${PSQL[@]}" -d postgres -c "SELECT 'PostgreSQL ' || current_setting('server_version') ||
	', fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit') ||
	', shared_buffers=' || current_setting('shared_buffers') || ', max_wal_size=' || current_setting('max_wal_size')")
log "$PG_SETTINGS"
url() { echo "postgres://postgres@127.0.0.1:$PGPORT/$1?sslmode=disable"; }

regulars() { REGULARS_DATA_DIR="$WORK/data" REGULARS_LOG_LEVEL=warn "$WORK/regulars" "$@"; }

# The stores of cmd/gencsv, in the order that gives them the ids of its table format.
STORES="INSERT INTO stores (code, name, timezone, currency) VALUES
  ('oslo-1','Oslo','Europe/Oslo','NOK'), ('oslo-2','Oslo 2','Europe/Oslo','NOK'),
  ('bergen-1','Bergen','Europe/Oslo','NOK'), ('trondheim-1','Trondheim','Europe/Oslo','NOK')"
COPY_SQL="\\copy transactions (store_id, txn_id, register, kind, occurred_at, amount_minor, currency,
  member_card, member_email, content_hash) FROM '$WORK/txns-table.csv' WITH (FORMAT csv, HEADER true)"

fresh() { # database: dropped, created, migrated, the four stores inserted, then a checkpoint
	"${PSQL[@]}" -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
	REGULARS_DATABASE_URL=$(url "$1") regulars migrate >/dev/null
	"${PSQL[@]}" -d "$1" -c "$STORES"
	local ids
	ids=$("${PSQL[@]}" -d "$1" -c "SELECT string_agg(id || '=' || code, ' ' ORDER BY id) FROM stores")
	[ "$ids" = "1=oslo-1 2=oslo-2 3=bergen-1 4=trondheim-1" ] || { echo "unexpected store ids: $ids" >&2; exit 1; }
	"${PSQL[@]}" -d postgres -c CHECKPOINT
}

# measure LABEL INPUT CMD...: runs CMD (reading INPUT through cat when INPUT is not empty) and
# appends "LABEL wall_s peak_rss_kb process_cpu_s postgres_cpu_s" to times.txt.
measure() {
	local label=$1 input=$2
	shift 2
	local out="$WORK/$label.out" tf="$WORK/$label.time" t0 t1 pg0 pg1 rss cpu pid hwm v
	pg0=$(pg_cpu)
	t0=$EPOCHREALTIME
	if [ -n "$TIMEV" ]; then
		if [ -n "$input" ]; then
			cat "$input" | "$TIMEV" -f '%M %U %S' -o "$tf" "$@" >"$out" || { cat "$out" "$tf" >&2; exit 1; }
		else
			"$TIMEV" -f '%M %U %S' -o "$tf" "$@" >"$out" || { cat "$out" "$tf" >&2; exit 1; }
		fi
	else # no /usr/bin/time: poll the peak RSS (VmHWM) and CPU time of the process until it exits
		if [ -n "$input" ]; then cat "$input" | "$@" >"$out" & else "$@" >"$out" & fi
		pid=$! hwm=0 cpu=0
		while kill -0 "$pid" 2>/dev/null; do
			v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
			[ -n "$v" ] && hwm=$v
			v=$(proc_cpu "$pid" 2>/dev/null || true)
			[ -n "$v" ] && cpu=$v
			sleep 0.05
		done
		wait "$pid" || { cat "$out" >&2; exit 1; }
	fi
	t1=$EPOCHREALTIME
	sleep 0.5 # let the postmaster reap the backend, so that its CPU time is counted
	pg1=$(pg_cpu)
	if [ -n "$TIMEV" ]; then
		read -r rss u s <"$tf"
		cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
	else
		rss=$hwm
	fi
	awk -v l="$label" -v a="$t0" -v b="$t1" -v r="$rss" -v c="$cpu" -v p0="$pg0" -v p1="$pg1" \
		'BEGIN { printf "%s %.3f %s %s %.2f\n", l, b - a, r, c, p1 - p0 }' >>"$WORK/times.txt"
}

check_rows() { # label database [present]: the import said so and the table holds exactly ROWS rows
	local got want
	if [ "${1%%-*}" != copy ]; then # the import's own line: "imported N rows (N new, 0 already present) ..."
		want="($(group "$ROWS") new, 0 already present)"
		[ "${3:-}" = present ] && want="(0 new, $(group "$ROWS") already present)"
		grep -qF "$want" "$WORK/$1.out" || { echo "$1: expected $want, got: $(cat "$WORK/$1.out")" >&2; exit 1; }
	fi
	got=$("${PSQL[@]}" -d "$2" -c "SELECT count(*) || ' ' || pg_total_relation_size('transactions') FROM transactions")
	[ "${got%% *}" = "$ROWS" ] || { echo "$1: $2 holds ${got%% *} transactions, not $ROWS" >&2; exit 1; }
	echo "$1 $got" >>"$WORK/rows.txt"
}

: >"$WORK/times.txt"
: >"$WORK/rows.txt"
: >"$WORK/loadavg.txt"
for round in $(seq "$ROUNDS"); do
	log "round $round/$ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	echo "$round $(cut -d' ' -f1-3 /proc/loadavg)" >>"$WORK/loadavg.txt"

	fresh bench_file
	measure "file-$round" "" env REGULARS_DATABASE_URL="$(url bench_file)" REGULARS_DATA_DIR="$WORK/data" \
		REGULARS_LOG_LEVEL=warn "$WORK/regulars" import transactions "$WORK/txns.csv"
	check_rows "file-$round" bench_file
	log "    import (file)  $(awk -v l="file-$round" '$1 == l { print $2 " s" }' "$WORK/times.txt")"

	fresh bench_copy
	measure "copy-$round" "" "${PSQL[@]}" -d bench_copy -c "$COPY_SQL"
	check_rows "copy-$round" bench_copy
	log "    psql \\copy     $(awk -v l="copy-$round" '$1 == l { print $2 " s" }' "$WORK/times.txt")"

	fresh bench_pipe
	measure "pipe-$round" "$WORK/txns.csv" env REGULARS_DATABASE_URL="$(url bench_pipe)" REGULARS_DATA_DIR="$WORK/data" \
		REGULARS_LOG_LEVEL=warn "$WORK/regulars" import transactions -
	check_rows "pipe-$round" bench_pipe
	log "    import (pipe)  $(awk -v l="pipe-$round" '$1 == l { print $2 " s" }' "$WORK/times.txt")"
done

log "re-import of the same file into the loaded database of round $ROUNDS"
"${PSQL[@]}" -d postgres -c CHECKPOINT
measure reimport "" env REGULARS_DATABASE_URL="$(url bench_file)" REGULARS_DATA_DIR="$WORK/data" \
	REGULARS_LOG_LEVEL=warn "$WORK/regulars" import transactions "$WORK/txns.csv"
check_rows reimport bench_file present
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Summary. times.txt: label wall_s rss_kb process_cpu_s postgres_cpu_s.
col() { awk -v p="$1-" -v c="$2" 'index($1, p) == 1 { print $c }' "$WORK/times.txt"; } # kind column: one value per round
best() { sort -g | head -1; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { awk -v n="$ROWS" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", a * 100 / b }'; }
for k in file copy pipe; do
	declare "BEST_$k=$(col "$k" 2 | best)" "MED_$k=$(col "$k" 2 | median)"
done
RE_T=$(awk '$1 == "reimport" { print $2 }' "$WORK/times.txt")
met() { if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= 0.6 * b) }'; then echo met; else echo MISSED; fi; }
kb_mb() { awk -v k="$1" 'BEGIN { printf "%.0f MB", k / 1024 }'; }
{
	echo
	echo "== regulars import benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
	echo "   $PG_SETTINGS"
	echo "   $(group "$ROWS") rows, 4 stores, no members; $CSV_SIZES; $ROUNDS round(s), a fresh database per load"
	echo "   load average (1, 5, 15 min): before $LOAD_BEFORE, after $LOAD_AFTER"
	echo
	echo "seconds per round:"
	printf '  %-6s %14s %12s %14s   %s\n' round "import (file)" "psql \\copy" "import (pipe)" "load average at start"
	for round in $(seq "$ROUNDS"); do
		printf '  %-6s %14s %12s %14s   %s\n' "$round" \
			"$(awk -v l="file-$round" '$1 == l { printf "%.2f", $2 }' "$WORK/times.txt")" \
			"$(awk -v l="copy-$round" '$1 == l { printf "%.2f", $2 }' "$WORK/times.txt")" \
			"$(awk -v l="pipe-$round" '$1 == l { printf "%.2f", $2 }' "$WORK/times.txt")" \
			"$(awk -v r="$round" '$1 == r { print $2, $3, $4 }' "$WORK/loadavg.txt")"
	done
	echo
	printf '  %-46s %9s %12s %9s %12s %8s %8s\n' load "best s" "best rows/s" "median s" "median rows/s" "best %" "median %"
	for k in copy file pipe; do
		b=BEST_$k m=MED_$k
		case $k in
			copy) name="psql \\copy" ;;
			file) name="regulars import transactions txns.csv" ;;
			pipe) name="cat txns.csv | regulars import transactions -" ;;
		esac
		printf '  %-46s %9.2f %12s %9.2f %12s %7s%% %7s%%\n' "$name" "${!b}" "$(group "$(rate "${!b}")")" \
			"${!m}" "$(group "$(rate "${!m}")")" "$(pct "$(rate "${!b}")" "$(rate "$BEST_copy")")" \
			"$(pct "$(rate "${!m}")" "$(rate "$MED_copy")")"
	done
	printf '  %-46s %9.2f %12s   (once; every row already present)\n' "re-import of txns.csv" "$RE_T" "$(group "$(rate "$RE_T")")"
	echo
	echo "target: import >= 60% of the \\copy rate"
	echo "  file (direct path):  best $(met "$(rate "$BEST_file")" "$(rate "$BEST_copy")"), median $(met "$(rate "$MED_file")" "$(rate "$MED_copy")")"
	echo "  pipe (staging path): best $(met "$(rate "$BEST_pipe")" "$(rate "$BEST_copy")"), median $(met "$(rate "$MED_pipe")" "$(rate "$MED_copy")")"
	echo
	echo "peak RSS of the importing process ($([ -n "$TIMEV" ] && echo '/usr/bin/time %M' || echo 'VmHWM, polled every 50 ms')), max over rounds:"
	echo "  file $(kb_mb "$(col file 3 | sort -g | tail -1)"), pipe $(kb_mb "$(col pipe 3 | sort -g | tail -1)"), re-import $(kb_mb "$(awk '$1 == "reimport" { print $3 }' "$WORK/times.txt")")"
	echo "CPU seconds per load, median over rounds (importing process or psql / PostgreSQL backends and workers):"
	for k in file copy pipe; do
		printf '  %-10s %6.2f / %6.2f\n' "$k:" "$(col "$k" 4 | median)" "$(col "$k" 5 | median)"
	done
	awk '$1 == "reimport" { printf "  %-10s %6.2f / %6.2f\n", "re-import:", $4, $5 }' "$WORK/times.txt"
	echo "rows and size of transactions (table + indexes) after each load:"
	awk '{ printf "%-10s %s rows, %.0f MB\n", $1, $2, $3 / 1048576 }' "$WORK/rows.txt" | paste -d'|' - - - | sed 's/^/  /; s/|/   /g'
} | tee "$WORK/summary.txt"
