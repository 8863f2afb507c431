package segments

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Oslo on machines without a zoneinfo database

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// fixture is a small club measured at a fixed as-of time: midnight starting 10 June 2026 in
// Oslo, which is also the shop's timezone for YYYY-MM-DD values.
type fixture struct {
	db   *models.DB
	asOf time.Time
	ids  map[string]int64 // member name → id
}

// The members and their figures as of the fixture's as-of time:
//
//	name  home      status   consent    joined (Oslo)     email domain  days  orders  spend
//	ada   oslo-1    active   confirmed  2024-01-15 10:00  example.org   10    2       70000
//	ben   oslo-1    active   none       2025-03-01 12:00  example.com   70    1       20000 (30000 − refund 10000)
//	cai   oslo-2    pending  pending    2026-06-01 00:30  shop.no       400   0       0 (its sale is older than 365 days)
//	dag   bergen-1  active   withdrawn  2025-12-24 18:00  (no email)    NULL  0       0 (never bought)
//	eva   (none)    active   confirmed  2026-01-01 09:00  example.org   0     2       3000 (one sale on the window's first instant; one after as-of, ignored)
//	fil   bergen-1  erased   none       2023-06-30 08:00  (no email)    30    1       0 (sale refunded in full)
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: dbtest.New(t), asOf: time.Date(2026, 6, 10, 0, 0, 0, 0, oslo), ids: map[string]int64{}}
	stores := map[string]int64{}
	for _, code := range []string{"oslo-1", "oslo-2", "bergen-1"} {
		s, err := f.db.CreateStore(ctx, models.StoreInput{Code: code, Name: code, Timezone: "Europe/Oslo", Currency: "NOK"})
		if err != nil {
			t.Fatal(err)
		}
		stores[code] = s.ID
	}
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, oslo)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	day := 24 * time.Hour
	members := []struct {
		name, home, status, consent string
		joined                      time.Time
		email                       *string
	}{
		{"ada", "oslo-1", "active", "confirmed", at("2024-01-15 10:00"), ptr("ada@example.org")},
		{"ben", "oslo-1", "active", "none", at("2025-03-01 12:00"), ptr("ben@Example.COM")},
		{"cai", "oslo-2", "pending", "pending", at("2026-06-01 00:30"), ptr("cai@shop.no")},
		{"dag", "bergen-1", "active", "withdrawn", at("2025-12-24 18:00"), nil},
		{"eva", "", "active", "confirmed", at("2026-01-01 09:00"), ptr("eva@example.org")},
		{"fil", "bergen-1", "erased", "none", at("2023-06-30 08:00"), nil},
	}
	for i, m := range members {
		var home *int64
		if id, ok := stores[m.home]; ok {
			home = &id
		}
		var id int64
		err := f.db.Pool.QueryRow(ctx, `INSERT INTO members (card, email, name, home_store_id, status, marketing_consent, source, joined_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'test', $7) RETURNING id`,
			fmt.Sprintf("70000000000%02d", i), m.email, m.name, home, m.status, m.consent, m.joined).Scan(&id)
		if err != nil {
			t.Fatalf("insert member %s: %v", m.name, err)
		}
		f.ids[m.name] = id
	}
	// An hour on top of whole days keeps days_since_last_purchase away from a boundary.
	ago := func(days int) time.Time { return f.asOf.Add(-time.Duration(days)*day - time.Hour) }
	txns := []struct {
		member, kind string
		at           time.Time
		amount       int64
	}{
		{"ada", "sale", ago(10), 50000},
		{"ada", "sale", ago(100), 20000},
		{"ben", "sale", ago(70), 30000},
		{"ben", "refund", ago(65), 10000},
		{"cai", "sale", ago(400), 99900},
		{"eva", "sale", f.asOf.Add(-time.Hour), 1000},
		{"eva", "sale", f.asOf.AddDate(0, 0, -365), 2000},
		{"eva", "sale", f.asOf.Add(day), 5000},
		{"fil", "sale", ago(30), 10000},
		{"fil", "refund", ago(20), 10000},
	}
	for i, tx := range txns {
		_, err := f.db.Pool.Exec(ctx, `INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
			VALUES ($1, $2, $3, $4, $5, 'NOK', $6, '\x00')`,
			stores["oslo-1"], fmt.Sprintf("R-%d", i), tx.kind, tx.at, tx.amount, f.ids[tx.member])
		if err != nil {
			t.Fatalf("insert transaction %d: %v", i, err)
		}
	}
	return f
}

