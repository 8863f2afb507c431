package models_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// Receipt lines carry their transaction's member_id, occurred_at and kind
// (migrations/00028_lines_carry_sale.sql), which the bought_* segment fields read instead of
// the transaction. These tests go through every path that writes lines or changes a
// transaction's member, and check after each that every line's copies equal its transaction's.

// wantLinesMatchTransactions fails unless there are lines and every one carries its
// transaction's member_id, occurred_at and kind.
func wantLinesMatchTransactions(t *testing.T, db *models.DB) {
	t.Helper()
	var lines, wrong int
	if err := db.Pool.QueryRow(context.Background(), `
		SELECT count(*), count(*) FILTER (WHERE t.id IS NULL OR i.member_id IS DISTINCT FROM t.member_id
		                                   OR i.occurred_at IS DISTINCT FROM t.occurred_at OR i.kind IS DISTINCT FROM t.kind)
		FROM transaction_items i LEFT JOIN transactions t ON t.id = i.transaction_id`).Scan(&lines, &wrong); err != nil {
		t.Fatal(err)
	}
	if lines == 0 || wrong != 0 {
		t.Fatalf("%d of %d receipt lines do not carry their transaction's member, time and kind", wrong, lines)
	}
}

// wantRefundsKnowTheirSale fails unless every refund naming a sale keeps that sale's row id.
func wantRefundsKnowTheirSale(t *testing.T, db *models.DB) {
	t.Helper()
	if n := countRows(t, db, `
		SELECT count(*) FROM transactions r LEFT JOIN transactions s ON s.store_id = r.store_id AND s.txn_id = r.refunds_txn_id
		WHERE r.refunds_txn_id IS NOT NULL AND r.refunds_id IS DISTINCT FROM s.id`); n != 0 {
		t.Fatalf("%d refunds do not keep the id of the sale they name", n)
	}
}

// lineMember is the member_id the lines of a transaction carry (0 for none), failing unless
// they all carry the same.
func lineMember(t *testing.T, db *models.DB, txnID string) int64 {
	t.Helper()
	var distinct int
	var member *int64
	if err := db.Pool.QueryRow(context.Background(), `
		SELECT count(DISTINCT coalesce(i.member_id, 0)), max(i.member_id)
		FROM transaction_items i JOIN transactions t ON t.id = i.transaction_id WHERE t.txn_id = $1`, txnID).Scan(&distinct, &member); err != nil {
		t.Fatal(err)
	}
	if distinct != 1 {
		t.Fatalf("the lines of %s carry %d different members, want one", txnID, distinct)
	}
	if member == nil {
		return 0
	}
	return *member
}

