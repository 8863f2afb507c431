package models_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// rewardsShop is a store with a register, a program of 1 point per krone (no visit points, no
// expiry unless set) and rewards: coffee (10 points, 35.00 off), bag (100 points, 50.00 off)
// and tenoff (20 points, 10 % off).
type rewardsShop struct {
	db    *models.DB
	till  *models.Principal
	sales atomic.Int64
	cards atomic.Int64
}

func newRewardsShop(t *testing.T) *rewardsShop {
	t.Helper()
	db, p := fixture(t)
	s := &rewardsShop{db: db, till: p}
	s.program(t, `{"points_per_visit": 0, "points_per_major_unit": 1}`)
	for _, r := range []string{
		`{"code": "coffee", "name": "Free coffee", "cost_points": 10, "discount_minor": 3500}`,
		`{"code": "bag", "name": "Tote bag", "cost_points": 100, "discount_minor": 5000}`,
		`{"code": "tenoff", "name": "10 % off", "cost_points": 20, "discount_percent": 10}`,
	} {
		var in models.RewardInput
		mustJSON(t, r, &in)
		if _, err := db.CreateReward(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
}

func (s *rewardsShop) program(t *testing.T, body string) {
	t.Helper()
	var in models.RewardProgramInput
	mustJSON(t, body, &in)
	if _, err := s.db.SetRewardProgram(context.Background(), in); err != nil {
		t.Fatal(err)
	}
}

// member enrols a member (home store oslo-1 unless home is "-": none) and returns id and card.
func (s *rewardsShop) member(t *testing.T, home string) (int64, string) {
	t.Helper()
	card := models.WithCheckDigit(fmt.Sprintf("21%010d", s.cards.Add(1)))
	var id int64
	if err := s.db.Pool.QueryRow(context.Background(), `
		INSERT INTO members (card, name, status, marketing_consent, source, home_store_id)
		VALUES ($1, 'Kari', 'active', 'none', 'till', (SELECT id FROM stores WHERE code = $2)) RETURNING id`,
		card, home).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id, card
}

// earn posts a sale worth points (1 point per krone) for card.
func (s *rewardsShop) earn(t *testing.T, card string, points int) {
	t.Helper()
	in := models.TransactionInput{ID: fmt.Sprintf("S-%d", s.sales.Add(1)), Store: "oslo-1", Kind: "sale",
		OccurredAt: "2026-11-02T10:00:00Z", Amount: models.NewInt(int64(points) * 100), Currency: "NOK",
		Member: &models.MemberRef{Card: card}}
	tx, _, err := s.db.RecordTransaction(context.Background(), s.till, in)
	if err != nil {
		t.Fatal(err)
	}
	if tx.PointsEarned != points {
		t.Fatalf("sale earned %d points, want %d", tx.PointsEarned, points)
	}
}

func (s *rewardsShop) balance(t *testing.T, id int64) int {
	t.Helper()
	return countRows(t, s.db, `SELECT coalesce(sum(points), 0)::int FROM points_ledger WHERE member_id = $1`, id)
}

func TestRewardProgramIsValidatedAndReplaced(t *testing.T) {
	db, _ := fixture(t)
	ctx := context.Background()
	if _, err := db.FindRewardProgram(ctx); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("no program yet: %v, want not found", err)
	}
	bad := []struct{ name, body, field string }{
		{"points_per_visit is required", `{"points_per_major_unit": 0}`, "points_per_visit"},
		{"points_per_major_unit is required", `{"points_per_visit": 1}`, "points_per_major_unit"},
		{"negative visit points are refused", `{"points_per_visit": -1, "points_per_major_unit": 0}`, "points_per_visit"},
		{"a million and one visit points are refused", `{"points_per_visit": 1000001, "points_per_major_unit": 0}`, "points_per_visit"},
		{"visit points as a string are refused", `{"points_per_visit": "1", "points_per_major_unit": 0}`, "points_per_visit"},
		{"negative unit points are refused", `{"points_per_visit": 1, "points_per_major_unit": -0.5}`, "points_per_major_unit"},
		{"five decimals of unit points are refused", `{"points_per_visit": 1, "points_per_major_unit": 0.00001}`, "points_per_major_unit"},
		{"a negative min_amount is refused", `{"points_per_visit": 1, "points_per_major_unit": 0, "min_amount": -1}`, "min_amount"},
		{"a decimal min_amount is refused", `{"points_per_visit": 1, "points_per_major_unit": 0, "min_amount": 50.5}`, "min_amount"},
		{"zero expiry days are refused", `{"points_per_visit": 1, "points_per_major_unit": 0, "expire_after_days": 0}`, "expire_after_days"},
		{"a hundred years of expiry are refused", `{"points_per_visit": 1, "points_per_major_unit": 0, "expire_after_days": 36501}`, "expire_after_days"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			var in models.RewardProgramInput
			mustJSON(t, tc.body, &in)
			_, err := db.SetRewardProgram(ctx, in)
			var e *models.Error
			if models.ErrorCode(err) != models.EINVALID || !asError(err, &e) || e.Fields[tc.field] == "" {
				t.Fatalf("got %v, want invalid naming %s", err, tc.field)
			}
		})
	}
	var in models.RewardProgramInput
	mustJSON(t, `{"points_per_visit": 1, "points_per_major_unit": 0.1, "min_amount": 5000, "expire_after_days": 365}`, &in)
	if _, err := db.SetRewardProgram(ctx, in); err != nil {
		t.Fatal(err)
	}
	in = models.RewardProgramInput{}
	mustJSON(t, `{"points_per_visit": 2, "points_per_major_unit": 0.25, "expire_after_days": null}`, &in)
	if _, err := db.SetRewardProgram(ctx, in); err != nil {
		t.Fatal(err)
	}
	p, err := db.FindRewardProgram(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.PointsPerVisit != 2 || p.PointsPerMajorUnit != 0.25 || p.MinAmount != 0 || p.ExpireAfterDays != nil {
		t.Errorf("program %+v, want the second one, min_amount 0, never expiring", p)
	}
	if n := countRows(t, db, `SELECT count(*) FROM reward_program`); n != 1 {
		t.Errorf("%d program rows, want 1", n)
	}
}

func asError(err error, e **models.Error) bool {
	me, ok := err.(*models.Error)
	*e = me
	return ok
}

func TestRewardsAreValidatedCreatedAndChanged(t *testing.T) {
	s := newRewardsShop(t)
	ctx := context.Background()
	bad := []struct{ name, body, field string }{
		{"a reward without code is refused", `{"name": "X", "cost_points": 1, "discount_minor": 100}`, "code"},
		{"a code with capitals is refused", `{"code": "Coffee", "name": "X", "cost_points": 1, "discount_minor": 100}`, "code"},
		{"a reward without name is refused", `{"code": "x", "cost_points": 1, "discount_minor": 100}`, "name"},
		{"an empty name is refused", `{"code": "x", "name": "", "cost_points": 1, "discount_minor": 100}`, "name"},
		{"a reward without cost is refused", `{"code": "x", "name": "X", "discount_minor": 100}`, "cost_points"},
		{"a cost of 0 is refused", `{"code": "x", "name": "X", "cost_points": 0, "discount_minor": 100}`, "cost_points"},
		{"a reward without discount is refused", `{"code": "x", "name": "X", "cost_points": 1}`, "discount_minor"},
		{"both discounts are refused", `{"code": "x", "name": "X", "cost_points": 1, "discount_minor": 100, "discount_percent": 5}`, "discount_minor"},
		{"a decimal discount_minor is refused", `{"code": "x", "name": "X", "cost_points": 1, "discount_minor": 1.5}`, "discount_minor"},
		{"0 percent is refused", `{"code": "x", "name": "X", "cost_points": 1, "discount_percent": 0}`, "discount_percent"},
		{"101 percent is refused", `{"code": "x", "name": "X", "cost_points": 1, "discount_percent": 101}`, "discount_percent"},
		{"three decimals of percent are refused", `{"code": "x", "name": "X", "cost_points": 1, "discount_percent": 12.345}`, "discount_percent"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			var in models.RewardInput
			mustJSON(t, tc.body, &in)
			_, err := s.db.CreateReward(ctx, in)
			var e *models.Error
			if models.ErrorCode(err) != models.EINVALID || !asError(err, &e) || e.Fields[tc.field] == "" {
				t.Fatalf("got %v, want invalid naming %s", err, tc.field)
			}
		})
	}
	var in models.RewardInput
	mustJSON(t, `{"code": "coffee", "name": "Again", "cost_points": 5, "discount_minor": 100}`, &in)
	if _, err := s.db.CreateReward(ctx, in); models.ErrorCode(err) != models.ECONFLICT {
		t.Errorf("a taken code: %v, want conflict", err)
	}
	rewards, err := s.db.FindRewards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rewards) != 3 || rewards[0].Code != "coffee" || rewards[1].Code != "tenoff" || rewards[2].Code != "bag" {
		t.Errorf("rewards %+v, want coffee, tenoff, bag (cheapest first)", rewards)
	}
	if !rewards[0].Active || rewards[0].DiscountMinor == nil || *rewards[0].DiscountMinor != 3500 || rewards[0].DiscountPercent != nil {
		t.Errorf("coffee %+v", rewards[0])
	}

	in = models.RewardInput{}
	mustJSON(t, `{"discount_percent": 12.5, "active": false}`, &in)
	r, err := s.db.UpdateReward(ctx, "coffee", in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "Free coffee" || r.CostPoints != 10 || r.DiscountMinor != nil || r.DiscountPercent == nil || *r.DiscountPercent != 12.5 || r.Active {
		t.Errorf("after the patch %+v, want the percent instead of the amount, inactive, the rest unchanged", r)
	}
	in = models.RewardInput{}
	mustJSON(t, `{"code": "tea"}`, &in)
	if _, err := s.db.UpdateReward(ctx, "coffee", in); models.ErrorCode(err) != models.EINVALID {
		t.Errorf("changing the code: %v, want invalid", err)
	}
	in = models.RewardInput{}
	mustJSON(t, `{"cost_points": -3}`, &in)
	if _, err := s.db.UpdateReward(ctx, "coffee", in); models.ErrorCode(err) != models.EINVALID {
		t.Errorf("a negative cost: %v, want invalid", err)
	}
	if _, err := s.db.UpdateReward(ctx, "nope", models.RewardInput{}); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("an unknown reward: %v, want not found", err)
	}
}

