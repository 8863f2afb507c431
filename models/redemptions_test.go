package models_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

func redeemCoffee(id, card string) models.RedemptionInput {
	return models.RedemptionInput{ID: id, Store: "oslo-1", Member: &models.MemberRef{Card: card}, Reward: "coffee"}
}

// redeemAtOnce runs n redemptions at the same time and counts their outcomes: "created",
// "replayed" or the error code.
func redeemAtOnce(s *rewardsShop, n int, input func(i int) models.RedemptionInput) map[string]int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for i := range n {
		wg.Go(func() {
			_, outcome, err := s.db.Redeem(context.Background(), s.till, input(i))
			code := map[models.Outcome]string{models.Created: "created", models.Replayed: "replayed"}[outcome]
			if err != nil {
				code = models.ErrorCode(err)
			}
			mu.Lock()
			outcomes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return outcomes
}

func TestRedeemSpendsPointsOnceAndReplays(t *testing.T) {
	s := newRewardsShop(t)
	ctx := context.Background()
	id, card := s.member(t, "oslo-1")
	s.earn(t, card, 25)
	in := redeemCoffee("RD-1", card)
	in.Transaction = "R-000123"
	r, outcome, err := s.db.Redeem(ctx, s.till, in)
	if err != nil || outcome != models.Created {
		t.Fatalf("redeem: %v %v", outcome, err)
	}
	if r.PointsSpent != 10 || r.BalanceAfter != 15 || r.DiscountMinor == nil || *r.DiscountMinor != 3500 || r.DiscountPercent != nil ||
		r.Reward != "coffee" || r.MemberID != id || r.Transaction != "R-000123" {
		t.Errorf("redemption %+v", r)
	}
	// The same redemption again: a replay, no second debit.
	again, outcome, err := s.db.Redeem(ctx, s.till, in)
	if err != nil || outcome != models.Replayed || again.PointsSpent != 10 || again.BalanceAfter != 15 || !again.CreatedAt.Equal(r.CreatedAt) {
		t.Errorf("replay: %v %v %+v", outcome, err, again)
	}
	if b := s.balance(t, id); b != 15 {
		t.Errorf("balance %d after a replay, want 15", b)
	}
	// The same id for something else: a conflict.
	other := in
	other.Reward = "tenoff"
	if _, _, err := s.db.Redeem(ctx, s.till, other); models.ErrorCode(err) != models.ECONFLICT {
		t.Errorf("same id, other reward: %v, want conflict", err)
	}
	// By email, the same member.
	if _, err := s.db.Pool.Exec(ctx, `UPDATE members SET email = 'kari@example.com', phone = '+4791234567' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	byEmail := models.RedemptionInput{ID: "RD-2", Store: "oslo-1", Member: &models.MemberRef{Email: " Kari@Example.com"}, Reward: "coffee"}
	if r, _, err := s.db.Redeem(ctx, s.till, byEmail); err != nil || r.BalanceAfter != 5 {
		t.Errorf("by email: %+v %v, want balance 5", r, err)
	}
	byPhone := models.RedemptionInput{ID: "RD-3", Store: "oslo-1", Member: &models.MemberRef{Phone: "+47 912 34 567"}, Reward: "coffee"}
	if _, _, err := s.db.Redeem(ctx, s.till, byPhone); models.ErrorCode(err) != models.EINSUFFICIENTPOINTS {
		t.Errorf("5 points for a 10-point coffee: %v, want insufficient_points", err)
	}
	if b, n := s.balance(t, id), countRows(t, s.db, `SELECT count(*) FROM redemptions`); b != 5 || n != 2 {
		t.Errorf("balance %d, %d redemptions; want 5 and 2", b, n)
	}
}

func TestRedeemRefusesBadInput(t *testing.T) {
	s := newRewardsShop(t)
	ctx := context.Background()
	_, card := s.member(t, "oslo-1")
	s.earn(t, card, 50)
	var off models.RewardInput
	mustJSON(t, `{"active": false}`, &off)
	if _, err := s.db.UpdateReward(ctx, "bag", off); err != nil {
		t.Fatal(err)
	}
	base := redeemCoffee("RD-1", card)
	mod := func(f func(*models.RedemptionInput)) models.RedemptionInput {
		in := base
		m := *in.Member
		in.Member = &m
		f(&in)
		return in
	}
	cases := []struct {
		name  string
		in    models.RedemptionInput
		code  string
		field string
	}{
		{"a redemption without id is invalid", mod(func(in *models.RedemptionInput) { in.ID = "" }), models.EINVALID, "id"},
		{"an id with surrounding spaces is invalid", mod(func(in *models.RedemptionInput) { in.ID = " RD-1" }), models.EINVALID, "id"},
		{"a redemption without store is invalid", mod(func(in *models.RedemptionInput) { in.Store = "" }), models.EINVALID, "store"},
		{"a redemption without member is invalid", mod(func(in *models.RedemptionInput) { in.Member = nil }), models.EINVALID, "member"},
		{"an empty member is invalid", mod(func(in *models.RedemptionInput) { in.Member = &models.MemberRef{} }), models.EINVALID, "member"},
		{"a card with a bad check digit is invalid", mod(func(in *models.RedemptionInput) { in.Member.Card = "7012345678904" }), models.EINVALID, "member.card"},
		{"a bad email is invalid", mod(func(in *models.RedemptionInput) { in.Member = &models.MemberRef{Email: "kari"} }), models.EINVALID, "member.email"},
		{"a bad phone is invalid", mod(func(in *models.RedemptionInput) { in.Member = &models.MemberRef{Phone: "12"} }), models.EINVALID, "member.phone"},
		{"neither reward nor voucher is invalid", mod(func(in *models.RedemptionInput) { in.Reward = "" }), models.EINVALID, "reward"},
		{"both reward and voucher are invalid", mod(func(in *models.RedemptionInput) { in.Voucher = "2800000000005" }), models.EINVALID, "voucher"},
		{"a bad transaction id is invalid", mod(func(in *models.RedemptionInput) { in.Transaction = " R-1 " }), models.EINVALID, "transaction"},
		{"an unknown reward is invalid", mod(func(in *models.RedemptionInput) { in.Reward = "nope" }), models.EINVALID, "reward"},
		{"an inactive reward is invalid", mod(func(in *models.RedemptionInput) { in.Reward = "bag" }), models.EINVALID, "reward"},
		{"an unknown card is not found", mod(func(in *models.RedemptionInput) { in.Member.Card = models.WithCheckDigit("299999999999") }), models.ENOTFOUND, ""},
		{"another store is forbidden", mod(func(in *models.RedemptionInput) { in.Store = "bergen-1" }), models.EFORBIDDEN, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.db.Redeem(ctx, s.till, tc.in)
			if models.ErrorCode(err) != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			if tc.field != "" {
				var e *models.Error
				if !asError(err, &e) || e.Fields[tc.field] == "" {
					t.Errorf("error %v does not name %s", err, tc.field)
				}
			}
		})
	}
	if _, _, err := s.db.Redeem(ctx, &models.Principal{Role: models.RoleAdmin}, base); models.ErrorCode(err) != models.EFORBIDDEN {
		t.Errorf("an admin redeeming: %v, want forbidden", err)
	}
	if n := countRows(t, s.db, `SELECT count(*) FROM redemptions`); n != 0 {
		t.Errorf("%d redemptions stored, want none", n)
	}
}

func TestConcurrentRedemptionsNeverTakeTheBalanceBelowZero(t *testing.T) {
	s := newRewardsShop(t)
	id, card := s.member(t, "oslo-1")
	const balance, cost, racers = 137, 10, 32
	s.earn(t, card, balance)
	codes := redeemAtOnce(s, racers, func(i int) models.RedemptionInput { return redeemCoffee(fmt.Sprintf("RD-%d", i), card) })
	if codes["created"] != balance/cost || codes[models.EINSUFFICIENTPOINTS] != racers-balance/cost {
		t.Errorf("outcomes %v, want %d created and the rest insufficient_points", codes, balance/cost)
	}
	b := s.balance(t, id)
	if b != balance%cost || b < 0 {
		t.Errorf("balance %d, want %d", b, balance%cost)
	}
	if n := countRows(t, s.db, `SELECT count(*) FROM points_ledger WHERE member_id = $1 AND kind = 'spent'`, id); n != balance/cost {
		t.Errorf("%d spent entries, want %d", n, balance/cost)
	}
	if spent := countRows(t, s.db, `SELECT coalesce(sum(points_spent), 0)::int FROM redemptions`); spent+b != balance {
		t.Errorf("redemptions spent %d and %d are left, want them to add up to %d", spent, b, balance)
	}
}

func TestConcurrentReplaysOfOneRedemptionDebitOnce(t *testing.T) {
	s := newRewardsShop(t)
	id, card := s.member(t, "oslo-1")
	s.earn(t, card, 30)
	outcomes := redeemAtOnce(s, 16, func(int) models.RedemptionInput { return redeemCoffee("RD-1", card) })
	if outcomes["created"] != 1 || outcomes["replayed"] != 15 {
		t.Errorf("outcomes %v, want 1 created and 15 replayed", outcomes)
	}
	if b := s.balance(t, id); b != 20 {
		t.Errorf("balance %d, want 20", b)
	}
}

func TestCancelGivesThePointsBackOnce(t *testing.T) {
	s := newRewardsShop(t)
	ctx := context.Background()
	id, card := s.member(t, "oslo-1")
	s.earn(t, card, 12)
	if _, _, err := s.db.Redeem(ctx, s.till, redeemCoffee("RD-1", card)); err != nil {
		t.Fatal(err)
	}
	first, err := s.db.CancelRedemption(ctx, s.till, "oslo-1", "RD-1")
	if err != nil {
		t.Fatal(err)
	}
	if first.CancelledAt == nil || first.BalanceAfter != 12 || first.PointsSpent != 10 {
		t.Errorf("cancelled %+v, want cancelled_at and balance 12", first)
	}
	second, err := s.db.CancelRedemption(ctx, s.till, "oslo-1", "RD-1")
	if err != nil {
		t.Fatal(err)
	}
	if second.CancelledAt == nil || !second.CancelledAt.Equal(*first.CancelledAt) || second.BalanceAfter != 12 {
		t.Errorf("second cancel %+v, want the same as the first %+v", second, first)
	}
	if b := s.balance(t, id); b != 12 {
		t.Errorf("balance %d after two cancels, want 12", b)
	}
	// Concurrent cancels of another redemption give the points back once too.
	if _, _, err := s.db.Redeem(ctx, s.till, redeemCoffee("RD-2", card)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.db.CancelRedemption(ctx, s.till, "oslo-1", "RD-2"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if b := s.balance(t, id); b != 12 {
		t.Errorf("balance %d after concurrent cancels, want 12", b)
	}
	// A replay of a cancelled redemption is still a replay: it spends nothing again.
	r, outcome, err := s.db.Redeem(ctx, s.till, redeemCoffee("RD-1", card))
	if err != nil || outcome != models.Replayed || r.CancelledAt == nil {
		t.Errorf("replay after cancel: %v %v %+v", outcome, err, r)
	}
	if _, err := s.db.CancelRedemption(ctx, s.till, "oslo-1", "RD-404"); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("unknown redemption: %v, want not found", err)
	}
	if _, err := s.db.CancelRedemption(ctx, s.till, "bergen-1", "RD-1"); models.ErrorCode(err) != models.EFORBIDDEN {
		t.Errorf("another store: %v, want forbidden", err)
	}
}

func TestVoucherRedemptions(t *testing.T) {
	s := newRewardsShop(t)
	ctx := context.Background()
	id, card := s.member(t, "oslo-1")
	_, otherCard := s.member(t, "oslo-1")
	expires := time.Now().Add(time.Hour)
	v, err := s.db.CreateVoucher(ctx, id, models.VoucherInput{Reward: "tenoff", ExpiresAt: expires.Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	use := func(rid, card string) (*models.Redemption, error) {
		r, _, err := s.db.Redeem(ctx, s.till, models.RedemptionInput{ID: rid, Store: "oslo-1", Member: &models.MemberRef{Card: card}, Voucher: v.Code})
		return r, err
	}
	if _, err := use("RD-0", otherCard); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("another member's voucher: %v, want not found", err)
	}
	r, err := use("RD-1", card)
	if err != nil {
		t.Fatal(err)
	}
	if r.PointsSpent != 0 || r.BalanceAfter != 0 || r.Reward != "tenoff" || r.DiscountPercent == nil || *r.DiscountPercent != 10 || r.Voucher != v.Code {
		t.Errorf("voucher redemption %+v", r)
	}
	if _, err := use("RD-2", card); models.ErrorCode(err) != models.EVOUCHERUSED {
		t.Errorf("second use: %v, want voucher_used", err)
	}
	// A cancel releases the voucher: usable again (the cancelled redemption still names it).
	c, err := s.db.CancelRedemption(ctx, s.till, "oslo-1", "RD-1")
	if err != nil || c.Voucher != v.Code || c.CancelledAt == nil {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if _, err := use("RD-3", card); err != nil {
		t.Errorf("use after the cancel: %v", err)
	}
	if _, err := s.db.CancelRedemption(ctx, s.till, "oslo-1", "RD-3"); err != nil {
		t.Fatal(err)
	}
	// Past expires_at: expired, even though released.
	s.db.Now = func() time.Time { return expires.Add(time.Second) }
	if _, err := use("RD-4", card); models.ErrorCode(err) != models.EVOUCHEREXPIRED {
		t.Errorf("after expiry: %v, want voucher_expired", err)
	}
	if _, err := use("RD-5", otherCard); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("unknown voucher for the other member: %v, want not found", err)
	}
	if b := s.balance(t, id); b != 0 {
		t.Errorf("balance %d, want 0: vouchers spend no points", b)
	}
}

func TestConcurrentUsesOfOneVoucherSucceedOnce(t *testing.T) {
	s := newRewardsShop(t)
	ctx := context.Background()
	id, card := s.member(t, "oslo-1")
	v, err := s.db.CreateVoucher(ctx, id, models.VoucherInput{Reward: "coffee", ExpiresAt: time.Now().Add(time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	codes := redeemAtOnce(s, 16, func(i int) models.RedemptionInput {
		return models.RedemptionInput{ID: fmt.Sprintf("RD-%d", i), Store: "oslo-1", Member: &models.MemberRef{Card: card}, Voucher: v.Code}
	})
	if codes["created"] != 1 || codes[models.EVOUCHERUSED] != 15 {
		t.Errorf("outcomes %v, want 1 created and 15 voucher_used", codes)
	}
}