// tillMember signs up a member with a new card at the till.
func tillMember(t *testing.T, db *models.DB, reg *models.Principal) *models.Member {
	t.Helper()
	no := false
	card, _ := models.NewCardNumber()
	m, err := db.CreateMember(context.Background(), reg, models.MemberInput{Card: card, MarketingConsent: &no}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func withItems(in models.TransactionInput, skus ...string) models.TransactionInput {
	in.Items = nil
	for _, s := range skus {
		in.Items = append(in.Items, models.ItemInput{SKU: s, Qty: models.NewInt(1), UnitPrice: models.NewInt(100)})
	}
	in.Amount = models.NewInt(int64(100 * len(skus)))
	return in
}

func TestLinesCarryTheirSaleOnTheTill(t *testing.T) {
	db, reg := fixture(t)
	ctx := context.Background()
	m := tillMember(t, db, reg)
	// The single insert: a member's sale and an anonymous one.
	one := withItems(sale("S-1", 0), "A", "B")
	one.Member = &models.MemberRef{Card: m.Card}
	if _, _, err := db.RecordTransaction(ctx, reg, one); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.RecordTransaction(ctx, reg, withItems(sale("S-2", 0), "C")); err != nil {
		t.Fatal(err)
	}
	// The batch: a sale of the member, and a refund without a card whose lines follow the sale
	// it names to the member (the refund inherits the sale's member).
	refund := withItems(sale("S-4", 0), "A")
	refund.Kind, refund.Refunds = "refund", "S-1"
	later := withItems(sale("S-3", 0), "D", "E", "F")
	later.Member = &models.MemberRef{Card: m.Card}
	later.OccurredAt = "2026-11-21T09:00:00+01:00"
	res, err := db.RecordTransactions(ctx, reg, []models.TransactionInput{later, refund})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != 201 {
			t.Fatalf("batch: %+v", r)
		}
	}
	wantLinesMatchTransactions(t, db)
	wantRefundsKnowTheirSale(t, db)
	if lineMember(t, db, "S-4") != m.ID || lineMember(t, db, "S-3") != m.ID || lineMember(t, db, "S-2") != 0 {
		t.Fatal("lines carry the wrong members")
	}
	if n := countRows(t, db, `SELECT count(*) FROM transaction_items WHERE kind = 'refund'`); n != 1 {
		t.Fatalf("%d refund lines, want 1", n)
	}
}

func TestLinesFollowTheirSaleToAMemberWhoSignsUpLater(t *testing.T) {
	db, reg := fixture(t)
	ctx := context.Background()
	card, _ := models.NewCardNumber()
	in := withItems(sale("S-1", 0), "A", "B")
	in.Member = &models.MemberRef{Card: card}
	if _, _, err := db.RecordTransaction(ctx, reg, in); err != nil {
		t.Fatal(err)
	}
	refund := withItems(sale("S-2", 0), "A")
	refund.Kind, refund.Refunds = "refund", "S-1"
	if _, _, err := db.RecordTransaction(ctx, reg, refund); err != nil {
		t.Fatal(err)
	}
	if lineMember(t, db, "S-1") != 0 {
		t.Fatal("an unmatched sale's lines carry a member")
	}
	// At the till: the member's creation links the sale and its refund (linkMember).
	no := false
	m, err := db.CreateMember(ctx, reg, models.MemberInput{Card: card, MarketingConsent: &no}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	if m.LinkedTransactions != 2 || lineMember(t, db, "S-1") != m.ID || lineMember(t, db, "S-2") != m.ID {
		t.Fatalf("linked %d; the lines carry %d and %d, want member %d", m.LinkedTransactions,
			lineMember(t, db, "S-1"), lineMember(t, db, "S-2"), m.ID)
	}
	wantLinesMatchTransactions(t, db)

	// On the web: confirming a sign-up links a sale that presented its email (ConfirmMember); a
	// sale after a sign-up is linked to it at once, and purging the sign-up unconfirmed sends
	// the sale back to anonymous (PurgeUnconfirmed).
	web := withItems(sale("S-3", 0), "C")
	web.Member = &models.MemberRef{Email: "late@example.com"}
	if _, _, err := db.RecordTransaction(ctx, reg, web); err != nil {
		t.Fatal(err)
	}
	j := mustJoin(t, db, joinInput("late@example.com"))
	if _, _, err := db.ConfirmMember(ctx, j.MemberID, webEv); err != nil {
		t.Fatal(err)
	}
	if lineMember(t, db, "S-3") != j.MemberID {
		t.Fatalf("the confirmed sign-up's sale's lines carry %d, want %d", lineMember(t, db, "S-3"), j.MemberID)
	}
	pending := mustJoin(t, db, joinInput("pending@example.com"))
	early := withItems(sale("S-6", 0), "C")
	early.Member = &models.MemberRef{Email: "pending@example.com"}
	if _, _, err := db.RecordTransaction(ctx, reg, early); err != nil {
		t.Fatal(err)
	}
	if lineMember(t, db, "S-6") != pending.MemberID {
		t.Fatal("a pending sign-up's sale's lines do not carry it")
	}
	if n, err := db.PurgeUnconfirmed(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
	if lineMember(t, db, "S-6") != 0 {
		t.Fatal("a purged sign-up's sale's lines still carry it")
	}
	wantLinesMatchTransactions(t, db)

	// The sweep after a members import (LinkUnmatched): a member stored without linking.
	swept := withItems(sale("S-5", 0), "D")
	swept.Member = &models.MemberRef{Phone: "+4791111111"}
	if _, _, err := db.RecordTransaction(ctx, reg, swept); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO members (card, name, status, source, phone)
		VALUES ('2900000000099', 'Swept', 'active', 'import', '+4791111111') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if n, err := db.LinkUnmatched(ctx); err != nil || n != 1 {
		t.Fatalf("swept %d, %v; want 1", n, err)
	}
	if lineMember(t, db, "S-5") != id {
		t.Fatal("the swept sale's lines do not carry its member")
	}
	// Erasing a member keeps their purchases (and the lines' member).
	if err := db.EraseMember(ctx, id); err != nil {
		t.Fatal(err)
	}
	if lineMember(t, db, "S-5") != id {
		t.Fatal("erasure moved the lines")
	}
	wantLinesMatchTransactions(t, db)
}

// sliceSource is a TransactionSource over inputs; resettable, it takes the import's direct path.
type sliceSource struct {
	ins []models.TransactionInput
	i   int
}

func (s *sliceSource) Next() (int, *models.TransactionInput, error) {
	if s.i == len(s.ins) {
		return 0, nil, io.EOF
	}
	s.i++
	return s.i + 1, &s.ins[s.i-1], nil
}

type resettable struct{ *sliceSource }

func (r resettable) Reset() error { r.i = 0; return nil }

func TestLinesCarryTheirSaleOnImport(t *testing.T) {
	for _, direct := range []bool{true, false} {
		name := map[bool]string{true: "direct", false: "staged"}[direct]
		t.Run(name, func(t *testing.T) {
			db, reg := fixture(t)
			ctx := context.Background()
			m := tillMember(t, db, reg)
			s1 := withItems(sale("I-1", 0), "A", "B")
			s1.Member = &models.MemberRef{Card: m.Card}
			r1 := withItems(sale("I-2", 0), "A") // no card: inherits I-1's member
			r1.Kind, r1.Refunds = "refund", "I-1"
			s2 := withItems(sale("I-3", 0), "C")
			var src models.TransactionSource = &sliceSource{ins: []models.TransactionInput{s1, r1, s2}}
			if direct {
				src = resettable{src.(*sliceSource)}
			}
			if _, err := db.ImportTransactions(ctx, src); err != nil {
				t.Fatal(err)
			}
			wantLinesMatchTransactions(t, db)
			wantRefundsKnowTheirSale(t, db)
			if lineMember(t, db, "I-1") != m.ID || lineMember(t, db, "I-2") != m.ID || lineMember(t, db, "I-3") != 0 {
				t.Fatal("imported lines carry the wrong members")
			}
		})
	}
}

// Any other writer (a script, a test, an edit by hand) gets the copies from the database.
func TestLinesWrittenByHandGetTheirSaleFromTheDatabase(t *testing.T) {
	db, reg := fixture(t)
	ctx := context.Background()
	if _, _, err := db.RecordTransaction(ctx, reg, withItems(sale("H-1", 0), "A")); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
		 SELECT id, 2, 'B', 1, 100 FROM transactions WHERE txn_id = 'H-1'`,
		// A transaction and its lines in one statement, as scripts/bench-api.sh's ceiling writes them.
		`WITH ins AS (
		     INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, content_hash)
		     SELECT store_id, 'H-2', 'sale', now(), 100, 'NOK', '\x00' FROM transactions WHERE txn_id = 'H-1'
		     RETURNING id)
		 INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor) SELECT id, 1, 'C', 1, 100 FROM ins`,
		`UPDATE transactions SET occurred_at = occurred_at - interval '8 days' WHERE txn_id = 'H-1'`,
		// A refund written by hand, then edited to name another sale.
		`INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, refunds_txn_id, content_hash)
		 SELECT store_id, 'H-3', 'refund', now(), 100, 'NOK', 'H-1', '\x00' FROM transactions WHERE txn_id = 'H-1'`,
		`UPDATE transactions SET refunds_txn_id = 'H-2' WHERE txn_id = 'H-3'`,
	} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
		wantLinesMatchTransactions(t, db)
	}
	wantRefundsKnowTheirSale(t, db) // the edit looked up the sale it names now
}
