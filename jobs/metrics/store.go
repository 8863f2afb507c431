package metrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Writing member_metrics (docs/benchmarks.md, "The nightly job at 1M"). Every run changes every
// member's row (run_id, as_of and updated_at always; t_days and days_since_last_purchase grow by
// a day for everyone who ever bought), so writing only the rows that changed would still write
// them all. Updating a million rows in place cost 20–36 s at 1M members: a new version of every
// row, three index entries each (run_id changes, so no update is HOT), 700 MB of WAL, and a
// million dead rows for autovacuum afterwards. Instead the run builds the new snapshot in a new
// table and swaps it in, in its own transaction: a bulk insert into a table without indexes, the
// indexes built once by sorting, the foreign keys checked by one join each, then the old table
// dropped and the new one renamed. A crash or an error anywhere rolls all of it back, so the
// previous snapshot stays readable until the commit, and readers see one snapshot or the other.
//
// The new table is a copy of member_metrics' definition as it is in the database (columns,
// defaults, NOT NULL and CHECK constraints, storage, indexes, foreign keys, storage parameters
// and grants, each under the name it had), so the migrations stay the one home of the schema;
// storeMemberMetrics refuses to run over what it cannot carry (triggers, rules, row security).

// memberMetricsNext is the table the run fills; it exists only inside the run's transaction.
const memberMetricsNext = "member_metrics_next"

// swapLockAttempts and swapLockTimeout bound how long each attempt at the swap's locks waits
// behind a reader of member_metrics (new readers queue behind a waiting ACCESS EXCLUSIVE
// request, so a long wait would stall them all); after the attempts the run waits for as long
// as it takes. swapLockPause is the pause between attempts, when readers go ahead.
const (
	swapLockAttempts = 10
	swapLockTimeout  = 500 * time.Millisecond
	swapLockPause    = time.Second
)

// memberMetricsColumns are the columns a run writes, in the order of memberRowsSQL.
const memberMetricsColumns = `member_id, run_id, as_of, days_since_last_purchase, orders_365d,
    spend_365d, frequency, recency_days, t_days, monetary_value, p_alive, expected_purchases,
    expected_spend, clv_predicted, recency_score, frequency_score, monetary_score, rfm_segment,
    median_gap_days, updated_at`

// memberRowsSQL writes this run's figures for every member into member_metrics_next: the
// member summary, its group's predictions and the RFM scores. $1 is the run id, $2 A's date.
// A member without a transaction before A has NULL figures and 0 for the trailing year.
var memberRowsSQL = `
INSERT INTO ` + memberMetricsNext + ` (` + memberMetricsColumns + `)
SELECT m.id, $1, $2::date, $2::date - s.last_day, coalesce(s.orders_365d, 0), coalesce(s.spend_365d, 0),
       s.frequency, s.recency_days, s.t_days, s.monetary_minor, g.p_alive, g.expected_purchases,
       sp.expected_spend * ` + strconv.Itoa(minorPerMajor) + `,
       g.clv_per_spend * sp.expected_spend * ` + strconv.Itoa(minorPerMajor) + `,
       q.recency_score, q.frequency_score, q.monetary_score, q.rfm_segment, s.median_gap, now()
FROM members m
LEFT JOIN metrics_summary s ON s.member_id = m.id
LEFT JOIN metrics_group_predictions g
       ON g.frequency = s.frequency AND g.recency_days = s.recency_days AND g.t_days = s.t_days
LEFT JOIN metrics_spend_predictions sp ON sp.frequency = s.frequency AND sp.m_major = s.m_major
LEFT JOIN metrics_rfm q ON q.member_id = m.id
-- In member order: the flow engine reads the table a slice of member ids a tick, a twentieth of
-- its pages in this order, half of them in the join's order.
ORDER BY m.id`