func ptr(s string) *string { return &s }

// members returns the names of the members the tree selects, sorted.
func (f *fixture) members(t *testing.T, tree *Node) []string {
	t.Helper()
	where, args, err := Compile(tree, f.asOf, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.db.Pool.Query(context.Background(), "SELECT m.name FROM members m WHERE "+where+" ORDER BY m.name", args...)
	if err != nil {
		t.Fatalf("query %s: %v", where, err)
	}
	defer rows.Close()
	names := []string{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query %s: %v", where, err)
	}
	return names
}

func TestRulesSelectTheExpectedMembers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name, tree, want string
	}{
		// home_store
		{"home store eq picks that store's members", `{"field": "home_store", "op": "eq", "value": "oslo-1"}`, "ada ben"},
		{"home store ne leaves out members without a home store", `{"field": "home_store", "op": "ne", "value": "oslo-1"}`, "cai dag fil"},
		{"home store ne an unknown code still needs a home store", `{"field": "home_store", "op": "ne", "value": "nowhere"}`, "ada ben cai dag fil"},
		{"home store in a list", `{"field": "home_store", "op": "in", "value": ["oslo-2", "bergen-1"]}`, "cai dag fil"},
		{"home store not in a list", `{"field": "home_store", "op": "not_in", "value": ["oslo-1", "oslo-2"]}`, "dag fil"},
		{"home store starts with a city", `{"field": "home_store", "op": "starts_with", "value": "oslo-"}`, "ada ben cai"},
		{"home store is null", `{"field": "home_store", "op": "is_null"}`, "eva"},
		{"home store is not null", `{"field": "home_store", "op": "is_not_null"}`, "ada ben cai dag fil"},
		// enums
		{"status eq active", `{"field": "status", "op": "eq", "value": "active"}`, "ada ben dag eva"},
		{"status ne active", `{"field": "status", "op": "ne", "value": "active"}`, "cai fil"},
		{"consent in a list", `{"field": "marketing_consent", "op": "in", "value": ["confirmed", "pending"]}`, "ada cai eva"},
		{"consent not in a list", `{"field": "marketing_consent", "op": "not_in", "value": ["confirmed", "none"]}`, "cai dag"},
		// joined_at: days are Oslo days
		{"joined before a date", `{"field": "joined_at", "op": "lt", "value": "2025-01-01"}`, "ada fil"},
		{"joined on an Oslo day that is the day before in UTC", `{"field": "joined_at", "op": "eq", "value": "2026-06-01"}`, "cai"},
		{"joined on no member's day", `{"field": "joined_at", "op": "eq", "value": "2026-05-31"}`, ""},
		{"joined not on a day", `{"field": "joined_at", "op": "ne", "value": "2026-01-01"}`, "ada ben cai dag fil"},
		{"joined on or after a day includes that day", `{"field": "joined_at", "op": "gte", "value": "2026-01-01"}`, "cai eva"},
		{"joined after a day starts the next day", `{"field": "joined_at", "op": "gt", "value": "2026-01-01"}`, "cai"},
		{"joined on or before a day includes all of it", `{"field": "joined_at", "op": "lte", "value": "2026-01-01"}`, "ada ben dag eva fil"},
		{"joined between two days, both included", `{"field": "joined_at", "op": "between", "value": ["2025-01-01", "2025-12-24"]}`, "ben dag"},
		{"joined after an instant", `{"field": "joined_at", "op": "gt", "value": "2026-06-01T00:00:00+02:00"}`, "cai"},
		{"joined at an exact instant", `{"field": "joined_at", "op": "eq", "value": "2025-03-01T11:00:00Z"}`, "ben"},
		{"joined between an instant and a day", `{"field": "joined_at", "op": "between", "value": ["2025-12-24T17:00:00Z", "2026-01-01"]}`, "dag eva"},
		// email_domain
		{"email domain eq ignores case", `{"field": "email_domain", "op": "eq", "value": "EXAMPLE.org"}`, "ada eva"},
		{"email domain of a mixed-case address", `{"field": "email_domain", "op": "eq", "value": "example.com"}`, "ben"},
		{"email domain contains", `{"field": "email_domain", "op": "contains", "value": "example"}`, "ada ben eva"},
		{"email domain is null without an email", `{"field": "email_domain", "op": "is_null"}`, "dag fil"},
		{"email domain ne leaves out members without email", `{"field": "email_domain", "op": "ne", "value": "shop.no"}`, "ada ben eva"},
		// days_since_last_purchase: NULL (never bought) matches only is_null
		{"days since last purchase gt 60", `{"field": "days_since_last_purchase", "op": "gt", "value": 60}`, "ben cai"},
		{"days since last purchase lt 30 ignores later sales", `{"field": "days_since_last_purchase", "op": "lt", "value": 30}`, "ada eva"},
		{"days since last purchase eq 0", `{"field": "days_since_last_purchase", "op": "eq", "value": 0}`, "eva"},
		{"days since last purchase between, both included", `{"field": "days_since_last_purchase", "op": "between", "value": [10, 30]}`, "ada fil"},
		{"days since last purchase ne skips members who never bought", `{"field": "days_since_last_purchase", "op": "ne", "value": 10}`, "ben cai eva fil"},
		{"days since last purchase is null for members who never bought", `{"field": "days_since_last_purchase", "op": "is_null"}`, "dag"},
		{"days since last purchase is not null", `{"field": "days_since_last_purchase", "op": "is_not_null"}`, "ada ben cai eva fil"},
		{"a refund is not a purchase", `{"field": "days_since_last_purchase", "op": "gte", "value": 70}`, "ben cai"},
		// orders_365d
		{"no orders in the window", `{"field": "orders_365d", "op": "eq", "value": 0}`, "cai dag"},
		{"at least two orders, counting the window's first instant", `{"field": "orders_365d", "op": "gte", "value": 2}`, "ada eva"},
		{"orders in a list", `{"field": "orders_365d", "op": "in", "value": [1]}`, "ben fil"},
		{"orders not in a list", `{"field": "orders_365d", "op": "not_in", "value": [0, 1]}`, "ada eva"},
		{"orders lte 1", `{"field": "orders_365d", "op": "lte", "value": 1}`, "ben cai dag fil"},
		// spend_365d: net of refunds
		{"spend over 15000 net of refunds", `{"field": "spend_365d", "op": "gt", "value": 15000}`, "ada ben"},
		{"a full refund brings spend to zero", `{"field": "spend_365d", "op": "eq", "value": 0}`, "cai dag fil"},
		{"spend under 3001 ignores a sale after as-of", `{"field": "spend_365d", "op": "lt", "value": 3001}`, "cai dag eva fil"},
		{"spend between", `{"field": "spend_365d", "op": "between", "value": [3000, 20000]}`, "ben eva"},
		// groups
		{"the contract's example without p_alive", `{"all": [{"field": "home_store", "op": "eq", "value": "oslo-1"},
			{"any": [{"field": "days_since_last_purchase", "op": "gt", "value": 60}]}]}`, "ben"},
		{"all of a status and any of two figures", `{"all": [{"field": "status", "op": "eq", "value": "active"},
			{"any": [{"field": "days_since_last_purchase", "op": "gt", "value": 60}, {"field": "spend_365d", "op": "gt", "value": 50000}]}]}`, "ada ben"},
		{"any of two stores' rules", `{"any": [{"all": [{"field": "home_store", "op": "eq", "value": "oslo-1"}, {"field": "orders_365d", "op": "gte", "value": 2}]},
			{"all": [{"field": "home_store", "op": "eq", "value": "bergen-1"}, {"field": "status", "op": "eq", "value": "erased"}]}]}`, "ada fil"},
		{"not is the complement, members without a home store included", `{"not": {"field": "home_store", "op": "eq", "value": "oslo-1"}}`, "cai dag eva fil"},
		{"not of a figure includes members who never bought", `{"not": {"field": "days_since_last_purchase", "op": "gt", "value": 60}}`, "ada dag eva fil"},
		{"not of not is the rule", `{"not": {"not": {"field": "status", "op": "eq", "value": "active"}}}`, "ada ben dag eva"},
		{"not inside all", `{"all": [{"not": {"field": "status", "op": "eq", "value": "erased"}}, {"field": "marketing_consent", "op": "eq", "value": "confirmed"},
			{"not": {"any": [{"field": "email_domain", "op": "eq", "value": "example.com"}, {"field": "orders_365d", "op": "eq", "value": 0}]}}]}`, "ada eva"},
		{"one rule per figure in one tree", `{"all": [{"field": "days_since_last_purchase", "op": "lt", "value": 100},
			{"field": "orders_365d", "op": "gte", "value": 1}, {"field": "spend_365d", "op": "gte", "value": 0}]}`, "ada ben eva fil"},
		// injection attempts stay values
		{"a quote in a store code matches nothing", `{"field": "home_store", "op": "eq", "value": "oslo-1' OR 1=1 --"}`, ""},
		{"a statement in a domain matches nothing", `{"field": "email_domain", "op": "eq", "value": "'; DROP TABLE members; --"}`, ""},
		{"a statement in an in-list matches nothing", `{"field": "home_store", "op": "in", "value": ["x'); DELETE FROM members; --"]}`, ""},
		{"a LIKE wildcard in contains is literal", `{"field": "email_domain", "op": "contains", "value": "%"}`, ""},
		{"a LIKE wildcard in starts_with is literal", `{"field": "home_store", "op": "starts_with", "value": "_"}`, ""},
		{"a comment in not_in excludes nothing extra", `{"field": "home_store", "op": "not_in", "value": ["oslo-1' --"]}`, "ada ben cai dag fil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(f.members(t, mustParse(t, tt.tree)), " ")
			if got != tt.want {
				t.Errorf("got [%s], want [%s]", got, tt.want)
			}
		})
	}
	t.Run("the tables are intact after the injection attempts", func(t *testing.T) {
		var members, txns int
		if err := f.db.Pool.QueryRow(context.Background(),
			"SELECT (SELECT count(*) FROM members), (SELECT count(*) FROM transactions)").Scan(&members, &txns); err != nil {
			t.Fatal(err)
		}
		if members != 6 || txns != 10 {
			t.Errorf("got %d members and %d transactions, want 6 and 10", members, txns)
		}
	})
}

