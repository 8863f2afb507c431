package flows

import (
	"context"
	"testing"
	"time"
)

// TestStatsMargin: the flow report's margin is over the receipt lines of the purchases in its
// revenue (matured mailed entries, within their window): here one sale of A×3 @1500 (A costs
// 1000: margin 1500) and a line of Z, which is not in the catalogue (counted, not costed). The
// mailed member's sale before entering and the held-out member's sale count nowhere.
func TestStatsMargin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in, err := ParseInput([]byte(`{"name": "Win back", "trigger": {"event": "lapsed", "days": 60}, "holdout_percent": 50, ` + oneMail + `}`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Create(ctx, e.db, testFrom, in)
	if err != nil {
		t.Fatal(err)
	}
	entered := time.Now().Add(-20 * 24 * time.Hour)
	for _, held := range []bool{false, true} {
		id, card := e.member(t, "confirmed")
		e.exec(t, `INSERT INTO flow_entries (flow_id, member_id, event_key, held_out, entered_at, status, finished_at)
			VALUES ($1, $2, 'lapsed:1', $3, $4, 'done', now())`, f.ID, id, held, entered)
		e.sale(t, card, entered.Add(3*24*time.Hour))
		if !held {
			e.sale(t, card, entered.Add(-20*24*time.Hour))
		}
	}
	e.exec(t, `INSERT INTO products (sku, name, price_minor, cost_minor) VALUES ('A', 'A', 1500, 1000)`)
	e.exec(t, `INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor) SELECT id, 1, 'A', 3, 1500 FROM transactions`)
	e.exec(t, `INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
		SELECT t.id, 2, 'Z', 1, 0 FROM transactions t JOIN flow_entries fe ON fe.member_id = t.member_id AND NOT fe.held_out
		WHERE t.occurred_at > fe.entered_at`)
	st, err := FindFlowStats(ctx, e.db, f.ID, 7)
	if err != nil {
		t.Fatal(err)
	}
	m := st.Revenue.Margin
	if m.Lines != 2 || m.UnknownCostLines != 1 || m.KnownCostRevenue == nil || *m.KnownCostRevenue != 4500 ||
		m.GrossMargin == nil || *m.GrossMargin != 1500 {
		t.Errorf("margin %+v (known-cost revenue %v, gross margin %v); want 2 lines, 1 of unknown cost, 4500 and 1500",
			m, m.KnownCostRevenue, m.GrossMargin)
	}
}
