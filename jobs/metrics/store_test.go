package metrics_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/jobs/metrics"
)

// runsOfMemberMetrics returns member_metrics as member id → the run that wrote the row, and
// fails the test on a member with more than one row.
func runsOfMemberMetrics(t *testing.T, s *shop) map[int64]int64 {
	t.Helper()
	rows, err := s.db.Pool.Query(context.Background(), `SELECT member_id, run_id FROM member_metrics`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var m, run int64
		if err := rows.Scan(&m, &run); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[m]; dup {
			t.Errorf("member %d has more than one member_metrics row", m)
		}
		out[m] = run
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMemberMetricsOneRowPerMember: after each run member_metrics holds exactly one row per
// member, the run's own, with nothing left for a member removed between runs; an erased member
// keeps its row (its purchases still count); a member who joined since gets one; and a
// back-filled run replaces only the rows no newer run wrote.
func TestMemberMetricsOneRowPerMember(t *testing.T) {
	s := newShop(t, "oslo-1")
	ctx := context.Background()
	loc := oslo(t)
	buyer := s.member("oslo-1", "2025-01-01T12:00:00+01:00", "active")
	s.txn(buyer, "sale", "2025-06-10T12:00:00+02:00", 1000)
	s.txn(buyer, "sale", "2026-02-10T12:00:00+01:00", 1000)
	never := s.member("oslo-1", "2025-01-01T12:00:00+01:00", "active")
	erased := s.member("", "2025-01-01T12:00:00+01:00", "active")
	s.txn(erased, "sale", "2025-09-01T12:00:00+02:00", 4000)
	var pending int64
	if err := s.db.Pool.QueryRow(ctx, `
		INSERT INTO members (card, name, status, source, joined_at)
		VALUES ('7000000099999', 'P', 'pending', 'web', '2025-01-01T12:00:00Z') RETURNING id`).Scan(&pending); err != nil {
		t.Fatal(err)
	}

	run1, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: loc})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64]int64{buyer: run1, never: run1, erased: run1, pending: run1}
	if got := runsOfMemberMetrics(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the first run: member → run %v, want %v", got, want)
	}
	var daysBefore int
	if err := s.db.Pool.QueryRow(ctx, `SELECT days_since_last_purchase FROM member_metrics WHERE member_id = $1`, buyer).Scan(&daysBefore); err != nil {
		t.Fatal(err)
	}

	// Between runs: the pending sign-up is purged (its row with it), one member is erased, one joins.
	if n, err := s.db.PurgeUnconfirmed(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want 1 member purged", n, err)
	}
	if err := s.db.EraseMember(ctx, erased); err != nil {
		t.Fatal(err)
	}
	joined := s.member("oslo-1", "2026-03-01T12:00:00+01:00", "active")

	next := asOf.AddDate(0, 0, 1)
	run2, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: next, Timezone: loc})
	if err != nil {
		t.Fatal(err)
	}
	want = map[int64]int64{buyer: run2, never: run2, erased: run2, joined: run2}
	if got := runsOfMemberMetrics(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("after the second run: member → run %v, want %v", got, want)
	}
	var daysAfter int
	if err := s.db.Pool.QueryRow(ctx, `SELECT days_since_last_purchase FROM member_metrics WHERE member_id = $1`, buyer).Scan(&daysAfter); err != nil {
		t.Fatal(err)
	}
	if daysAfter != daysBefore+1 {
		t.Errorf("days_since_last_purchase %d the day after %d, want it one more", daysAfter, daysBefore)
	}

	// A back-filled run writes only the member no newer run has a row for.
	late := s.member("oslo-1", "2024-03-01T12:00:00+01:00", "active")
	run3, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf.AddDate(0, 0, -7), Timezone: loc})
	if err != nil {
		t.Fatal(err)
	}
	want[late] = run3
	if got := runsOfMemberMetrics(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("after a back-filled run: member → run %v, want %v", got, want)
	}
}