func TestCompiledSQLEmbedsAfterTheCallersArguments(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tree := mustParse(t, `{"all": [{"field": "home_store", "op": "eq", "value": "oslo-1"}, {"field": "spend_365d", "op": "gt", "value": 0}]}`)
	where, args, err := Compile(tree, f.asOf, 1)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	err = f.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM members m WHERE m.name <> $1 AND "+where,
		append([]any{"ada"}, args...)...).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("got %d members, want 1 (ben)", n)
	}
}

// A member without confirmed marketing consent is never mailable, even in a segment that asks for
// them by name: of the fixture, only ada and eva (active, confirmed, with an email) are.
func TestOnlyConfirmedConsentIsMailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		rules string
		want  int64
	}{
		{`{"all": [{"field": "joined_at", "op": "lt", "value": "2030-01-01"}]}`, 2},                  // everyone: ada, eva
		{`{"field": "marketing_consent", "op": "in", "value": ["pending", "none", "withdrawn"]}`, 0}, // cai, ben, dag, fil
		{`{"field": "status", "op": "in", "value": ["pending", "erased"]}`, 0},                       // cai, fil
		{`{"field": "home_store", "op": "eq", "value": "oslo-1"}`, 1},                                // ada, not ben
	} {
		n, err := CountMailable(ctx, f.db, mustParse(t, tc.rules), f.asOf)
		if err != nil {
			t.Fatalf("%s: %v", tc.rules, err)
		}
		if n != tc.want {
			t.Errorf("%s: %d mailable, want %d", tc.rules, n, tc.want)
		}
	}
}

