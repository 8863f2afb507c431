package demo_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/flows"
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

	t.Run("three flows are active and the win-back report is final with a lift interval", func(t *testing.T) {
		list, err := flows.FindFlows(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]flows.Flow{}
		for _, f := range list {
			byName[f.Name] = f
		}
		for _, name := range []string{"Welcome", "Birthday treat", "Win back"} {
			f, ok := byName[name]
			if !ok || f.Status != flows.StatusActive || f.HoldoutPercent != 10 {
				t.Errorf("flow %q: %+v, want it active with a 10%% holdout", name, f)
			}
		}
		if len(list) != 3 || sum.FlowEntries == 0 || len(sum.Flows) != 3 {
			t.Fatalf("%d flows, summary %v with %d entries; want 3", len(list), sum.Flows, sum.FlowEntries)
		}
		st, err := flows.FindFlowStats(ctx, db, byName["Win back"].ID, tracking.DefaultAttributionDays)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("win back: entered %d, held out %d, exits %v, clicks %d, steps %+v, revenue %+v, holdout %+v",
			st.Entered, st.HeldOut, st.Exits, st.Clicks, st.Steps, st.Revenue, st.Revenue.Holdout)
		h := st.Revenue.Holdout
		switch {
		case st.Preliminary || st.FinalAt != nil:
			t.Errorf("preliminary %v, final_at %v; want a final report", st.Preliminary, st.FinalAt)
		case st.Revenue.Members < flows.MinMatured || h == nil || h.Members < flows.MinMatured:
			t.Errorf("revenue %+v, holdout %+v; want both groups of at least %d", st.Revenue, h, flows.MinMatured)
		case h.LiftLow == nil || h.LiftHigh == nil || *h.LiftLow > h.Lift || h.Lift > *h.LiftHigh:
			t.Errorf("holdout %+v; want a lift inside its interval", h)
		case h.Lift <= 0:
			t.Errorf("lift %.2f; the mailed members should have bought more", h.Lift)
		}
		if len(st.Steps) != 2 || st.Steps[0].Sent == 0 || st.Steps[1].Sent == 0 || st.Steps[0].HeldOut == 0 {
			t.Errorf("steps %+v; want both mails sent and held-out members at the first", st.Steps)
		}
		if st.Exits["purchase"] == 0 || st.Clicks == 0 || st.Done == 0 {
			t.Errorf("exits %v, clicks %d, done %d; want some of each", st.Exits, st.Clicks, st.Done)
		}
	})

	t.Run("the history holds out members by the engine's draw and mails only the others", func(t *testing.T) {
		if n := count(t, db, `SELECT count(*) FROM flow_entries e WHERE e.held_out <>
			((('x' || substr(md5('flow:' || e.flow_id || ':' || e.member_id), 1, 8))::bit(32)::bigint % 10000) < 1000)`); n != 0 {
			t.Errorf("%d entries held out otherwise than the engine draws", n)
		}
		if n := count(t, db, `SELECT count(*) FROM campaign_recipients cr JOIN flow_entries e ON e.member_id = cr.member_id
			JOIN campaign_runs r ON r.id = cr.run_id JOIN campaigns c ON c.id = r.campaign_id AND c.flow_id = e.flow_id
			WHERE (cr.status = 'sent') = e.held_out`); n != 0 {
			t.Errorf("%d recipients whose status does not match their group", n)
		}
		if n := count(t, db, `SELECT count(*) FROM flow_entries WHERE status = 'exited' AND exit_reason = 'purchase' AND NOT EXISTS (
			SELECT 1 FROM transactions t WHERE t.member_id = flow_entries.member_id AND t.kind = 'sale' AND t.occurred_at = flow_entries.finished_at)`); n != 0 {
			t.Errorf("%d purchase exits at no purchase", n)
		}
		if n := count(t, db, `SELECT count(*) FROM transactions WHERE live`); n != 0 {
			t.Errorf("%d live transactions; the demo's history is not live", n)
		}
	})

	t.Run("the café's stamp card and its rewards are set, with a ledger of every kind", func(t *testing.T) {
		p, err := db.FindRewardProgram(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p.PointsPerVisit != 1 || p.PointsPerMajorUnit != 0 || p.MinAmount != 3000 || p.ExpireAfterDays == nil || *p.ExpireAfterDays != 365 {
			t.Errorf("program %+v, want a stamp card", p)
		}
		coffee, err := db.FindRewardByCode(ctx, demo.CoffeeReward)
		if err != nil {
			t.Fatal(err)
		}
		if coffee.CostPoints != 10 || coffee.DiscountMinor == nil || !coffee.Active {
			t.Errorf("coffee %+v", coffee)
		}
		if n := count(t, db, `SELECT count(*) FROM rewards WHERE active AND discount_percent IS NOT NULL`); n == 0 {
			t.Error("no reward with a percentage off")
		}
		if !slices.Equal(sum.Rewards, []string{"coffee", "record-10"}) {
			t.Errorf("summary names rewards %v", sum.Rewards)
		}
		for _, kind := range []string{"earned", "refunded", "spent", "cancelled", "expired"} {
			if n := count(t, db, `SELECT count(*) FROM points_ledger WHERE kind = '`+kind+`'`); n == 0 {
				t.Errorf("no %s entries in the ledger", kind)
			}
		}
		t.Logf("rewards: %d members with points, %d can afford a coffee (card %s), %d redemptions, %d vouchers",
			sum.PointsMembers, sum.CoffeeMembers, sum.CoffeeCard, sum.Redemptions, sum.Vouchers)
		if sum.PointsMembers < 100 || sum.CoffeeMembers == 0 || sum.Redemptions == 0 || sum.Vouchers == 0 {
			t.Errorf("summary %+v", *sum)
		}
		if n := count(t, db, `SELECT count(*) FROM redemptions WHERE cancelled_at IS NOT NULL`); n == 0 {
			t.Error("no cancelled redemption")
		}
		if n := count(t, db, `SELECT count(*) FROM redemptions WHERE voucher_id IS NOT NULL AND points_spent = 0`); n == 0 {
			t.Error("no voucher was used")
		}
		if n := count(t, db, `SELECT count(*) FROM vouchers WHERE used_at IS NULL AND expires_at > '`+now.Format(time.RFC3339)+`'`); n == 0 {
			t.Error("no voucher is still open")
		}
		if n := count(t, db, `SELECT count(*) FROM vouchers WHERE used_at IS NULL AND expires_at <= '`+now.Format(time.RFC3339)+`'`); n == 0 {
			t.Error("no voucher expired unused")
		}
	})

	t.Run("balances are the ledger's sum and no redemption took a balance below zero", func(t *testing.T) {
		// The running balance of each member in ledger order, the expiry (written last) aside.
		if n := count(t, db, `SELECT count(*) FROM (
			SELECT kind, sum(points) OVER (PARTITION BY member_id ORDER BY id) AS balance
			FROM points_ledger WHERE kind <> 'expired') r WHERE kind = 'spent' AND balance < 0`); n != 0 {
			t.Errorf("%d redemptions left a negative balance", n)
		}
		if n := count(t, db, `SELECT count(*) FROM points_ledger a JOIN points_ledger b ON b.member_id = a.member_id
			AND b.id > a.id AND b.created_at < a.created_at`); n != 0 {
			t.Errorf("%d ledger entries out of time order", n)
		}
		m, err := db.LookupMember(ctx, sum.CoffeeCard, "", "")
		if err != nil {
			t.Fatal(err)
		}
		pts, err := db.FindMemberPoints(ctx, m.ID, models.MaxPointsPage, 0)
		if err != nil {
			t.Fatal(err)
		}
		ledger := 0
		for _, e := range pts.Entries {
			ledger += e.Points
		}
		if m.Points == nil || m.Points.Balance != pts.Balance || pts.Balance != ledger || pts.NextBefore != nil {
			t.Fatalf("lookup %+v, ledger %+v (sum %d)", m.Points, pts, ledger)
		}
		if pts.Balance < 10 || !m.Points.Rewards[0].Affordable || m.Points.Rewards[0].Code != demo.CoffeeReward {
			t.Errorf("card %s: lookup %+v; want a coffee it can afford", sum.CoffeeCard, m.Points)
		}
		l, err := db.FindRewardsLiability(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if l.Reward == nil || *l.Reward != demo.CoffeeReward || l.Total.PointsOutstanding == 0 || l.Total.ExpiringWithin30Days == 0 {
			t.Errorf("liability %+v", l)
		}
	})

	t.Run("a demo redemption replays as the till posts it", func(t *testing.T) {
		var store, id, card, reward, txn string
		if err := db.Pool.QueryRow(ctx, `SELECT s.code, r.txn_id, m.card, r.reward_code, r.transaction_ref
			FROM redemptions r JOIN stores s ON s.id = r.store_id JOIN members m ON m.id = r.member_id
			WHERE r.voucher_id IS NULL ORDER BY r.id LIMIT 1`).Scan(&store, &id, &card, &reward, &txn); err != nil {
			t.Fatal(err)
		}
		st, err := db.FindStoreByCode(ctx, store)
		if err != nil {
			t.Fatal(err)
		}
		p := &models.Principal{Role: models.RoleRegister, Store: st}
		_, outcome, err := db.Redeem(ctx, p, models.RedemptionInput{ID: id, Store: store, Member: &models.MemberRef{Card: card},
			Reward: reward, Transaction: txn})
		if err != nil || outcome != models.Replayed {
			t.Errorf("replaying %s/%s: %v, %v; want a replay", store, id, outcome, err)
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
		if again.Transactions != sum.Transactions || again.Members != sum.Members || again.FlowEntries != 0 ||
			count(t, db, `SELECT count(*) FROM flows`) != 3 {
			t.Fatalf("after a forced refill: %d transactions, %d members; want %d, %d", again.Transactions, again.Members, sum.Transactions, sum.Members)
		}
	})
}
