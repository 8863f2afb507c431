package models_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// holdInserts locks the transactions table against inserts until the returned release is
// called, and waits until n of the server's backends queue on the lock: so many group flushes are
// then in flight, and later posts must wait in db's queue.
func holdInserts(t *testing.T, db *models.DB) (waitFlushes func(n int), release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE transactions IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Rollback(ctx) }) }
	t.Cleanup(release)
	waitFlushes = func(n int) {
		t.Helper()
		for range 2000 {
			if countRows(t, db, `SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'transactions'::regclass`) >= n {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("%d flushes never queued on the lock", n)
	}
	return waitFlushes, release
}

// statementCounter counts INSERT statements into transactions.
func statementCounter(t *testing.T, db *models.DB) func() int {
	t.Helper()
	_, err := db.Pool.Exec(context.Background(), `
		CREATE TABLE test_insert_statements (n int NOT NULL);
		CREATE FUNCTION test_count_insert() RETURNS trigger LANGUAGE plpgsql AS
		  $$BEGIN INSERT INTO test_insert_statements VALUES (1); RETURN NULL; END$$;
		CREATE TRIGGER test_count_insert AFTER INSERT ON transactions FOR EACH STATEMENT EXECUTE FUNCTION test_count_insert();`)
	if err != nil {
		t.Fatal(err)
	}
	return func() int { return countRows(t, db, `SELECT count(*) FROM test_insert_statements`) }
}

type posted struct {
	tx      *models.Transaction
	outcome models.Outcome
	err     error
}

// postAll posts ins concurrently, one goroutine each, and returns once all are queued behind
// the flushes in flight (or answered).
func postAll(t *testing.T, f *pointsFixture, ins []models.TransactionInput, queued int) (wait func() []posted) {
	t.Helper()
	out := make([]posted, len(ins))
	var wg sync.WaitGroup
	for i, in := range ins {
		wg.Go(func() {
			tx, o, err := f.db.RecordTransaction(context.Background(), f.till, in)
			out[i] = posted{tx, o, err}
		})
	}
	for range 2000 {
		if f.db.TillQueued() >= queued {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if n := f.db.TillQueued(); n < queued {
		t.Fatalf("%d queued, want %d", n, queued)
	}
	return func() []posted { wg.Wait(); return out }
}

// busySales are the sales that keep every flush busy behind holdInserts.
func busySales(t *testing.T, f *pointsFixture, amount int64) []models.TransactionInput {
	var ins []models.TransactionInput
	for i := range models.TillMaxFlushes {
		ins = append(ins, memberSale(t, f, fmt.Sprintf("busy-%d", i), amount))
	}
	return ins
}

func memberSale(t *testing.T, f *pointsFixture, id string, amount int64) models.TransactionInput {
	return input(t, `{"id": %q, "store": "oslo-1", "register": "till-%s", "kind": "sale", "occurred_at": "2026-11-02T10:00:00Z",
		"amount": %d, "currency": "NOK", "member": {"card": %q}, "items": [{"sku": "A", "qty": 1, "unit_price": %d}]}`,
		id, id, amount, f.card, amount)
}

// points is what stampAndPoints credits a sale of amount: a visit from 50.00, 1 point per 10 NOK.
func points(amount int64) int {
	p := int(amount / 1000)
	if amount >= 5000 {
		p++
	}
	return p
}

// Sales posted while the flushes are busy go in together, with one statement, and each is
// answered as it would have been alone: 201 with its own points, copies of an id as replays or
// conflicts judged against the stored row.
func TestGroupCommitWritesQueuedSalesWithOneStatement(t *testing.T) {
	f := newPointsFixture(t, stampAndPoints)
	statements := statementCounter(t, f.db)
	// Stored before: G-old's replay is a 200, its other content a 409.
	old := f.sale(t, "G-old", 12000)
	waitFlushes, release := holdInserts(t, f.db)
	busy := postAll(t, f, busySales(t, f, 6000), 0)
	waitFlushes(models.TillMaxFlushes)
	before := statements()

	var ins []models.TransactionInput
	for i := range 20 {
		ins = append(ins, memberSale(t, f, fmt.Sprintf("G-%02d", i), int64(1000*(i+1))))
	}
	ins = append(ins,
		memberSale(t, f, "G-03", 4000), // a copy of G-03 in the same group: one of the two is a replay
		memberSale(t, f, "G-04", 4001), // G-04 with other content: one of the two is a conflict
		input(t, `{"id": "G-old", "store": "oslo-1", "kind": "sale", "occurred_at": "2026-11-02T10:00:00Z", "amount": 12000, "currency": "NOK", "member": {"card": %q}}`, f.card),
		memberSale(t, f, "G-old", 1),
	)
	wait := postAll(t, f, ins, len(ins))
	release()
	got := wait()
	for _, p := range busy() {
		if p.err != nil || p.outcome != models.Created || p.tx.PointsEarned != points(6000) {
			t.Fatalf("busy: %+v", p)
		}
	}
	// The busy flushes and the group (the later copies of G-03, G-04 and G-old are judged
	// against the stored rows).
	if n := statements() - before; n != models.TillMaxFlushes+1 {
		t.Errorf("%d insert statements, want %d", n, models.TillMaxFlushes+1)
	}
	for i := range 20 {
		p := got[i]
		if i == 3 || i == 4 {
			continue
		}
		if p.err != nil || p.outcome != models.Created || p.tx.PointsEarned != points(int64(1000*(i+1))) || p.tx.Member == nil || !p.tx.Member.Matched {
			t.Errorf("G-%02d: outcome %v, err %v, tx %+v, want 201 with %d points", i, p.outcome, p.err, p.tx, points(int64(1000*(i+1))))
		}
	}
	a, b := got[3], got[20]
	if a.outcome == models.Replayed {
		a, b = b, a
	}
	if a.err != nil || b.err != nil || a.outcome != models.Created || b.outcome != models.Replayed || a.tx.PointsEarned != 4 || b.tx.PointsEarned != 4 {
		t.Errorf("G-03 and its copy: %+v, %+v; want a 201 and a replay", a, b)
	}
	a, b = got[4], got[21]
	if a.err != nil {
		a, b = b, a
	}
	if a.err != nil || a.outcome != models.Created || a.tx.PointsEarned != points(a.tx.Amount) || models.ErrorCode(b.err) != models.ECONFLICT {
		t.Errorf("G-04 and its other content: %+v, %+v; want a 201 and a conflict", a, b)
	}
	if p := got[22]; p.err != nil || p.outcome != models.Replayed || p.tx.PointsEarned != old.PointsEarned {
		t.Errorf("G-old's replay: %+v", p)
	}
	if p := got[23]; models.ErrorCode(p.err) != models.ECONFLICT {
		t.Errorf("G-old with other content: %+v", p)
	}
	if n := countRows(t, f.db, `SELECT count(*) FROM transactions WHERE txn_id LIKE 'G-%'`); n != 21 {
		t.Errorf("%d rows, want 21", n)
	}
	if n := countRows(t, f.db, `SELECT count(*) FROM points_ledger l JOIN transactions t ON t.id = l.transaction_id WHERE t.txn_id LIKE 'G-%'`); n != 21 {
		t.Errorf("%d ledger rows, want 21 (one credit a sale)", n)
	}
}

// A row that breaks the group's statement fails alone: the others are written one by one.
func TestGroupCommitBadRowFailsAlone(t *testing.T) {
	f := newPointsFixture(t, stampAndPoints)
	if _, err := f.db.Pool.Exec(context.Background(), `
		CREATE FUNCTION test_refuse_bad() RETURNS trigger LANGUAGE plpgsql AS
		  $$BEGIN IF NEW.txn_id = 'B-bad' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END$$;
		CREATE TRIGGER test_refuse_bad BEFORE INSERT ON transactions FOR EACH ROW EXECUTE FUNCTION test_refuse_bad();`); err != nil {
		t.Fatal(err)
	}
	statements := statementCounter(t, f.db)
	waitFlushes, release := holdInserts(t, f.db)
	busy := postAll(t, f, busySales(t, f, 100), 0)
	waitFlushes(models.TillMaxFlushes)
	ins := []models.TransactionInput{memberSale(t, f, "B-1", 6000), memberSale(t, f, "B-bad", 6000), memberSale(t, f, "B-2", 7000)}
	wait := postAll(t, f, ins, len(ins))
	release()
	got := wait()
	busy()
	if got[1].err == nil || models.ErrorCode(got[1].err) == models.ECONFLICT {
		t.Errorf("B-bad: %+v, want an internal error", got[1])
	}
	for i, want := range map[int]int{0: 7, 2: 8} {
		if p := got[i]; p.err != nil || p.outcome != models.Created || p.tx.PointsEarned != want {
			t.Errorf("%s: %+v, want 201 with %d points", ins[i].ID, p, want)
		}
	}
	if n := countRows(t, f.db, `SELECT count(*) FROM transactions WHERE txn_id LIKE 'B-%'`); n != 2 {
		t.Errorf("%d rows, want 2", n)
	}
	// The busy ones, then B-1 and B-2 alone (the failed group counts nothing).
	if n := statements(); n != models.TillMaxFlushes+2 {
		t.Errorf("%d statements stored rows, want %d", n, models.TillMaxFlushes+2)
	}
}

// A caller whose context ends while it waits in the queue gets its context's error, and its
// sale is not written.
func TestGroupCommitDropsCancelledCallers(t *testing.T) {
	f := newPointsFixture(t, "")
	waitFlushes, release := holdInserts(t, f.db)
	busy := postAll(t, f, busySales(t, f, 100), 0)
	waitFlushes(models.TillMaxFlushes)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := f.db.RecordTransaction(ctx, f.till, memberSale(t, f, "C-gone", 100))
		errc <- err
	}()
	stay := postAll(t, f, []models.TransactionInput{memberSale(t, f, "C-stays", 100)}, 2)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	release()
	busy()
	if p := stay()[0]; p.err != nil || p.outcome != models.Created {
		t.Fatalf("C-stays: %+v", p)
	}
	if n := countRows(t, f.db, `SELECT count(*) FROM transactions WHERE txn_id = 'C-gone'`); n != 0 {
		t.Errorf("the cancelled sale was stored")
	}
}

// Sales and refunds committed in one group, with a replay and a conflict of an id in the same
// group and two refunds of one sale, leave ledger rows that each name a stored transaction of
// their member and kind, one per transaction (more than points_ledger's foreign key checks),
// and the balance is what the sales earned less what the refunds debited.
func TestGroupCommitLedgerNamesStoredTransactions(t *testing.T) {
	f := newPointsFixture(t, stampAndPoints)
	big := f.sale(t, "L-big", 30000) // 31 points: a visit and 30
	small := f.sale(t, "L-small", 6000)
	waitFlushes, release := holdInserts(t, f.db)
	busy := postAll(t, f, busySales(t, f, 6000), 0)
	waitFlushes(models.TillMaxFlushes)
	refund := func(id, of string, amount int64) models.TransactionInput {
		return input(t, `{"id": %q, "store": "oslo-1", "kind": "refund", "occurred_at": "2026-11-03T10:00:00Z", "amount": %d, "currency": "NOK", "refunds": %q}`,
			id, amount, of)
	}
	ins := []models.TransactionInput{
		memberSale(t, f, "L-1", 12000),
		memberSale(t, f, "L-2", 3000),
		memberSale(t, f, "L-1", 12000),  // a replay in the same group
		memberSale(t, f, "L-2", 3001),   // a conflict in the same group
		refund("L-r1", "L-big", 10000),  // 10 points
		refund("L-r2", "L-big", 15000),  // 15 points
		refund("L-r3", "L-small", 6000), // the whole sale: 6 and the visit
		input(t, `{"id": "L-small", "store": "oslo-1", "kind": "sale", "occurred_at": "2026-11-02T10:00:00Z", "amount": 6000, "currency": "NOK", "member": {"card": %q}}`, f.card),
		input(t, `{"id": "L-anon", "store": "oslo-1", "kind": "sale", "occurred_at": "2026-11-02T10:00:00Z", "amount": 9000, "currency": "NOK"}`),
	}
	wait := postAll(t, f, ins, len(ins))
	release()
	got := wait()
	busy()
	for i, p := range got {
		if i <= 3 || i == 7 {
			continue
		}
		if p.err != nil || p.outcome != models.Created {
			t.Errorf("%s: %+v, want 201", ins[i].ID, p)
		}
	}
	if a, b := got[0], got[2]; a.err != nil || b.err != nil || a.outcome == b.outcome {
		t.Errorf("L-1 and its copy: %+v, %+v; want a 201 and a replay", a, b)
	}
	l2, other := got[1], got[3]
	if l2.err != nil {
		l2, other = other, l2
	}
	if l2.err != nil || l2.outcome != models.Created || models.ErrorCode(other.err) != models.ECONFLICT {
		t.Errorf("L-2 and its other content: %+v, %+v; want a 201 and a conflict", got[1], got[3])
	}
	if p := got[7]; p.err != nil || p.outcome != models.Replayed {
		t.Errorf("L-small's replay: %+v", p)
	}
	if n := countRows(t, f.db, `
		SELECT count(*) FROM points_ledger l LEFT JOIN transactions t ON t.id = l.transaction_id
		WHERE l.transaction_id IS NOT NULL
		  AND (t.id IS NULL OR t.member_id IS DISTINCT FROM l.member_id OR (l.kind = 'earned') <> (t.kind = 'sale'))`); n != 0 {
		t.Errorf("%d ledger rows name no stored transaction of their member and kind", n)
	}
	if n := countRows(t, f.db, `SELECT count(*) FROM (SELECT transaction_id FROM points_ledger
		WHERE transaction_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1) x`); n != 0 {
		t.Errorf("%d transactions with more than one ledger row", n)
	}
	// Credits: the two busy sales, L-big, L-small, L-1 and L-2 (one of its two contents);
	// debits: the three refunds.
	want := 2*points(6000) + big.PointsEarned + small.PointsEarned + points(12000) + points(l2.tx.Amount) - 10 - 15 - small.PointsEarned
	if b, entries := f.balance(t); b != want || entries != 9 {
		t.Errorf("balance %d in %d entries, want %d in 9", b, entries, want)
	}
}