// writeMemberMetrics creates member_metrics_next and writes into it this run's figures for
// every member (memberRowsSQL), once: the segment statement reads its per-member model figures
// from there (metrics.go), and storeMemberMetrics then swaps it in. The model step's
// predictions and the RFM scores must be in place. The rows are this run's for every member,
// also on a back-filled run, so that its segments average its own figures; storeMemberMetrics
// puts back the newer rows afterwards. One write of a million rows where there were two (a
// temporary table of the member figures, then its copy here): docs/benchmarks.md, "Session 6".
func writeMemberMetrics(ctx context.Context, tx pgx.Tx, runID int64, date string) error {
	if _, err := tx.Exec(ctx, `CREATE TABLE `+memberMetricsNext+` (LIKE member_metrics
	    INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS
	    INCLUDING GENERATED INCLUDING IDENTITY INCLUDING STATISTICS)`); err != nil {
		return fmt.Errorf("create %s: %w", memberMetricsNext, err)
	}
	// Hash joins of a million members to ~560,000 groups: in memory at 64 MB, in batches on
	// disk at the default 4 MB.
	if err := withSettings(ctx, tx, map[string]string{"work_mem": sortMemory}, func() error {
		_, err := tx.Exec(ctx, memberRowsSQL, runID, date)
		return err
	}); err != nil {
		return fmt.Errorf("write member metrics: %w", err)
	}
	// For the segment statement's join now, and for readers as soon as the run commits.
	return analyze(ctx, tx, memberMetricsNext)
}

