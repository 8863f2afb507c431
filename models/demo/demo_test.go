package demo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
	"github.com/regulars/regulars/models/demo"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func count(t *testing.T, db *models.DB, sql string) int64 {
	t.Helper()
	var n int64
	if err := db.Pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestFill(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	sum, err := demo.Fill(ctx, db, demo.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *sum)

	t.Run("the counts are in the ranges the demo promises", func(t *testing.T) {
		if len(sum.Stores) != 4 || count(t, db, `SELECT count(*) FROM stores WHERE currency = 'NOK' AND timezone = 'Europe/Oslo'`) != 4 {
			t.Errorf("stores: %v", sum.Stores)
		}
		if sum.Members != 2000 {
			t.Errorf("%d members, want 2000", sum.Members)
		}
		if share := float64(sum.ConsentedMembers) / float64(sum.Members); share < 0.5 || share > 0.7 {
			t.Errorf("%.2f of members consented, want about 0.6", share)
		}
		if sum.Transactions < 20_000 || sum.Transactions > 40_000 {
			t.Errorf("%d transactions, want 20-40k", sum.Transactions)
		}
		if share := float64(sum.AnonymousSales) / float64(sum.Sales); share < 0.2 || share > 0.3 {
			t.Errorf("%.2f of sales anonymous, want about 0.25", share)
		}
		if sum.Refunds == 0 || sum.UnregisteredCardSales == 0 || sum.Items < sum.Transactions {
			t.Errorf("refunds %d, unregistered card sales %d, items %d", sum.Refunds, sum.UnregisteredCardSales, sum.Items)
		}
	})

	t.Run("the club has a tier ladder whose lowest step gives every member a discount", func(t *testing.T) {
		tiers, err := db.FindTiers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(tiers) != 3 || tiers[0].MinSpend != 0 || tiers[0].DiscountPercent <= 0 {
			t.Errorf("demo tiers %+v", tiers)
		}
	})

	t.Run("every refund names an earlier sale of its own store", func(t *testing.T) {
		if n := count(t, db, `SELECT count(*) FROM transactions r WHERE r.kind = 'refund' AND NOT EXISTS (
			SELECT 1 FROM transactions s WHERE s.store_id = r.store_id AND s.txn_id = r.refunds_txn_id
			AND s.kind = 'sale' AND s.occurred_at < r.occurred_at)`); n != 0 {
			t.Errorf("%d refunds name no earlier sale of their store", n)
		}
	})

	t.Run("members have valid cards and consent records", func(t *testing.T) {
		rows, err := db.Pool.Query(ctx, `SELECT card FROM members`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var card string
			if err := rows.Scan(&card); err != nil {
				t.Fatal(err)
			}
			if !models.ValidCard(card) {
				t.Fatalf("member card %s is not a valid EAN-13", card)
			}
		}
		if n := count(t, db, `SELECT count(*) FROM members m WHERE m.marketing_consent = 'confirmed' AND NOT EXISTS (
			SELECT 1 FROM consents c WHERE c.member_id = m.id AND c.granted AND c.source = 'import')`); n != 0 {
			t.Errorf("%d consenting members without an import consent record", n)
		}
	})

	t.Run("member sales are linked and repeat customers exist", func(t *testing.T) {
		if n := count(t, db, `SELECT count(*) FROM transactions t JOIN members m ON m.card = t.member_card WHERE t.member_id IS DISTINCT FROM m.id`); n != 0 {
			t.Errorf("%d sales on a member's card not linked to the member", n)
		}
		repeat := count(t, db, `SELECT count(*) FROM (SELECT member_id FROM transactions WHERE kind = 'sale' AND member_id IS NOT NULL
			GROUP BY member_id HAVING count(*) >= 2) x`)
		buyers := count(t, db, `SELECT count(DISTINCT member_id) FROM transactions WHERE member_id IS NOT NULL`)
		if repeat == 0 || repeat == buyers {
			t.Errorf("%d of %d buying members bought more than once; want some but not all", repeat, buyers)
		}
	})

	t.Run("a second fill of a database with stores is refused", func(t *testing.T) {
		if _, err := demo.Fill(ctx, db, demo.Options{Now: now}); !errors.Is(err, demo.ErrNotEmpty) {
			t.Fatalf("got %v, want ErrNotEmpty", err)
		}
	})

	t.Run("a forced fill with the same seed adds nothing", func(t *testing.T) {
		again, err := demo.Fill(ctx, db, demo.Options{Now: now, Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if again.Transactions != sum.Transactions || again.Members != sum.Members {
			t.Fatalf("after a forced refill: %d transactions, %d members; want %d, %d", again.Transactions, again.Members, sum.Transactions, sum.Members)
		}
	})
}