func TestCountAndSampleShowALiveSegment(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tree := mustParse(t, `{"field": "status", "op": "eq", "value": "active"}`)

	n, err := Count(ctx, f.db, tree, f.asOf)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("count %d, want 4", n)
	}

	sample, err := Sample(ctx, f.db, tree, f.asOf, 3)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range sample {
		names = append(names, s.Name)
		if s.ID != f.ids[s.Name] || len(s.Card) != 13 {
			t.Errorf("sample member %+v does not match the fixture", s)
		}
	}
	if !slices.Equal(names, []string{"ada", "ben", "dag"}) {
		t.Errorf("sample %v, want the three lowest ids: ada ben dag", names)
	}

	t.Run("an invalid tree is refused before the database is asked", func(t *testing.T) {
		_, err := Count(ctx, f.db, &Node{Field: "p_alive", Op: Eq, Value: 0.5}, f.asOf)
		if models.ErrorCode(err) != models.EINVALID {
			t.Errorf("got %v, want invalid", err)
		}
	})
	t.Run("a sample size out of range is refused", func(t *testing.T) {
		for _, limit := range []int{0, MaxSample + 1} {
			_, err := Sample(ctx, f.db, tree, f.asOf, limit)
			var e *models.Error
			if !errors.As(err, &e) || e.Fields["limit"] == "" {
				t.Errorf("limit %d: got %v, want an error on limit", limit, err)
			}
		}
	})
}