// tableDescription is what readers and migrations see of a table: columns, constraints,
// indexes, storage parameters and grants, by name.
func tableDescription(t *testing.T, s *shop, table string) []string {
	t.Helper()
	rows, err := s.db.Pool.Query(context.Background(), `
		SELECT 'column ' || a.attnum || ' ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
		       CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END ||
		       coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
		UNION ALL
		SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass
		UNION ALL
		SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = $1::regclass
		UNION ALL
		SELECT 'options ' || coalesce(reloptions::text, '') || ' acl ' || coalesce(relacl::text, '') ||
		       ' persistence ' || relpersistence::text
		FROM pg_class WHERE oid = $1::regclass
		UNION ALL
		SELECT 'referenced by ' || conrelid::regclass::text || ' ' || conname FROM pg_constraint WHERE confrelid = $1::regclass
		ORDER BY 1`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		out = append(out, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMemberMetricsKeepsItsDefinition: the run replaces member_metrics by a new table (store.go);
// the new one must be the migrations' table, every column, constraint, index, storage
// parameter and grant under its old name, so that readers and later migrations cannot tell.
func TestMemberMetricsKeepsItsDefinition(t *testing.T) {
	s := example(t)
	ctx := context.Background()
	// A storage parameter and a grant, as an operator might have set them.
	if _, err := s.db.Pool.Exec(ctx, `ALTER TABLE member_metrics SET (fillfactor = 90); GRANT SELECT ON member_metrics TO PUBLIC`); err != nil {
		t.Fatal(err)
	}
	before := tableDescription(t, s, "member_metrics")
	for _, want := range []string{"PRIMARY KEY (member_id)", "member_metrics_run", "member_metrics_rfm_segment",
		"FOREIGN KEY (run_id) REFERENCES metric_runs(id) ON DELETE CASCADE", "fillfactor=90", "=r/"} {
		if !strings.Contains(strings.Join(before, "\n"), want) {
			t.Fatalf("the migrated member_metrics lacks %q (the test no longer checks what it should):\n%s", want, strings.Join(before, "\n"))
		}
	}
	for i := range 2 {
		if _, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf.AddDate(0, 0, i), Timezone: oslo(t)}); err != nil {
			t.Fatal(err)
		}
		if after := tableDescription(t, s, "member_metrics"); !reflect.DeepEqual(after, before) {
			t.Errorf("run %d: member_metrics is now\n%s\nwant\n%s", i+1, strings.Join(after, "\n"), strings.Join(before, "\n"))
		}
	}
	var next *string
	if err := s.db.Pool.QueryRow(ctx, `SELECT to_regclass('member_metrics_next')::text`).Scan(&next); err != nil || next != nil {
		t.Errorf("member_metrics_next = %v, %v; want no such table after a run", next, err)
	}
}

// TestRunWaitingForAReaderKeepsThePreviousSnapshot: a reader in the middle of reading
// member_metrics holds the run at its swap, reads on undisturbed, and a run stopped there
// (cancelled, as a crash would) leaves the previous snapshot whole and nothing else behind.
func TestRunWaitingForAReaderKeepsThePreviousSnapshot(t *testing.T) {
	s := example(t)
	ctx := context.Background()
	loc := oslo(t)
	run1, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf, Timezone: loc})
	if err != nil {
		t.Fatal(err)
	}
	want := runsOfMemberMetrics(t, s)

	reader, err := s.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reader.Rollback(ctx) }()
	readRuns := func() (rows, ofRun1 int) {
		t.Helper()
		if err := reader.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE run_id = $1) FROM member_metrics`, run1).
			Scan(&rows, &ofRun1); err != nil {
			t.Fatal(err)
		}
		return rows, ofRun1
	}
	readRuns() // the reader now holds its lock on member_metrics until it ends

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := metrics.Compute(runCtx, s.db, metrics.Options{AsOf: asOf.AddDate(0, 0, 1), Timezone: loc})
		done <- err
	}()
	// Wait until the run asks for member_metrics (it retries, so it is seen waiting at some point).
	for waiting := false; !waiting; {
		select {
		case err := <-done:
			t.Fatalf("the run ended (%v) while a reader held member_metrics", err)
		case <-time.After(20 * time.Millisecond):
		}
		if err := s.db.Pool.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'member_metrics'::regclass AND NOT granted)`).
			Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if rows, ofRun1 := readRuns(); rows != len(want) || ofRun1 != len(want) {
		t.Errorf("the reader, mid-swap, reads %d rows of which %d from run %d; want %d, all of them",
			rows, ofRun1, run1, len(want))
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("cancelled run: no error")
	}
	if err := reader.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// The cancelled run's session may take a moment to end; until then its transaction holds
	// the run lock, and nothing of it is visible.
	for free := false; !free; time.Sleep(20 * time.Millisecond) {
		if err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, metrics.LockKey).Scan(&free)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if got := runsOfMemberMetrics(t, s); !reflect.DeepEqual(got, want) {
		t.Errorf("after the cancelled run: member → run %v, want the first run's %v", got, want)
	}
	var runs int
	var next *string
	if err := s.db.Pool.QueryRow(ctx, `SELECT count(*), to_regclass('member_metrics_next')::text FROM metric_runs`).Scan(&runs, &next); err != nil {
		t.Fatal(err)
	}
	if runs != 1 || next != nil {
		t.Errorf("after the cancelled run: %d runs, member_metrics_next %v; want the first run only and no such table", runs, next)
	}
	run3, err := metrics.Compute(ctx, s.db, metrics.Options{AsOf: asOf.AddDate(0, 0, 1), Timezone: loc})
	if err != nil {
		t.Fatal(err)
	}
	for m, run := range runsOfMemberMetrics(t, s) {
		if run != run3 {
			t.Errorf("member %d: row of run %d, want %d", m, run, run3)
		}
	}
}