// storeMemberMetrics swaps member_metrics_next (writeMemberMetrics) in for member_metrics,
// except that a member whose row comes from a run with a later as-of date keeps that row (a
// back-filled run does not overwrite newer figures). $1 is A's date. It must be the run's last
// write before the commit: from the swap on, the run holds an ACCESS EXCLUSIVE lock on
// member_metrics and blocks writes to the tables it references.
func storeMemberMetrics(ctx context.Context, tx pgx.Tx, date string) error {
	def, err := readTableDef(ctx, tx, "member_metrics")
	if err != nil {
		return err
	}
	// A row's as_of is its run's, so the run filter finds the newer rows through
	// member_metrics_run. The runs first: on a nightly run there is none, and the planner, sure
	// that no row has a later as_of, would read the whole table to find none (0.5 s at 1M).
	const newer = `FROM member_metrics o
	    WHERE o.run_id IN (SELECT id FROM metric_runs WHERE as_of > $1::date) AND o.as_of > $1::date`
	var backFilled bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM metric_runs r
	    WHERE r.as_of > $1::date AND EXISTS (SELECT 1 FROM member_metrics o WHERE o.run_id = r.id))`, date).Scan(&backFilled); err != nil {
		return fmt.Errorf("find newer member metrics: %w", err)
	}
	if backFilled {
		for _, s := range []struct{ what, sql string }{
			{"drop this run's rows of members with newer ones", `DELETE FROM ` + memberMetricsNext + ` n
			    WHERE n.member_id IN (SELECT o.member_id ` + newer + `)`},
			{"keep newer member metrics", `INSERT INTO ` + memberMetricsNext + ` (` + memberMetricsColumns + `)
			    SELECT ` + memberMetricsColumns + ` ` + newer},
		} {
			if _, err := tx.Exec(ctx, s.sql, date); err != nil {
				return fmt.Errorf("%s: %w", s.what, err)
			}
		}
		if err := analyze(ctx, tx, memberMetricsNext); err != nil {
			return err
		}
	}
	if err := def.build(ctx, tx, memberMetricsNext); err != nil {
		return err
	}
	if err := lockForSwap(ctx, tx, def.referenced); err != nil {
		return err
	}
	return def.swap(ctx, tx, memberMetricsNext)
}

// tableDef is what storeMemberMetrics carries from a table to its replacement beyond what
// CREATE TABLE … (LIKE …) copies.
type tableDef struct {
	table      string
	indexes    []indexDef
	foreignKey []namedDef // constraint name, pg_get_constraintdef
	options    []string   // reloptions, "name=value"
	grants     []grant
	referenced []string // tables the foreign keys reference, quoted
}

type indexDef struct {
	name       string // the index's name
	constraint string // its PRIMARY KEY or UNIQUE constraint, "" for a plain index
	kind       string // "PRIMARY KEY" or "UNIQUE" with constraint
	def        string // pg_get_indexdef
}

type namedDef struct{ name, def string }

type grant struct{ privilege, grantee string }

// readTableDef reads table's indexes, foreign keys, storage parameters and grants from the
// catalogue, and fails on what the swap would silently lose.
func readTableDef(ctx context.Context, tx pgx.Tx, table string) (tableDef, error) {
	d := tableDef{table: table}
	var triggers, rules int
	var rowSecurity bool
	var options []string
	err := tx.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM pg_trigger WHERE tgrelid = c.oid AND NOT tgisinternal),
		       (SELECT count(*) FROM pg_rewrite WHERE ev_class = c.oid),
		       c.relrowsecurity, coalesce(c.reloptions, '{}')
		FROM pg_class c WHERE c.oid = $1::regclass`, table).Scan(&triggers, &rules, &rowSecurity, &options)
	if err != nil {
		return d, fmt.Errorf("read %s definition: %w", table, err)
	}
	if triggers > 0 || rules > 0 || rowSecurity {
		return d, fmt.Errorf("%s has triggers, rules or row security, which the metrics run cannot carry to the new snapshot", table)
	}
	d.options = options
	rows, err := tx.Query(ctx, `
		SELECT i.indexrelid::regclass::text, coalesce(c.conname, ''),
		       CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' ELSE '' END,
		       pg_get_indexdef(i.indexrelid)
		FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
		WHERE i.indrelid = $1::regclass ORDER BY 1`, table)
	if err != nil {
		return d, fmt.Errorf("read %s indexes: %w", table, err)
	}
	if d.indexes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (indexDef, error) {
		var x indexDef
		err := r.Scan(&x.name, &x.constraint, &x.kind, &x.def)
		return x, err
	}); err != nil {
		return d, fmt.Errorf("read %s indexes: %w", table, err)
	}
	for _, x := range d.indexes {
		if x.constraint != "" && x.kind == "" {
			return d, fmt.Errorf("%s: index %s backs a constraint the metrics run cannot carry", table, x.name)
		}
	}
	rows, err = tx.Query(ctx, `
		SELECT conname, pg_get_constraintdef(oid), confrelid::regclass::text
		FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f' ORDER BY 1`, table)
	if err != nil {
		return d, fmt.Errorf("read %s foreign keys: %w", table, err)
	}
	for rows.Next() {
		var fk namedDef
		var ref string
		if err := rows.Scan(&fk.name, &fk.def, &ref); err != nil {
			return d, fmt.Errorf("read %s foreign keys: %w", table, err)
		}
		d.foreignKey = append(d.foreignKey, fk)
		if !slices.Contains(d.referenced, ref) {
			d.referenced = append(d.referenced, ref)
		}
	}
	if err := rows.Err(); err != nil {
		return d, fmt.Errorf("read %s foreign keys: %w", table, err)
	}
	rows, err = tx.Query(ctx, `
		SELECT a.privilege_type, CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END
		FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
		WHERE c.oid = $1::regclass AND a.grantee <> c.relowner ORDER BY 2, 1`, table)
	if err != nil {
		return d, fmt.Errorf("read %s grants: %w", table, err)
	}
	if d.grants, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (grant, error) {
		var g grant
		err := r.Scan(&g.privilege, &g.grantee)
		return g, err
	}); err != nil {
		return d, fmt.Errorf("read %s grants: %w", table, err)
	}
	return d, nil
}

// tempName is the name an index or constraint of the new table has until the swap gives it the
// old one's (index names are unique per schema, so the two tables cannot share them).
func tempName(name string) string { return "next_" + name }

