package models_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

func sale(id string, amount int64) models.TransactionInput {
	return models.TransactionInput{ID: id, Store: "oslo-1", Register: "till-2", Kind: "sale",
		OccurredAt: "2026-11-20T14:03:00+01:00", Amount: models.NewInt(amount), Currency: "NOK",
		Items: []models.ItemInput{{SKU: "LP-1234", Qty: models.NewInt(1), UnitPrice: models.NewInt(amount)}}}
}

func countRows(t *testing.T, db *models.DB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecordTransactionIsIdempotent(t *testing.T) {
	db, reg := fixture(t)
	ctx := context.Background()
	got, outcome, err := db.RecordTransaction(ctx, reg, sale("R-1", 12950))
	if err != nil || outcome != models.Created {
		t.Fatalf("first post: outcome %v, err %v", outcome, err)
	}
	if got.Amount != 12950 || len(got.Items) != 1 {
		t.Fatalf("stored %+v", got)
	}
	again := sale("R-1", 12950)
	again.OccurredAt = "2026-11-20T13:03:00Z" // the same instant written another way
	got2, outcome, err := db.RecordTransaction(ctx, reg, again)
	if err != nil || outcome != models.Replayed {
		t.Fatalf("replay: outcome %v, err %v", outcome, err)
	}
	if !got2.OccurredAt.Equal(got.OccurredAt) || got2.Items[0].SKU != "LP-1234" {
		t.Fatalf("replay returned %+v", got2)
	}
	_, _, err = db.RecordTransaction(ctx, reg, sale("R-1", 100))
	if models.ErrorCode(err) != models.ECONFLICT {
		t.Fatalf("same id, other amount: got %v, want conflict", err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM transactions`); n != 1 {
		t.Fatalf("%d rows stored, want 1", n)
	}
}

func TestConcurrentDuplicatesStoreOneRow(t *testing.T) {
	db, reg := fixture(t)
	var wg sync.WaitGroup
	outcomes := make(chan models.Outcome, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, o, err := db.RecordTransaction(context.Background(), reg, sale("R-dup", 500))
			if err != nil {
				t.Error(err)
				return
			}
			outcomes <- o
		}()
	}
	wg.Wait()
	close(outcomes)
	created := 0
	for o := range outcomes {
		if o == models.Created {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d posts answered created, want exactly 1", created)
	}
	if n := countRows(t, db, `SELECT count(*) FROM transactions WHERE txn_id = 'R-dup'`); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
	if n := countRows(t, db, `SELECT count(*) FROM transaction_items`); n != 1 {
		t.Fatalf("%d item rows, want 1", n)
	}
}

func TestUnmatchedSaleIsLinkedWhenCardIsRegistered(t *testing.T) {
	db, reg := fixture(t)
	ctx := context.Background()
	card, _ := models.NewCardNumber()
	in := sale("R-7", 9900)
	in.Member = &models.MemberRef{Card: card}
	got, _, err := db.RecordTransaction(ctx, reg, in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Member == nil || got.Member.Matched || got.Member.Card != card {
		t.Fatalf("member on unmatched sale: %+v", got.Member)
	}
	no := false
	m, err := db.CreateMember(ctx, reg, models.MemberInput{Card: card, Name: "Kari", MarketingConsent: &no}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	if m.LinkedTransactions != 1 || m.HomeStore != "oslo-1" {
		t.Fatalf("member %+v", m)
	}
	stored, err := db.FindTransaction(ctx, "oslo-1", "R-7")
	if err != nil {
		t.Fatal(err)
	}
	if !stored.Member.Matched || *stored.Member.MemberID != m.ID {
		t.Fatalf("after registering: %+v", stored.Member)
	}
	// A later refund without a card still counts against the member.
	refund := sale("R-8", 9900)
	refund.Kind, refund.Refunds, refund.Items = "refund", "R-7", nil
	got, _, err = db.RecordTransaction(ctx, reg, refund)
	if err != nil {
		t.Fatal(err)
	}
	if got.Member == nil || got.Member.MemberID == nil || *got.Member.MemberID != m.ID {
		t.Fatalf("refund member: %+v", got.Member)
	}
}

func TestBatchReportsEachItem(t *testing.T) {
	db, reg := fixture(t)
	ctx := context.Background()
	if _, _, err := db.RecordTransaction(ctx, reg, sale("B-0", 100)); err != nil {
		t.Fatal(err)
	}
	bad := sale("B-3", 100)
	bad.Amount = models.Int{Present: true, Bad: "must be an integer"}
	other := sale("B-4", 100)
	other.Store = "bergen-1"
	ghost := sale("B-5", 100)
	ghost.Kind, ghost.Refunds = "refund", "NOPE"
	res, err := db.RecordTransactions(ctx, reg, []models.TransactionInput{
		sale("B-1", 100), sale("B-0", 100), sale("B-0", 999), bad, other, ghost, sale("B-1", 100),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []int{201, 200, 409, 422, 403, 422, 200}
	for i, r := range res {
		if r.Status != want[i] {
			t.Errorf("item %d (%s): status %d, want %d (%v)", i, r.ID, r.Status, want[i], r.Error)
		}
	}
	if n := countRows(t, db, `SELECT count(*) FROM transactions`); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

func TestSweepLinksSalesThatRacedWithMemberCreation(t *testing.T) {
	db, reg := fixture(t)
	ctx := context.Background()
	card, _ := models.NewCardNumber()
	in := sale("R-race", 2500)
	in.Member = &models.MemberRef{Card: card}
	if _, _, err := db.RecordTransaction(ctx, reg, in); err != nil {
		t.Fatal(err)
	}
	refund := sale("R-race-refund", 2500)
	refund.Kind, refund.Refunds, refund.Items = "refund", "R-race", nil
	if _, _, err := db.RecordTransaction(ctx, reg, refund); err != nil {
		t.Fatal(err)
	}
	// A member row that appeared without linking, as if its own UPDATE ran before the sale
	// committed.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO members (card, status, source) VALUES ($1, 'active', 'till')`, card); err != nil {
		t.Fatal(err)
	}
	if n, err := db.LinkRecentMembers(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("sweep of members newer than the future linked %d (err %v), want 0", n, err)
	}
	if n, err := db.LinkRecentMembers(ctx, time.Now().Add(-time.Hour)); err != nil || n != 2 {
		t.Fatalf("sweep linked %d (err %v), want 2: the sale and its refund", n, err)
	}
	got, err := db.FindTransaction(ctx, "oslo-1", "R-race")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Member.Matched {
		t.Fatalf("sale still unmatched after the sweep: %+v", got.Member)
	}
}

func TestRefundOfAnUnmatchedSaleFollowsItWhenTheCardIsRegistered(t *testing.T) {
	db, reg := fixture(t)
	ctx := context.Background()
	card, _ := models.NewCardNumber()
	in := sale("S-1", 9900)
	in.Member = &models.MemberRef{Card: card}
	if _, _, err := db.RecordTransaction(ctx, reg, in); err != nil {
		t.Fatal(err)
	}
	refund := sale("S-2", 9900)
	refund.Kind, refund.Refunds, refund.Items = "refund", "S-1", nil
	got, _, err := db.RecordTransaction(ctx, reg, refund)
	if err != nil {
		t.Fatal(err)
	}
	if got.Member != nil {
		t.Fatalf("refund of an unmatched sale got member %+v", got.Member)
	}
	no := false
	m, err := db.CreateMember(ctx, reg, models.MemberInput{Card: card, MarketingConsent: &no}, models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	if m.LinkedTransactions != 2 {
		t.Fatalf("linked %d transactions, want the sale and its refund", m.LinkedTransactions)
	}
	if n := countRows(t, db, `SELECT count(*) FROM transactions WHERE member_id = $1`, m.ID); n != 2 {
		t.Fatalf("%d transactions belong to the member, want 2", n)
	}
}