// TestTierAndBirthdayMonthSelectTheExpectedMembers adds a tier ladder and birth dates to the
// fixture. With spend_365d as in the fixture's table, the tiers as of the as-of time are:
//
//	name  spend   tier    birth date
//	ada   70000   Gold    1990-05-17
//	ben   20000   Silver  1985-12-01
//	cai   0       NULL    2000-05-31
//	dag   0       NULL    (none)
//	eva   3000    Bronze  1970-01-01 (exactly the Bronze threshold; with her sale after as-of she would be Copper)
//	fil   0       NULL    (none)
func TestTierAndBirthdayMonthSelectTheExpectedMembers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.db.Pool.Exec(ctx, `INSERT INTO tiers (name, min_spend_minor, discount_percent)
		VALUES ('Bronze', 3000, 1), ('Copper', 8000, 2), ('Silver', 15000, 5), ('Gold', 50000, 10)`); err != nil {
		t.Fatal(err)
	}
	for name, birth := range map[string]string{"ada": "1990-05-17", "ben": "1985-12-01", "cai": "2000-05-31", "eva": "1970-01-01"} {
		if _, err := f.db.Pool.Exec(ctx, `UPDATE members SET birth_date = $1::date WHERE id = $2`, birth, f.ids[name]); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, tree, want string
	}{
		{"tier eq the top tier", `{"field": "tier", "op": "eq", "value": "Gold"}`, "ada"},
		{"a spend exactly at a threshold is in that tier, ignoring a sale after as-of", `{"field": "tier", "op": "eq", "value": "Bronze"}`, "eva"},
		{"nobody is in a tier between two members' spends", `{"field": "tier", "op": "eq", "value": "Copper"}`, ""},
		{"tier ne leaves out members below every threshold", `{"field": "tier", "op": "ne", "value": "Gold"}`, "ben eva"},
		{"tier in a list", `{"field": "tier", "op": "in", "value": ["Silver", "Bronze"]}`, "ben eva"},
		{"tier not in a list", `{"field": "tier", "op": "not_in", "value": ["Gold", "Bronze"]}`, "ben"},
		{"tier is null below every threshold", `{"field": "tier", "op": "is_null"}`, "cai dag fil"},
		{"tier is not null", `{"field": "tier", "op": "is_not_null"}`, "ada ben eva"},
		{"tier names are case-sensitive, as in the ladder", `{"field": "tier", "op": "eq", "value": "gold"}`, ""},
		{"not tier is the complement", `{"not": {"field": "tier", "op": "eq", "value": "Gold"}}`, "ben cai dag eva fil"},
		{"a quote in a tier name matches nothing", `{"field": "tier", "op": "eq", "value": "Gold' OR 'a'='a"}`, ""},
		{"a statement in a tier in-list matches nothing", `{"field": "tier", "op": "in", "value": ["x'); DELETE FROM tiers; --"]}`, ""},
		{"birthday in May", `{"field": "birthday_month", "op": "eq", "value": 5}`, "ada cai"},
		{"birthday in December or January", `{"field": "birthday_month", "op": "in", "value": [12, 1]}`, "ben eva"},
		{"birthday from May to December", `{"field": "birthday_month", "op": "between", "value": [5, 12]}`, "ada ben cai"},
		{"birthday not in May leaves out members without a birth date", `{"field": "birthday_month", "op": "ne", "value": 5}`, "ben eva"},
		{"birthday month is null without a birth date", `{"field": "birthday_month", "op": "is_null"}`, "dag fil"},
		{"tier and birthday together", `{"all": [{"field": "tier", "op": "is_not_null"}, {"field": "birthday_month", "op": "lt", "value": 6}]}`, "ada eva"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(f.members(t, mustParse(t, tt.tree)), " ")
			if got != tt.want {
				t.Errorf("got [%s], want [%s]", got, tt.want)
			}
		})
	}
	t.Run("the tiers are intact after the injection attempts", func(t *testing.T) {
		var n int
		if err := f.db.Pool.QueryRow(ctx, "SELECT count(*) FROM tiers").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 4 {
			t.Errorf("got %d tiers, want 4", n)
		}
	})
}

