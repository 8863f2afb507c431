package flows

import (
	"context"
	"strings"
	"testing"
	"time"
)

// rewardsEnv is env with a points program (1 point a visit, 1 per 10 NOK) and a coffee reward
// costing 10.
func rewardsEnv(t *testing.T) *env {
	e := newEnv(t)
	e.exec(t, `INSERT INTO reward_program (points_per_visit, points_per_major_unit) VALUES (1, 0.1)`)
	e.exec(t, `INSERT INTO rewards (code, name, cost_points, discount_minor) VALUES ('coffee', 'Free coffee', 10, 3500)`)
	return e
}

// TestVoucherStepIssuesOncePerEntry: members walking the flow get one voucher each, valid for
// the step's expires_in; held-out members get none; ticking again issues nothing more.
func TestVoucherStepIssuesOncePerEntry(t *testing.T) {
	e := rewardsEnv(t)
	for range 40 {
		_, card := e.member(t, "confirmed")
		e.sale(t, card, time.Now().Add(-90*24*time.Hour))
	}
	f := e.flow(t, `{"name": "Win back", "trigger": {"event": "lapsed", "days": 60}, "holdout_percent": 50,
		"steps": [{"voucher": "coffee", "expires_in": "168h"}, {"mail": {"subject": "A coffee on us", "text": "Show your card."}}]}`)
	en := e.engine()
	e.tick(t, en)
	e.tick(t, en)
	held := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND held_out`, f.ID)
	if n := e.count(t, `SELECT count(*) FROM vouchers WHERE issued_by = 'flow' AND source_key LIKE 'flow:' || $1::bigint || ':%'`, f.ID); n != 40-held {
		t.Errorf("%d vouchers, want %d (one per member not held out)", n, 40-held)
	}
	if n := e.count(t, `SELECT count(*) FROM vouchers v JOIN flow_entries fe ON fe.member_id = v.member_id WHERE fe.held_out`); n != 0 {
		t.Errorf("%d held-out members got a voucher", n)
	}
	var life time.Duration
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT max(expires_at - created_at) FROM vouchers`).Scan(&life); err != nil {
		t.Fatal(err)
	}
	if life != 168*time.Hour {
		t.Errorf("vouchers valid %v, want 168h", life)
	}
	if n := e.count(t, `SELECT count(*) FROM flow_entries WHERE flow_id = $1 AND status = 'done'`, f.ID); n != 40 {
		t.Errorf("%d members done, want 40", n)
	}
	// One is redeemed at a till, one redeemed and cancelled: the report counts one.
	for i, cancelled := range []bool{false, true} {
		e.exec(t, `INSERT INTO redemptions (store_id, txn_id, member_id, reward_code, voucher_id, points_spent, content_hash, cancelled_at)
			SELECT (SELECT id FROM stores), 'RD-' || $1::int, v.member_id, v.reward_code, v.id, 0, '\x00', CASE WHEN $2 THEN now() END
			FROM vouchers v ORDER BY v.id OFFSET $1::int LIMIT 1`, i, cancelled)
	}
	st, err := FindFlowStats(context.Background(), e.db, f.ID, 7)
	if err != nil {
		t.Fatal(err)
	}
	if st.VouchersIssued != int64(40-held) || st.VouchersRedeemed != 1 {
		t.Errorf("report: %d vouchers issued, %d redeemed; want %d and 1", st.VouchersIssued, st.VouchersRedeemed, 40-held)
	}
}

// TestVoucherStepNeedsAnActiveReward: a flow naming an unknown or inactive reward is refused.
func TestVoucherStepNeedsAnActiveReward(t *testing.T) {
	e := rewardsEnv(t)
	e.exec(t, `INSERT INTO rewards (code, name, cost_points, discount_percent, active) VALUES ('old', 'Old', 5, 10, false)`)
	for _, code := range []string{"tea", "old"} {
		in, err := ParseInput([]byte(`{"name": "V", "trigger": {"event": "joined"}, "steps": [{"voucher": "` + code + `"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Create(context.Background(), e.db, testFrom, in); err == nil || !strings.Contains(err.Error(), "steps.0.voucher") {
			t.Errorf("voucher %s: %v, want 422 on steps.0.voucher", code, err)
		}
	}
}

// TestRewardAffordableFiresWhenASaleReachesTheCost: 9 points, then a sale that brings 5 more:
// the flow starts once; a member who already had enough before does not enter again.
func TestRewardAffordableFiresWhenASaleReachesTheCost(t *testing.T) {
	e := rewardsEnv(t)
	reaches, card := e.member(t, "confirmed")
	rich, card2 := e.member(t, "confirmed")
	e.sale(t, card, time.Now().Add(-48*time.Hour))                                                       // 45.00: 1 + 4 = 5
	e.sale(t, card, time.Now().Add(-47*time.Hour))                                                       // 10
	e.sale(t, card2, time.Now().Add(-48*time.Hour))                                                      // 5
	e.sale(t, card2, time.Now().Add(-47*time.Hour))                                                      // 10
	e.exec(t, `INSERT INTO points_ledger (member_id, kind, points) VALUES ($1, 'expired', -6)`, reaches) // 4 left
	f := e.flow(t, `{"name": "Your coffee is ready", "trigger": {"event": "reward_affordable", "reward": "coffee"}, `+oneMail+`}`)
	e.sale(t, card, time.Now())  // 4 + 5 = 9: not yet
	e.sale(t, card2, time.Now()) // 15: had 10 before, no crossing
	e.tick(t, e.engine())
	if got := e.entered(t, f.ID); len(got) != 0 {
		t.Fatalf("entered %v before anyone reached the cost", got)
	}
	e.sale(t, card, time.Now()) // 14: crosses 10
	e.tick(t, e.engine())
	if got := e.entered(t, f.ID); len(got) != 1 || got[reaches] == "" {
		t.Errorf("entered %v, want member %d who reached 10 points (not %d)", got, reaches, rich)
	}
}

// TestFlowMailShowsTheVoucherOfItsStep: a mail after a voucher step shows that voucher's code;
// a mail showing {{.Voucher}} with no voucher step before it is refused.
func TestFlowMailShowsTheVoucherOfItsStep(t *testing.T) {
	e := rewardsEnv(t)
	ctx := context.Background()
	id, card := e.member(t, "confirmed")
	e.sale(t, card, time.Now().Add(-90*24*time.Hour))
	e.flow(t, `{"name": "Win back", "trigger": {"event": "lapsed", "days": 60},
		"steps": [{"voucher": "coffee"}, {"mail": {"subject": "A coffee on us", "text": "Show {{.Voucher.Code}} ({{.Voucher.Name}}) by {{.Voucher.ExpiresAt}}."}}]}`)
	e.tick(t, e.engine())
	e.send(t)
	var code string
	if err := e.db.Pool.QueryRow(ctx, `SELECT code FROM vouchers WHERE member_id = $1`, id).Scan(&code); err != nil {
		t.Fatal(err)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Show "+code+" (Free coffee) by ") {
		t.Fatalf("%d mails; want one showing voucher %s", len(msgs), code)
	}
	in, err := ParseInput([]byte(`{"name": "Early", "trigger": {"event": "joined"},
		"steps": [{"mail": {"subject": "Hi", "text": "{{.Voucher.Code}}"}}, {"voucher": "coffee"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, e.db, testFrom, in); err == nil || !strings.Contains(err.Error(), "steps.0.mail") {
		t.Errorf("a voucher shown before its step: %v, want 422 on steps.0.mail", err)
	}
}
