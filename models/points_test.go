package models_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// pointsFixture is a store, a register, a program (1 point a visit from 50.00, 1 point per
// 10 NOK) and a member.
type pointsFixture struct {
	db   *models.DB
	till *models.Principal
	card string
	id   int64
}

func newPointsFixture(t *testing.T, program string) *pointsFixture {
	t.Helper()
	db, p := fixture(t)
	ctx := context.Background()
	if program != "" {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO reward_program (points_per_visit, points_per_major_unit, min_amount, expire_after_days) VALUES `+program); err != nil {
			t.Fatal(err)
		}
	}
	f := &pointsFixture{db: db, till: p, card: models.WithCheckDigit("200000000001")}
	m, err := db.CreateMember(ctx, p, models.MemberInput{Card: f.card, Name: "Kari", MarketingConsent: new(bool)}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	f.id = m.ID
	return f
}

const stampAndPoints = `(1, 0.1, 5000, 365)`

// input is a transaction as the till posts it.
func input(t *testing.T, format string, args ...any) models.TransactionInput {
	t.Helper()
	var in models.TransactionInput
	if err := json.Unmarshal([]byte(fmt.Sprintf(format, args...)), &in); err != nil {
		t.Fatal(err)
	}
	return in
}

func (f *pointsFixture) sale(t *testing.T, id string, amount int64) *models.Transaction {
	t.Helper()
	tx, _, err := f.db.RecordTransaction(context.Background(), f.till, input(t,
		`{"id": %q, "store": "oslo-1", "kind": "sale", "occurred_at": "2026-11-02T10:00:00Z", "amount": %d, "currency": "NOK", "member": {"card": %q}}`,
		id, amount, f.card))
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func (f *pointsFixture) refund(t *testing.T, id, of string, amount int64) *models.Transaction {
	t.Helper()
	tx, _, err := f.db.RecordTransaction(context.Background(), f.till, input(t,
		`{"id": %q, "store": "oslo-1", "kind": "refund", "occurred_at": "2026-11-03T10:00:00Z", "amount": %d, "currency": "NOK", "refunds": %q}`,
		id, amount, of))
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func (f *pointsFixture) balance(t *testing.T) (balance, entries int) {
	t.Helper()
	if err := f.db.Pool.QueryRow(context.Background(),
		`SELECT coalesce(sum(points), 0), count(*) FROM points_ledger WHERE member_id = $1`, f.id).Scan(&balance, &entries); err != nil {
		t.Fatal(err)
	}
	return balance, entries
}

func TestSalesEarnInTheirOwnCommitAndReplaysNothing(t *testing.T) {
	f := newPointsFixture(t, stampAndPoints)
	// 129.50 NOK: a visit (≥ 50.00) and ⌊0.1 × 129.5⌋ = 12.
	if got := f.sale(t, "R-1", 12950).PointsEarned; got != 13 {
		t.Errorf("points_earned %d, want 13", got)
	}
	// 45.00: not a visit; ⌊4.5⌋ = 4.
	if got := f.sale(t, "R-2", 4500).PointsEarned; got != 4 {
		t.Errorf("points_earned %d, want 4", got)
	}
	// A replay answers with what the sale earned and credits nothing.
	tx, outcome, err := f.db.RecordTransaction(context.Background(), f.till, input(t,
		`{"id": "R-1", "store": "oslo-1", "kind": "sale", "occurred_at": "2026-11-02T10:00:00Z", "amount": 12950, "currency": "NOK", "member": {"card": %q}}`, f.card))
	if err != nil || outcome != models.Replayed || tx.PointsEarned != 13 {
		t.Errorf("replay: %v %v %+v", outcome, err, tx)
	}
	// A batch re-uploaded (an offline till syncing twice) credits nothing again.
	batch := []models.TransactionInput{
		input(t, `{"id": "R-1", "store": "oslo-1", "kind": "sale", "occurred_at": "2026-11-02T10:00:00Z", "amount": 12950, "currency": "NOK", "member": {"card": %q}}`, f.card),
		input(t, `{"id": "R-3", "store": "oslo-1", "kind": "sale", "occurred_at": "2026-11-02T11:00:00Z", "amount": 10000, "currency": "NOK", "member": {"card": %q}}`, f.card),
	}
	for range 2 {
		if _, err := f.db.RecordTransactions(context.Background(), f.till, batch); err != nil {
			t.Fatal(err)
		}
	}
	if b, n := f.balance(t); b != 13+4+11 || n != 3 {
		t.Errorf("balance %d in %d entries, want 28 in 3", b, n)
	}
}

func TestConcurrentDuplicatesCreditOnce(t *testing.T) {
	f := newPointsFixture(t, stampAndPoints)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, _, err := f.db.RecordTransaction(context.Background(), f.till, input(t,
				`{"id": "R-9", "store": "oslo-1", "kind": "sale", "occurred_at": "2026-11-02T10:00:00Z", "amount": 10000, "currency": "NOK", "member": {"card": %q}}`, f.card))
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if b, n := f.balance(t); b != 11 || n != 1 {
		t.Errorf("balance %d in %d entries after 16 concurrent posts of one sale, want 11 in 1", b, n)
	}
}

func TestRefundsDebitNeverMoreThanTheSaleEarned(t *testing.T) {
	f := newPointsFixture(t, stampAndPoints)
	f.sale(t, "R-1", 20000) // 1 + 20 = 21
	// 50.00 back: ⌊5⌋ = 5, the sale is not wholly refunded: the visit stays.
	if got := f.refund(t, "RF-1", "R-1", 5000).PointsEarned; got != -5 {
		t.Errorf("partial refund: %d, want -5", got)
	}
	// Two refunds in one batch bring the total to the whole sale: the last one takes the visit.
	res, err := f.db.RecordTransactions(context.Background(), f.till, []models.TransactionInput{
		input(t, `{"id": "RF-2", "store": "oslo-1", "kind": "refund", "occurred_at": "2026-11-03T10:00:00Z", "amount": 10000, "currency": "NOK", "refunds": "R-1"}`),
		input(t, `{"id": "RF-3", "store": "oslo-1", "kind": "refund", "occurred_at": "2026-11-03T10:00:00Z", "amount": 5000, "currency": "NOK", "refunds": "R-1"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := res[0].Transaction.PointsEarned, res[1].Transaction.PointsEarned; a != -10 || b != -6 {
		t.Errorf("batch refunds %d and %d, want -10 and -6 (the visit with the last)", a, b)
	}
	if bal, _ := f.balance(t); bal != 0 {
		t.Errorf("balance %d after refunding the whole sale, want 0", bal)
	}
	// Refunding more than was bought debits nothing more.
	if got := f.refund(t, "RF-4", "R-1", 9000).PointsEarned; got != 0 {
		t.Errorf("refund beyond the sale: %d, want 0", got)
	}
	// A refund may leave a negative balance, which later earnings fill: a sale earned with no
	// program cannot be debited, but a refund naming no sale debits its own amount's points.
	tx, _, err := f.db.RecordTransaction(context.Background(), f.till, input(t,
		`{"id": "RF-5", "store": "oslo-1", "kind": "refund", "occurred_at": "2026-11-03T10:00:00Z", "amount": 3000, "currency": "NOK", "member": {"card": %q}}`, f.card))
	if err != nil {
		t.Fatal(err)
	}
	if got := tx.PointsEarned; got != -3 {
		t.Errorf("refund of no known sale: %d, want -3", got)
	}
	if bal, _ := f.balance(t); bal != -3 {
		t.Errorf("balance %d, want -3", bal)
	}
}

func TestConcurrentRefundsOfOneSaleStayWithinWhatItEarned(t *testing.T) {
	f := newPointsFixture(t, stampAndPoints)
	f.sale(t, "R-1", 10000) // 1 + 10 = 11
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			// Each 100.00: each alone would debit 11.
			_, _, err := f.db.RecordTransaction(context.Background(), f.till, input(t,
				`{"id": "RF-%d", "store": "oslo-1", "kind": "refund", "occurred_at": "2026-11-03T10:00:00Z", "amount": 10000, "currency": "NOK", "refunds": "R-1"}`, i))
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if bal, n := f.balance(t); bal != 0 || n != 2 {
		t.Errorf("balance %d in %d entries after 8 concurrent whole refunds, want 0 in 2", bal, n)
	}
}

func TestLinkedLaterSalesEarnAtLinking(t *testing.T) {
	f := newPointsFixture(t, stampAndPoints)
	ctx := context.Background()
	card := models.WithCheckDigit("200000000002")
	if _, _, err := f.db.RecordTransaction(ctx, f.till, input(t,
		`{"id": "P-1", "store": "oslo-1", "kind": "sale", "occurred_at": "2026-11-02T10:00:00Z", "amount": 10000, "currency": "NOK", "member": {"card": %q}}`, card)); err != nil {
		t.Fatal(err)
	}
	m, err := f.db.CreateMember(ctx, f.till, models.MemberInput{Card: card, Name: "Ola", MarketingConsent: new(bool)}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	var points int
	if err := f.db.Pool.QueryRow(ctx, `SELECT coalesce(sum(points), 0) FROM points_ledger WHERE member_id = $1`, m.ID).Scan(&points); err != nil {
		t.Fatal(err)
	}
	if points != 11 {
		t.Errorf("%d points after the pre-printed card's sale was linked, want 11", points)
	}
	// The sweep finds nothing more to credit.
	if _, err := f.db.LinkUnmatched(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, f.db, `SELECT count(*) FROM points_ledger WHERE member_id = $1`, m.ID); n != 1 {
		t.Errorf("%d ledger entries, want 1", n)
	}
}

func TestImportsAndNoProgramEarnNothing(t *testing.T) {
	f := newPointsFixture(t, "")
	if got := f.sale(t, "R-1", 10000).PointsEarned; got != 0 {
		t.Errorf("no program: %d points", got)
	}
	if _, err := f.db.Pool.Exec(context.Background(), `INSERT INTO reward_program (points_per_visit) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	csv := "id,store,register,kind,occurred_at,amount,currency,member_card,member_email\nH-1,oslo-1,,sale,2026-10-01T10:00:00Z,10000,NOK," + f.card + ",\n"
	if _, err := f.db.ImportTransactionsCSV(context.Background(), strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	if bal, n := f.balance(t); bal != 0 || n != 0 {
		t.Errorf("imported history earned %d points in %d entries", bal, n)
	}
}

func TestLedgerIsAppendOnly(t *testing.T) {
	f := newPointsFixture(t, stampAndPoints)
	f.sale(t, "R-1", 10000)
	for _, q := range []string{`UPDATE points_ledger SET points = 1000`, `DELETE FROM points_ledger`} {
		if _, err := f.db.Pool.Exec(context.Background(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// TestPointsPropertyRandomMix replays a random mix of sales, refunds (whole, partial, beyond the
// sale, of unknown sales), replays and re-uploaded batches, in random order, and checks after
// each step that the ledger's sum is what the rule says, computed here independently.
func TestPointsPropertyRandomMix(t *testing.T) {
	f := newPointsFixture(t, stampAndPoints)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	type sale struct {
		id             string
		amount         int64
		earned, debits int64
		refundedAmount int64
	}
	var sales []*sale
	want := int64(0)
	unit := func(amount int64) int64 { return amount / 1000 } // ⌊0.1 × amount/100⌋
	posted := map[string]models.TransactionInput{}
	for step := range 120 {
		var in models.TransactionInput
		switch op := rng.IntN(10); {
		case op < 5 || len(sales) == 0: // a sale
			s := &sale{id: fmt.Sprintf("S-%d", step), amount: int64(100 + rng.IntN(30000))}
			s.earned = unit(s.amount)
			if s.amount >= 5000 {
				s.earned++
			}
			sales = append(sales, s)
			want += s.earned
			in = input(t, `{"id": %q, "store": "oslo-1", "kind": "sale", "occurred_at": "2026-11-02T10:00:00Z", "amount": %d, "currency": "NOK", "member": {"card": %q}}`, s.id, s.amount, f.card)
		case op < 8: // a refund of a sale
			s := sales[rng.IntN(len(sales))]
			amount := int64(100 + rng.IntN(int(s.amount)))
			own := unit(amount)
			if s.refundedAmount < s.amount && s.refundedAmount+amount >= s.amount && s.amount >= 5000 {
				own++
			}
			s.refundedAmount += amount
			d := min(own, max(0, s.earned-s.debits))
			s.debits += d
			want -= d
			in = input(t, `{"id": "F-%d", "store": "oslo-1", "kind": "refund", "occurred_at": "2026-11-03T10:00:00Z", "amount": %d, "currency": "NOK", "refunds": %q}`, step, amount, s.id)
		default: // a replay of something posted
			for _, p := range posted {
				in = p
				break
			}
		}
		posted[in.ID] = in
		if rng.IntN(4) == 0 {
			// Sent in a batch with two earlier ones again, as an offline till re-uploading.
			batch := []models.TransactionInput{in}
			for _, p := range posted {
				if len(batch) == 3 {
					break
				}
				if p.ID != in.ID {
					batch = append(batch, p)
				}
			}
			if _, err := f.db.RecordTransactions(ctx, f.till, batch); err != nil {
				t.Fatal(err)
			}
		} else if _, _, err := f.db.RecordTransaction(ctx, f.till, in); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.balance(t); int64(got) != want {
			t.Fatalf("step %d (%s %s): ledger sum %d, want %d", step, in.Kind, in.ID, got, want)
		}
	}
}

// TestExpiryTakesWhatIsLeftOfTheOldestOnce: the nightly expiry writes off what spending and
// refunds left of expired credits, once, however many replicas run it at the same time.
func TestExpiryTakesWhatIsLeftOfTheOldestOnce(t *testing.T) {
	f := newPointsFixture(t, stampAndPoints)
	ctx := context.Background()
	f.sale(t, "R-1", 10000)          // +11, expires in 365 days
	f.refund(t, "RF-1", "R-1", 5000) // −5
	// A credit that expires later: the program now keeps points for 700 days.
	if _, err := f.db.Pool.Exec(ctx, `UPDATE reward_program SET expire_after_days = 700`); err != nil {
		t.Fatal(err)
	}
	f.sale(t, "R-2", 20000) // +21, expires in 700 days
	if n, err := f.db.ExpirePoints(ctx, time.Now().Add(100*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("nothing has expired yet: %d, %v", n, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	for range 4 {
		wg.Go(func() {
			n, err := f.db.ExpirePoints(ctx, time.Now().Add(400*24*time.Hour))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 6 {
		t.Errorf("4 concurrent runs expired %d points, want 6 (11 earned − 5 refunded)", total)
	}
	if bal, _ := f.balance(t); bal != 21 {
		t.Errorf("balance %d, want the later credit's 21", bal)
	}
	if n, _ := f.db.ExpirePoints(ctx, time.Now().Add(800*24*time.Hour)); n != 21 {
		t.Errorf("the later credit expired %d, want 21", n)
	}
	if bal, _ := f.balance(t); bal != 0 {
		t.Errorf("balance %d after everything expired", bal)
	}
}

// TestSQLAndGoAgree: the SQL rules that have a Go twin give the same answers: the EAN-13 check
// digit, voucher codes, and the minor digits of every currency.
func TestSQLAndGoAgree(t *testing.T) {
	f := newPointsFixture(t, "")
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		first12 := fmt.Sprintf("%012d", rng.Int64N(1_000_000_000_000))
		var got string
		if err := f.db.Pool.QueryRow(ctx, `SELECT ean13($1)`, first12).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := models.WithCheckDigit(first12); got != want {
			t.Fatalf("ean13(%s) = %s, want %s", first12, got, want)
		}
	}
	var code string
	if err := f.db.Pool.QueryRow(ctx, `SELECT new_voucher_code()`).Scan(&code); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(code, "28") || !models.ValidCard(code) {
		t.Errorf("new_voucher_code() = %s, want 28… with a valid check digit", code)
	}
	for _, c := range []struct {
		code   string
		digits int
	}{{"NOK", 2}, {"EUR", 2}, {"JPY", 0}, {"ISK", 0}, {"KRW", 0}, {"KWD", 3}, {"BHD", 3}, {"TND", 3}, {"CLF", 4}} {
		var got int
		if err := f.db.Pool.QueryRow(ctx, `SELECT currency_minor_digits($1)`, c.code).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.digits {
			t.Errorf("currency_minor_digits(%s) = %d, want %d", c.code, got, c.digits)
		}
	}
}