// TestPointsBalanceIsTheLedgerSum: ada has 12 points, ben earned 5 that expired, the others
// never had any (0, not NULL).
func TestPointsBalanceIsTheLedgerSum(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO points_ledger (member_id, kind, points, transaction_id)
		 SELECT member_id, 'earned', CASE WHEN member_id = $1::bigint THEN 12 ELSE 5 END, min(id)
		 FROM transactions WHERE member_id IN ($1::bigint, $2::bigint) AND kind = 'sale' GROUP BY member_id`,
		`INSERT INTO points_ledger (member_id, kind, points) SELECT $2::bigint, 'expired', -5 WHERE $1::bigint IS NOT NULL`,
	} {
		if _, err := f.db.Pool.Exec(ctx, q, f.ids["ada"], f.ids["ben"]); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ tree, want string }{
		{`{"field": "points_balance", "op": "gte", "value": 10}`, "ada"},
		{`{"field": "points_balance", "op": "eq", "value": 0}`, "ben cai dag eva fil"},
		{`{"field": "points_balance", "op": "between", "value": [1, 12]}`, "ada"},
	} {
		if got := strings.Join(f.members(t, mustParse(t, tt.tree)), " "); got != tt.want {
			t.Errorf("%s: got [%s], want [%s]", tt.tree, got, tt.want)
		}
	}
}
