package segments

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBoughtAndMailFieldsSelectTheExpectedMembers adds a catalogue, receipt lines, refunds that
// name their sales, campaigns with recipients and clicks, and languages to the fixture
// (query_test.go). The lines, by sale (days before the as-of time, as in the fixture):
//
//	sale  member  when               skus             note
//	R-0   ada     10 days            LP-1, GHOST-9    GHOST-9 is not in the catalogue
//	R-1   ada     100 days           BN-1
//	R-2   ben     70 days            LP-1             ben's refund R-3 names no sale; R-10 names R-2 but comes after as-of
//	R-4   cai     400 days + 1 h     TEA-1            outside the default 365 days; inside within_days 401
//	R-5   eva     1 hour             TEA-1
//	R-6   eva     exactly 365 days   BN-1             the default window's first instant: in
//	R-7   eva     1 day after as-of  LP-1             not yet
//	R-8   fil     30 days            LP-1             refunded by R-9, which names it: does not count
//
// Catalogue: LP-1 (category "Coffee", brand "House"), BN-1 ("BAKERY", "Nonna's"), TEA-1 ("tea",
// "HOUSE").
//
// Mail: campaign A was sent to ada (3 days ago) and ben (40 days ago), and to cai only after
// as-of; ada clicked it; campaign B went to eva 10 days ago, queued for dag (never sent),
// dag clicked nothing. Languages: ada nb, ben sv, the others en.
func TestBoughtAndMailFieldsSelectTheExpectedMembers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	day := 24 * time.Hour
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := f.db.Pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	exec(`INSERT INTO products (sku, name, category, brand, price_minor) VALUES
		('LP-1', 'Latte', 'Coffee', 'House', 4500), ('BN-1', 'Bun', 'BAKERY', 'Nonna''s', 3000),
		('TEA-1', 'Tea', 'tea', 'HOUSE', 2500)`)
	exec(`UPDATE transactions SET refunds_txn_id = 'R-8' WHERE txn_id = 'R-9'`)
	exec(`INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, refunds_txn_id, content_hash)
		SELECT store_id, 'R-10', 'refund', $1, 30000, 'NOK', member_id, 'R-2', '\x00' FROM transactions WHERE txn_id = 'R-2'`,
		f.asOf.Add(time.Hour))
	for txn, skus := range map[string][]string{
		"R-0": {"LP-1", "GHOST-9"}, "R-1": {"BN-1"}, "R-2": {"LP-1"}, "R-4": {"TEA-1"},
		"R-5": {"TEA-1"}, "R-6": {"BN-1"}, "R-7": {"LP-1"}, "R-8": {"LP-1"},
	} {
		for i, sku := range skus {
			exec(`INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
				SELECT id, $2, $3, 1, 100 FROM transactions WHERE txn_id = $1`, txn, i+1, sku)
		}
	}
	campaign := func(name string) int64 {
		t.Helper()
		var id int64
		if err := f.db.Pool.QueryRow(ctx, `INSERT INTO campaigns (name, subject, text) VALUES ($1, $1, 'x') RETURNING id`, name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a, b := campaign("A"), campaign("B")
	run := func(campaign int64, at time.Time) int64 {
		t.Helper()
		var id int64
		if err := f.db.Pool.QueryRow(ctx, `INSERT INTO campaign_runs (campaign_id, scheduled_for, status) VALUES ($1, $2, 'sent') RETURNING id`,
			campaign, at).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	runA1, runA2, runB := run(a, f.asOf.Add(-40*day)), run(a, f.asOf.Add(day)), run(b, f.asOf.Add(-10*day))
	for _, r := range []struct {
		run    int64
		member string
		status string
		sentAt *time.Time
	}{
		{runA1, "ada", "sent", ptrTime(f.asOf.Add(-3*day - time.Hour))}, // a late retry of the first run
		{runA1, "ben", "sent", ptrTime(f.asOf.Add(-40*day - time.Hour))},
		{runA2, "cai", "sent", ptrTime(f.asOf.Add(day + time.Hour))},
		{runB, "eva", "sent", ptrTime(f.asOf.Add(-10*day - time.Hour))},
		{runB, "dag", "queued", nil},
	} {
		exec(`INSERT INTO campaign_recipients (run_id, member_id, email, status, sent_at) VALUES ($1, $2, 'x@example.org', $3, $4)`,
			r.run, f.ids[r.member], r.status, r.sentAt)
	}
	var link int64
	if err := f.db.Pool.QueryRow(ctx, `INSERT INTO campaign_links (campaign_id, url) VALUES ($1, 'https://example.org') RETURNING id`, a).Scan(&link); err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO campaign_clicks (run_id, member_id, link_id, clicked_at) VALUES ($1, $2, $3, $4), ($1, $5, $3, $6)`,
		runA1, f.ids["ada"], link, f.asOf.Add(-2*day), f.ids["ben"], f.asOf.Add(time.Hour)) // ben clicks after as-of
	exec(`UPDATE members SET language = CASE name WHEN 'ada' THEN 'nb' WHEN 'ben' THEN 'sv' ELSE 'en' END`)

	// ids puts campaign ids where a tree says IDS.
	ids := func(s string, vs ...int64) string {
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = strconv.FormatInt(v, 10)
		}
		return strings.ReplaceAll(s, "IDS", strings.Join(parts, ", "))
	}
	tests := []struct {
		name, tree, want string
	}{
		{"bought a sku in the default 365 days", `{"field": "bought_sku", "op": "eq", "value": "LP-1"}`, "ada ben"},
		{"a sku not in the catalogue still counts", `{"field": "bought_sku", "op": "eq", "value": "GHOST-9"}`, "ada"},
		{"bought any of a list of skus", `{"field": "bought_sku", "op": "in", "value": ["TEA-1", "GHOST-9"]}`, "ada eva"},
		{"skus are exact, not case-folded", `{"field": "bought_sku", "op": "eq", "value": "lp-1"}`, ""},
		{"a refund naming the sale takes its lines back", `{"all": [{"field": "bought_sku", "op": "eq", "value": "LP-1"}, {"field": "home_store", "op": "eq", "value": "bergen-1"}]}`, ""},
		{"within_days 400 stops an hour short of a sale 400 days and an hour ago", `{"field": "bought_sku", "op": "eq", "value": "TEA-1", "within_days": 400}`, "eva"},
		{"within_days 401 reaches it", `{"field": "bought_sku", "op": "eq", "value": "TEA-1", "within_days": 401}`, "cai eva"},
		{"the default window includes its first instant", `{"field": "bought_category", "op": "eq", "value": "bakery"}`, "ada eva"},
		{"within_days 364 leaves that instant out", `{"field": "bought_category", "op": "eq", "value": "bakery", "within_days": 364}`, "ada"},
		{"categories ignore case", `{"field": "bought_category", "op": "eq", "value": "COFFEE"}`, "ada ben"},
		{"a category list", `{"field": "bought_category", "op": "in", "value": ["Tea", "coffee"]}`, "ada ben eva"},
		{"a short window on a category", `{"field": "bought_category", "op": "in", "value": ["Tea", "coffee"], "within_days": 30}`, "ada eva"},
		{"an unknown category matches nobody", `{"field": "bought_category", "op": "eq", "value": "ghost"}`, ""},
		{"brands ignore case", `{"field": "bought_brand", "op": "eq", "value": "house"}`, "ada ben eva"},
		{"a brand with an apostrophe", `{"field": "bought_brand", "op": "eq", "value": "NONNA'S"}`, "ada eva"},
		{"not bought is the complement", `{"not": {"field": "bought_sku", "op": "eq", "value": "LP-1"}}`, "cai dag eva fil"},
		{"received a campaign before as-of", ids(`{"field": "received_campaign", "op": "eq", "value": IDS}`, a), "ada ben"},
		{"received any of two campaigns; queued is not received", ids(`{"field": "received_campaign", "op": "in", "value": [IDS]}`, a, b), "ada ben eva"},
		{"clicked a campaign before as-of", ids(`{"field": "clicked_campaign", "op": "eq", "value": IDS}`, a), "ada"},
		{"clicked nothing in another campaign", ids(`{"field": "clicked_campaign", "op": "eq", "value": IDS}`, b), ""},
		{"days since the last mail", `{"field": "days_since_last_mail", "op": "lte", "value": 10}`, "ada eva"},
		{"days since the last mail, exactly", `{"field": "days_since_last_mail", "op": "eq", "value": 40}`, "ben"},
		{"never mailed before as-of is null", `{"field": "days_since_last_mail", "op": "is_null"}`, "cai dag fil"},
		{"language ignores case", `{"field": "language", "op": "eq", "value": "NB"}`, "ada"},
		{"language not in a list", `{"field": "language", "op": "not_in", "value": ["nb", "en"]}`, "ben"},
		{"a quote in a category matches nothing", `{"field": "bought_category", "op": "eq", "value": "x' OR 1=1 --"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(f.members(t, mustParse(t, tt.tree)), " ")
			if got != tt.want {
				t.Errorf("got [%s], want [%s]", got, tt.want)
			}
		})
	}
}

func ptrTime(t time.Time) *time.Time { return &t }

// within_days is refused on other fields and out of range: TestInvalidTreesNameTheBadPath.
func TestWithinDaysSurvivesAJSONRoundTripAndIsListed(t *testing.T) {
	t.Parallel()
	src := `{"field":"bought_category","op":"in","value":["coffee","tea"],"within_days":30}`
	var n Node
	if err := json.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	if out, err := json.Marshal(&n); err != nil || string(out) != src {
		t.Errorf("got %s %v, want %s", out, err, src)
	}
	for _, f := range Fields() {
		want := strings.HasPrefix(f.Name, "bought_")
		if f.WithinDays != want {
			t.Errorf("%s: within_days %v, want %v", f.Name, f.WithinDays, want)
		}
	}
}