// build gives next d's storage parameters, grants and indexes (built after the rows are in, one
// sort each). The foreign keys are added by swap, under its locks.
func (d tableDef) build(ctx context.Context, tx pgx.Tx, next string) error {
	var stmts []string
	if len(d.options) > 0 {
		stmts = append(stmts, `ALTER TABLE `+next+` SET (`+strings.Join(d.options, ", ")+`)`)
	}
	for _, g := range d.grants {
		stmts = append(stmts, `GRANT `+g.privilege+` ON `+next+` TO `+g.grantee)
	}
	for _, x := range d.indexes {
		// pg_get_indexdef gives "CREATE [UNIQUE] INDEX name ON table USING method (…) …".
		using := strings.Index(x.def, " USING ")
		unique := strings.HasPrefix(x.def, "CREATE UNIQUE INDEX ")
		if using < 0 || (!unique && !strings.HasPrefix(x.def, "CREATE INDEX ")) {
			return fmt.Errorf("%s: cannot read the definition of index %s: %q", d.table, x.name, x.def)
		}
		create := "CREATE INDEX "
		if unique {
			create = "CREATE UNIQUE INDEX "
		}
		stmts = append(stmts, create+pgx.Identifier{tempName(x.name)}.Sanitize()+" ON "+next+x.def[using:])
		if x.kind != "" {
			stmts = append(stmts, `ALTER TABLE `+next+` ADD CONSTRAINT `+pgx.Identifier{tempName(x.constraint)}.Sanitize()+
				` `+x.kind+` USING INDEX `+pgx.Identifier{tempName(x.name)}.Sanitize())
		}
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("build %s: %s: %w", next, s, err)
		}
	}
	return nil
}

// swap adds next's foreign keys (each checked by one join), drops d's table and gives next its
// name and the names of its indexes and constraints. The caller holds the locks (lockForSwap).
func (d tableDef) swap(ctx context.Context, tx pgx.Tx, next string) error {
	var stmts []string
	for _, fk := range d.foreignKey {
		stmts = append(stmts, `ALTER TABLE `+next+` ADD CONSTRAINT `+pgx.Identifier{tempName(fk.name)}.Sanitize()+` `+fk.def)
	}
	stmts = append(stmts, `DROP TABLE `+d.table, `ALTER TABLE `+next+` RENAME TO `+d.table)
	for _, x := range d.indexes {
		if x.kind != "" {
			// Renaming a PRIMARY KEY or UNIQUE constraint renames its index too.
			stmts = append(stmts, `ALTER TABLE `+d.table+` RENAME CONSTRAINT `+pgx.Identifier{tempName(x.constraint)}.Sanitize()+
				` TO `+pgx.Identifier{x.constraint}.Sanitize())
			if x.constraint == x.name {
				continue
			}
		}
		stmts = append(stmts, `ALTER INDEX `+pgx.Identifier{tempName(x.name)}.Sanitize()+` RENAME TO `+pgx.Identifier{x.name}.Sanitize())
	}
	for _, fk := range d.foreignKey {
		stmts = append(stmts, `ALTER TABLE `+d.table+` RENAME CONSTRAINT `+pgx.Identifier{tempName(fk.name)}.Sanitize()+
			` TO `+pgx.Identifier{fk.name}.Sanitize())
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("swap in the new member_metrics: %s: %w", s, err)
		}
	}
	return nil
}

// lockForSwap takes, in this order, ACCESS EXCLUSIVE on member_metrics (the drop; it waits for
// readers in flight) and SHARE ROW EXCLUSIVE on the tables its foreign keys reference (what
// adding a foreign key takes; it blocks their writers, not their readers). The order is the one
// a transaction deleting a member takes (member_metrics, then members), so the two cannot
// deadlock. Each attempt waits at most swapLockTimeout; the last waits as long as it takes.
func lockForSwap(ctx context.Context, tx pgx.Tx, referenced []string) error {
	locks := []string{`LOCK TABLE member_metrics IN ACCESS EXCLUSIVE MODE`}
	if len(referenced) > 0 {
		locks = append(locks, `LOCK TABLE `+strings.Join(referenced, ", ")+` IN SHARE ROW EXCLUSIVE MODE`)
	}
	take := func(tx pgx.Tx) error {
		for _, l := range locks {
			if _, err := tx.Exec(ctx, l); err != nil {
				return err
			}
		}
		return nil
	}
	for attempt := 1; attempt < swapLockAttempts; attempt++ {
		// A savepoint, so that a timeout undoes only this attempt.
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			return withSettings(ctx, sp, map[string]string{"lock_timeout": fmt.Sprintf("%dms", swapLockTimeout.Milliseconds())},
				func() error { return take(sp) })
		})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55P03" { // 55P03: lock_not_available
			if err != nil {
				return fmt.Errorf("lock member_metrics for the swap: %w", err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(swapLockPause):
		}
	}
	if err := take(tx); err != nil {
		return fmt.Errorf("lock member_metrics for the swap: %w", err)
	}
	return nil
}