func TestLookupShowsPointsRewardsAndVouchers(t *testing.T) {
	db, p := fixture(t)
	ctx := context.Background()
	s := &rewardsShop{db: db, till: p}
	id, card := s.member(t, "oslo-1")
	m, err := db.LookupMember(ctx, card, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Points != nil || m.Vouchers != nil {
		t.Errorf("without a program or vouchers: points %+v, vouchers %+v, want neither", m.Points, m.Vouchers)
	}
	s.program(t, `{"points_per_visit": 0, "points_per_major_unit": 1}`)
	for _, r := range []string{
		`{"code": "coffee", "name": "Free coffee", "cost_points": 10, "discount_minor": 3500}`,
		`{"code": "bag", "name": "Tote bag", "cost_points": 100, "discount_minor": 5000}`,
		`{"code": "old", "name": "Gone", "cost_points": 1, "discount_minor": 100, "active": false}`,
	} {
		var in models.RewardInput
		mustJSON(t, r, &in)
		if _, err := db.CreateReward(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	s.earn(t, card, 12)
	m, err = db.LookupMember(ctx, card, "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []models.LookupReward{{Code: "coffee", Name: "Free coffee", CostPoints: 10, Affordable: true},
		{Code: "bag", Name: "Tote bag", CostPoints: 100, Affordable: false}}
	if m.Points == nil || m.Points.Balance != 12 || fmt.Sprint(m.Points.Rewards) != fmt.Sprint(want) {
		t.Errorf("points %+v, want balance 12 and %+v", m.Points, want)
	}
	if m.Vouchers == nil || len(m.Vouchers) != 0 {
		t.Errorf("vouchers %+v, want an empty list", m.Vouchers)
	}
	later := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	v, err := db.CreateVoucher(ctx, id, models.VoucherInput{Reward: "bag", ExpiresAt: later.Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	used, err := db.CreateVoucher(ctx, id, models.VoucherInput{Reward: "coffee", ExpiresAt: later.Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Redeem(ctx, p, models.RedemptionInput{ID: "RD-1", Store: "oslo-1", Member: &models.MemberRef{Card: card}, Voucher: used.Code}); err != nil {
		t.Fatal(err)
	}
	m, err = db.LookupMember(ctx, card, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Vouchers) != 1 || m.Vouchers[0].Code != v.Code || m.Vouchers[0].Name != "Tote bag" || !m.Vouchers[0].ExpiresAt.Equal(later) {
		t.Errorf("vouchers %+v, want only the unused %s", m.Vouchers, v.Code)
	}
	// An expired voucher is not shown.
	db.Now = func() time.Time { return later.Add(time.Minute) }
	if m, err = db.LookupMember(ctx, card, "", ""); err != nil || len(m.Vouchers) != 0 {
		t.Errorf("after expiry: vouchers %+v (%v), want none", m.Vouchers, err)
	}

	// Without a program, a member with a voucher still sees points and vouchers.
	if _, err := db.Pool.Exec(ctx, `DELETE FROM reward_program`); err != nil {
		t.Fatal(err)
	}
	db.Now = time.Now
	if m, err = db.LookupMember(ctx, card, "", ""); err != nil || m.Points == nil || len(m.Vouchers) != 1 {
		t.Errorf("no program but a voucher: %+v (%v), want points and the voucher", m, err)
	}
}

func TestMemberPointsPagesTheLedgerNewestFirst(t *testing.T) {
	s := newRewardsShop(t)
	ctx := context.Background()
	id, card := s.member(t, "oslo-1")
	s.earn(t, card, 30) // S-1
	if _, _, err := s.db.Redeem(ctx, s.till, models.RedemptionInput{ID: "RD-1", Store: "oslo-1", Member: &models.MemberRef{Card: card}, Reward: "coffee"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.CancelRedemption(ctx, s.till, "oslo-1", "RD-1"); err != nil {
		t.Fatal(err)
	}
	page, err := s.db.FindMemberPoints(ctx, id, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if page.Balance != 30 || len(page.Entries) != 2 || page.NextBefore == nil {
		t.Fatalf("first page %+v, want balance 30, 2 entries and a next page", page)
	}
	e := page.Entries
	if e[0].Kind != "cancelled" || e[0].Points != 10 || e[0].Redemption == nil || *e[0].Redemption != (models.SourceRef{Store: "oslo-1", ID: "RD-1"}) {
		t.Errorf("newest %+v, want the cancellation of RD-1", e[0])
	}
	if e[1].Kind != "spent" || e[1].Points != -10 || e[1].Redemption == nil || e[1].Transaction != nil {
		t.Errorf("second %+v, want the spending of RD-1", e[1])
	}
	page, err = s.db.FindMemberPoints(ctx, id, 2, *page.NextBefore)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Entries) != 1 || page.NextBefore != nil {
		t.Fatalf("last page %+v, want 1 entry and no next page", page)
	}
	if e := page.Entries[0]; e.Kind != "earned" || e.Points != 30 || e.Transaction == nil || *e.Transaction != (models.SourceRef{Store: "oslo-1", ID: "S-1"}) || e.ExpiresAt != nil {
		t.Errorf("oldest %+v, want the never-expiring credit of S-1", e)
	}
	if _, err := s.db.FindMemberPoints(ctx, id+1000, 10, 0); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("unknown member: %v, want not found", err)
	}
	for _, limit := range []int{0, -1, models.MaxPointsPage + 1} {
		if _, err := s.db.FindMemberPoints(ctx, id, limit, 0); models.ErrorCode(err) != models.EINVALID {
			t.Errorf("limit %d: %v, want invalid", limit, err)
		}
	}
}

func TestLiabilityValuesOutstandingPointsAndWhatExpiresFirstInFirstOut(t *testing.T) {
	s := newRewardsShop(t)
	ctx := context.Background()
	if _, err := s.db.CreateStore(ctx, models.StoreInput{Code: "bergen-1", Name: "Bergen", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	// A cheaper rate than bag's 50 per point, but inactive: it does not count.
	var in models.RewardInput
	mustJSON(t, `{"code": "cheap", "name": "Cheap", "cost_points": 100, "discount_minor": 100, "active": false}`, &in)
	if _, err := s.db.CreateReward(ctx, in); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	kari, kariCard := s.member(t, "oslo-1")
	ola, olaCard := s.member(t, "bergen-1")
	_, noneCard := s.member(t, "-")
	s.program(t, `{"points_per_visit": 0, "points_per_major_unit": 1, "expire_after_days": 20}`)
	s.earn(t, kariCard, 10) // expires in 20 days
	s.earn(t, olaCard, 4)   // expires in 20 days
	s.program(t, `{"points_per_visit": 0, "points_per_major_unit": 1, "expire_after_days": 60}`)
	s.earn(t, kariCard, 10) // expires in 60 days
	s.earn(t, noneCard, 7)  // expires in 60 days
	// Kari spends 10: the oldest credit goes first, so 0 of the first 10 are left to expire in
	// 30 days and her 10 left expire within 90.
	if _, _, err := s.db.Redeem(ctx, s.till, models.RedemptionInput{ID: "RD-1", Store: "oslo-1", Member: &models.MemberRef{Card: kariCard}, Reward: "coffee"}); err != nil {
		t.Fatal(err)
	}
	// Ola refunds his whole sale: his 4 points go, and he has nothing outstanding.
	refund := models.TransactionInput{ID: "RF-1", Store: "oslo-1", Kind: "refund", OccurredAt: "2026-11-03T10:00:00Z",
		Amount: models.NewInt(400), Currency: "NOK", Refunds: "S-2"}
	if _, _, err := s.db.RecordTransaction(ctx, s.till, refund); err != nil {
		t.Fatal(err)
	}
	if b := s.balance(t, ola); b != 0 {
		t.Fatalf("ola's balance %d after the refund, want 0", b)
	}
	if b := s.balance(t, kari); b != 10 {
		t.Fatalf("kari's balance %d, want 10", b)
	}

	l, err := s.db.FindRewardsLiability(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if l.Reward == nil || *l.Reward != "bag" || l.RatePerPoint == nil || *l.RatePerPoint != 50 {
		t.Fatalf("rate %v of %v, want 50 per point of bag", l.RatePerPoint, l.Reward)
	}
	wantTotal := models.LiabilityFigures{Members: 2, PointsOutstanding: 17, ValueMinor: ptr64(850), ExpiringWithin30Days: 0, ExpiringWithin90Days: 17}
	if fmt.Sprint(figures(l.Total)) != fmt.Sprint(figures(wantTotal)) {
		t.Errorf("total %v, want %v", figures(l.Total), figures(wantTotal))
	}
	want := map[string]models.LiabilityFigures{
		"oslo-1":   {Members: 1, PointsOutstanding: 10, ValueMinor: ptr64(500), ExpiringWithin90Days: 10},
		"bergen-1": {Members: 0, PointsOutstanding: 0, ValueMinor: ptr64(0)},
		"<none>":   {Members: 1, PointsOutstanding: 7, ValueMinor: ptr64(350), ExpiringWithin90Days: 7},
	}
	if len(l.Stores) != 3 || l.Stores[2].Store != nil {
		t.Fatalf("stores %+v, want three rows, the one without a store last", l.Stores)
	}
	for _, row := range l.Stores {
		name := "<none>"
		if row.Store != nil {
			name = *row.Store
		}
		if fmt.Sprint(figures(row.LiabilityFigures)) != fmt.Sprint(figures(want[name])) {
			t.Errorf("store %s: %v, want %v", name, figures(row.LiabilityFigures), figures(want[name]))
		}
	}

	// Cancelled, then 4 spent: the oldest credit goes first, so 6 of it are left to expire
	// within 30 days, and her 16 within 90.
	if _, err := s.db.CancelRedemption(ctx, s.till, "oslo-1", "RD-1"); err != nil {
		t.Fatal(err)
	}
	var tea models.RewardInput
	mustJSON(t, `{"code": "tea", "name": "Tea", "cost_points": 4, "discount_minor": 1500}`, &tea)
	if _, err := s.db.CreateReward(ctx, tea); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.db.Redeem(ctx, s.till, models.RedemptionInput{ID: "RD-2", Store: "oslo-1", Member: &models.MemberRef{Card: kariCard}, Reward: "tea"}); err != nil {
		t.Fatal(err)
	}
	if l, err = s.db.FindRewardsLiability(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if l.Total.PointsOutstanding != 23 || l.Total.ExpiringWithin30Days != 6 || l.Total.ExpiringWithin90Days != 23 {
		t.Errorf("after spending 4 of kari's 20: %v, want 23 outstanding, 6 within 30 days, 23 within 90", figures(l.Total))
	}
	// 35 days on, the 60-day credits are due within 30 days as well.
	if l, err = s.db.FindRewardsLiability(ctx, time.Now().Add(35*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if l.Total.ExpiringWithin30Days != 23 {
		t.Errorf("35 days on: %v, want 23 within 30 days", figures(l.Total))
	}
	// As of before anything was written, nothing is outstanding.
	if l, err = s.db.FindRewardsLiability(ctx, start.Add(-time.Hour)); err != nil || len(l.Stores) != 0 || l.Total.PointsOutstanding != 0 {
		t.Errorf("as of before: %+v (%v), want nothing", l, err)
	}

	// Only percent rewards active: no value.
	for _, code := range []string{"coffee", "bag", "tea"} {
		var off models.RewardInput
		mustJSON(t, `{"active": false}`, &off)
		if _, err := s.db.UpdateReward(ctx, code, off); err != nil {
			t.Fatal(err)
		}
	}
	if l, err = s.db.FindRewardsLiability(ctx, time.Now()); err != nil || l.RatePerPoint != nil || l.Total.ValueMinor != nil {
		t.Errorf("percent rewards only: %+v (%v), want no rate and no value", l, err)
	}
}

func ptr64(v int64) *int64 { return &v }

// figures prints liability figures with the value dereferenced, for comparison.
func figures(f models.LiabilityFigures) string {
	v := "null"
	if f.ValueMinor != nil {
		v = fmt.Sprint(*f.ValueMinor)
	}
	return fmt.Sprintf("members %d, outstanding %d, value %s, 30 days %d, 90 days %d",
		f.Members, f.PointsOutstanding, v, f.ExpiringWithin30Days, f.ExpiringWithin90Days)
}
