# bench-lib.sh: helpers the bench-*.sh scripts share; sourced, not run.

log() { printf '%s  %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# as_pg runs a command as the postgres user when we are root (initdb refuses root).
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# CPU seconds used so far by a process, with its reaped children (the postmaster's exited
# backends land there), and by the postmaster's ($PG_PID) live backends.
TICK=$(getconf CLK_TCK)
proc_cpu() { awk -v t="$TICK" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12+$13+$14+$15)/t }' "/proc/$1/stat"; }
pg_cpu() {
	local total pid
	total=$(proc_cpu "$PG_PID")
	for pid in $(ps -o pid= --ppid "$PG_PID"); do
		total=$(awk -v a="$total" -v b="$(proc_cpu "$pid" 2>/dev/null || echo 0)" 'BEGIN { print a + b }')
	done
	echo "$total"
}

# build_rev REV OUT: builds cmd/regulars as it is at git revision REV (not the working tree)
# into $WORK/OUT.
build_rev() {
	mkdir "$WORK/src-$2"
	git -C "$ROOT" archive "$1" | tar -x -C "$WORK/src-$2"
	(cd "$WORK/src-$2" && go build -trimpath -o "$WORK/$2" ./cmd/regulars) # -trimpath: the build cache serves the next run
	rm -rf "$WORK/src-$2"
}
