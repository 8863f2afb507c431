#!/usr/bin/env bash
# bench-send.sh: the campaign sending figures of issue 4 (docs/benchmarks.md, "Campaign
# sending"): N mails to a loopback SMTP sink through `regulars serve` (dispatcher and sender, the
# real binary), beside a bare go-mail loop with the same number of connections to the same sink
# in the same run, and the server's peak RSS.
#
#   sudo scripts/bench-send.sh                  # 100,000 mails each way over 4 connections
#   sudo N=10000 scripts/bench-send.sh          # a quick smaller run
#
# It starts a private PostgreSQL 15 cluster under /tmp (as user postgres when run as root; fsync
# and synchronous_commit on, every other setting at its default), builds ./cmd/regulars and
# ./cmd/benchsend, and runs benchsend, which: starts the sink (go-smtp, reads and discards every
# message, counts them per envelope recipient); sends N mails with the bare loop; migrates an
# empty database, inserts N mailable members, starts `regulars serve` with
# REGULARS_SEND_CONCURRENCY=$CONCURRENCY and REGULARS_SEND_RATE=0, creates a segment and a
# campaign through the API and schedules it 1.5 s ahead, waits for the N mails, reads the
# server's VmHWM; then runs the bare loop again. Everything it starts is stopped on exit.
#
# Knobs (environment): N (100000), CONCURRENCY (4), PGBIN (/usr/lib/postgresql/15/bin), KEEP=1
# to keep the work directory (the server's log), PPROF=127.0.0.1:6060 to let the server serve
# pprof during the run (e.g. go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=20),
# PGSS=1 (any value) to preload pg_stat_statements (with track_planning) and print the top statements of the
# server's run, BASELINE_REV=<git revision> to also measure a server built from that revision in
# the same run (bare loop, baseline, working tree, bare loop; each server on a fresh database),
# REV=<git revision> to measure a server built from that revision instead of the working tree,
# BARE_LEAN=1 (any value) for a bare loop without go-mail's NOOP before and RSET after each mail,
# as the server's sender has done since 705ae91 (the default keeps go-mail's defaults, the
# ceiling of the figures before that).
# PostgreSQL's CPU from the schedule to the run's end is printed per mail.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
N=${N:-100000}
CONCURRENCY=${CONCURRENCY:-4}
WORK=$(mktemp -d /tmp/regulars-bench-send.XXXXXX)
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

[ -x "$PGBIN/initdb" ] || { echo "no PostgreSQL at $PGBIN (apt-get install postgresql-15, or set PGBIN)" >&2; exit 1; }
case "$N$CONCURRENCY" in *[!0-9]*) echo "N and CONCURRENCY must be positive integers" >&2; exit 1 ;; esac

log "building regulars and benchsend"
(cd "$ROOT" && go build -o "$WORK/benchsend" ./cmd/benchsend)
if [ -n "${REV:-}" ]; then
	log "building regulars at $REV ($(git -C "$ROOT" rev-parse --short "$REV"))"
	build_rev "$REV" regulars
else
	(cd "$ROOT" && go build -o "$WORK/regulars" ./cmd/regulars)
fi
if [ -n "${BASELINE_REV:-}" ]; then
	log "building regulars at $BASELINE_REV ($(git -C "$ROOT" rev-parse --short "$BASELINE_REV"), the baseline)"
	build_rev "$BASELINE_REV" regulars-baseline
fi

mkdir -p "$WORK/pg" "$WORK/sock"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK/pg" "$WORK/sock"
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
PGPORT=$(free_port)
PGOPTS="-p $PGPORT -k $WORK/sock -c listen_addresses=127.0.0.1"
[ -n "${PGSS:-}" ] && PGOPTS="$PGOPTS -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on"
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/sock/postgres.log" -w -o "$PGOPTS" start >/dev/null
PG_PID=$(head -1 "$WORK/pg/postmaster.pid")
"$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -qAt -c "CREATE DATABASE bench" >/dev/null
URL="postgres://postgres@127.0.0.1:$PGPORT/bench?sslmode=disable"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
PG_CPU0=$(pg_cpu)
log "sending $N mails each way over $CONCURRENCY connections (load before: $LOAD_BEFORE)"
"$WORK/benchsend" -database-url "$URL" -regulars "$WORK/regulars" -n "$N" -concurrency "$CONCURRENCY" \
	-work "$WORK" ${BARE_LEAN:+-bare-lean} ${BASELINE_REV:+-baseline "$WORK/regulars-baseline"} -pg-pid "$PG_PID" ${PGSS:+-pgss} ${PPROF:+-pprof "$PPROF"} | tee "$WORK/result.txt"
PG_CPU1=$(pg_cpu)
log "PostgreSQL CPU during the run: $(awk -v a="$PG_CPU0" -v b="$PG_CPU1" 'BEGIN { printf "%.1f s", b - a }')"
log "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $("$PGBIN/postgres" --version), $(go version | cut -d' ' -f3)"
