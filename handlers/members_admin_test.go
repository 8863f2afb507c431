package handlers

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// joinedMember signs a customer up through the models (as the /join page does), confirms them
// and records one sale on their card; it returns the member.
func joinedMember(t *testing.T, tl *till, email string) *models.Member {
	t.Helper()
	ctx := context.Background()
	res, err := tl.db.Join(ctx, models.JoinInput{Name: "Kari Nordmann", Email: email, HomeStore: "oslo-1",
		MarketingConsent: true, Language: "nb", ConsentTextVersion: "2026-11"}, models.ConsentEvidence{IP: "192.0.2.7", UserAgent: "Firefox"})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := tl.db.ConfirmMember(ctx, res.MemberID, models.ConsentEvidence{IP: "192.0.2.7", UserAgent: "Firefox"})
	if err != nil {
		t.Fatal(err)
	}
	s := with(sale("R-"+email), "member", map[string]any{"card": m.Card})
	if r := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, s); r.Status != http.StatusCreated {
		t.Fatalf("sale: %d %s", r.Status, r.Body)
	}
	return m
}

func TestAdminReadsAndCorrectsAMember(t *testing.T) {
	tl := newTill(t)
	m := joinedMember(t, tl, "kari@example.com")
	path := fmt.Sprintf("/api/v1/members/%d", m.ID)

	res := tl.do(t, "GET", path, tl.admin, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("get: %d %s", res.Status, res.Body)
	}
	var got models.Member
	mustUnmarshal(t, res.Body, &got)
	if got.Card != m.Card || got.Status != "active" || got.Language != "nb" || got.HomeStore != "oslo-1" {
		t.Errorf("member %+v", got)
	}

	res = tl.do(t, "PATCH", path, tl.admin, map[string]any{"name": "Kari N.", "home_store": "bergen-1", "marketing_consent": false})
	if res.Status != http.StatusOK {
		t.Fatalf("patch: %d %s", res.Status, res.Body)
	}
	mustUnmarshal(t, res.Body, &got)
	if got.Name != "Kari N." || got.HomeStore != "bergen-1" || got.MarketingConsent != "withdrawn" {
		t.Errorf("patched member %+v", got)
	}
	if n := tl.count(t, `SELECT count(*) FROM consents WHERE member_id = $1 AND NOT granted AND source = 'admin'`, m.ID); n != 1 {
		t.Errorf("%d withdrawals by the admin recorded, want 1", n)
	}

	cases := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
		status int
		field  string
	}{
		{"an admin may not give consent for a member", "PATCH", path, tl.admin, map[string]any{"marketing_consent": true}, 422, "marketing_consent"},
		{"an unknown home store is invalid", "PATCH", path, tl.admin, map[string]any{"home_store": "nowhere"}, 422, "home_store"},
		{"a name of the wrong type is invalid", "PATCH", path, tl.admin, map[string]any{"name": 7}, 422, "name"},
		{"a body that is not JSON is malformed", "PATCH", path, tl.admin, raw("{"), 400, ""},
		{"a marketer may not read a member", "GET", path, tl.marketer, nil, 403, ""},
		{"a register may not change a member", "PATCH", path, tl.oslo, map[string]any{"name": "x"}, 403, ""},
		{"no token is unauthorized", "GET", path, "", nil, 401, ""},
		{"an unknown member is not found", "GET", "/api/v1/members/999999", tl.admin, nil, 404, ""},
		{"an unknown member cannot be patched", "PATCH", "/api/v1/members/999999", tl.admin, map[string]any{"name": "x"}, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tl.do(t, tc.method, tc.path, tc.token, tc.body), tc.status, tc.field)
		})
	}
}

func TestAdminExportsAndErasesAMember(t *testing.T) {
	tl := newTill(t)
	m := joinedMember(t, tl, "kari@example.com")
	path := fmt.Sprintf("/api/v1/members/%d", m.ID)

	res := tl.do(t, "GET", path+"/export", tl.admin, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("export: %d %s", res.Status, res.Body)
	}
	var x models.MemberExport
	mustUnmarshal(t, res.Body, &x)
	if x.Member.ID != m.ID || len(x.Transactions) != 1 || x.Transactions[0].Amount != 12950 || len(x.Consents) != 2 ||
		x.Consents[1].IP != "192.0.2.7" || x.Consents[1].TextVersion != "2026-11" {
		t.Errorf("export %+v", x)
	}

	revenue := tl.count(t, `SELECT sum(amount_minor)::int FROM transactions`)
	if res := tl.do(t, "DELETE", path, tl.admin, nil); res.Status != http.StatusNoContent {
		t.Fatalf("erase: %d %s", res.Status, res.Body)
	}
	if res := tl.do(t, "DELETE", path, tl.admin, nil); res.Status != http.StatusNoContent {
		t.Errorf("erasing twice: %d %s", res.Status, res.Body)
	}
	if after := tl.count(t, `SELECT sum(amount_minor)::int FROM transactions`); after != revenue {
		t.Errorf("revenue %d after erasure, was %d", after, revenue)
	}
	res = tl.do(t, "GET", path, tl.admin, nil)
	var got models.Member
	mustUnmarshal(t, res.Body, &got)
	if res.Status != http.StatusOK || got.Status != "erased" || got.Email != nil || got.Name != "" {
		t.Errorf("erased member: %d %+v", res.Status, got)
	}
	wantError(t, tl.do(t, "GET", "/api/v1/members/lookup?card="+m.Card, tl.oslo, nil), 404, "")
	wantError(t, tl.do(t, "GET", path+"/export", tl.admin, nil), 404, "")
	wantError(t, tl.do(t, "PATCH", path, tl.admin, map[string]any{"name": "x"}), 404, "")
	wantError(t, tl.do(t, "DELETE", "/api/v1/members/999999", tl.admin, nil), 404, "")
	wantError(t, tl.do(t, "DELETE", path, tl.marketer, nil), 403, "")
}

func TestJoinFunnelAPI(t *testing.T) {
	tl := newTill(t)
	ctx := context.Background()
	for i := range 4 { // four visitors
		if err := tl.db.CountJoinView(ctx, "oslo-1", fmt.Sprintf("192.0.2.%d", i+1), "Firefox"); err != nil {
			t.Fatal(err)
		}
	}
	joinedMember(t, tl, "a@example.com")
	if res := tl.do(t, "POST", "/api/v1/members", tl.oslo, map[string]any{"email": "till@example.com", "marketing_consent": true}); res.Status != 201 {
		t.Fatalf("enrol: %d %s", res.Status, res.Body)
	}

	res := tl.do(t, "GET", "/api/v1/club/funnel?store=oslo-1", tl.marketer, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("funnel: %d %s", res.Status, res.Body)
	}
	var out struct {
		From, To, Store string
		Days, Totals    []models.FunnelRow
	}
	mustUnmarshal(t, res.Body, &out)
	today := time.Now().UTC()
	if out.To != today.Format(time.DateOnly) || out.From != today.AddDate(0, 0, -29).Format(time.DateOnly) || out.Store != "oslo-1" {
		t.Errorf("range %s..%s store %q; want the last 30 days for oslo-1", out.From, out.To, out.Store)
	}
	web, till := out.Totals[0], out.Totals[1]
	if web.Views != 4 || web.Submissions != 1 || web.Confirmations != 1 || *web.ConversionRate != 0.25 || *web.ConfirmationRate != 1 {
		t.Errorf("web totals %+v", web)
	}
	if till.Submissions != 1 || till.Confirmations != 0 || till.ConversionRate != nil {
		t.Errorf("till totals %+v", till)
	}
	if len(out.Days) != 2 {
		t.Errorf("days %+v, want a web and a till row for today", out.Days)
	}

	res = tl.do(t, "GET", "/api/v1/club/funnel?from=2020-01-01&to=2020-01-31", tl.admin, nil)
	mustUnmarshal(t, res.Body, &out)
	if res.Status != http.StatusOK || len(out.Days) != 0 || out.Totals[0].Views != 0 || out.Totals[0].ConversionRate != nil {
		t.Errorf("an empty range: %d %s", res.Status, res.Body)
	}

	cases := []struct {
		name, query, token string
		status             int
		field              string
	}{
		{"a bad from date is invalid", "from=2026-13-01", tl.admin, 422, "from"},
		{"a bad to date is invalid", "to=yesterday", tl.admin, 422, "to"},
		{"a reversed range is invalid", "from=2026-11-20&to=2026-11-01", tl.admin, 422, "to"},
		{"an unknown store is invalid", "store=nowhere", tl.admin, 422, "store"},
		{"a register may not read the funnel", "", tl.oslo, 403, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tl.do(t, "GET", "/api/v1/club/funnel?"+tc.query, tc.token, nil), tc.status, tc.field)
		})
	}
}

func TestMembersTakeAndShowABirthday(t *testing.T) {
	tl := newTill(t)
	birthday := func(t *testing.T, res *response) any {
		t.Helper()
		return res.JSON(t)["birthday"]
	}
	enrol := func(card, b string) *response {
		return tl.do(t, "POST", "/api/v1/members", tl.oslo, map[string]any{"card": card, "name": "Per", "birthday": b, "marketing_consent": false})
	}

	t.Run("the till enrols with either form and gets it back as given", func(t *testing.T) {
		for card, b := range map[string]string{"7012345678908": "--02-29", "2900000000018": "1990-05-17"} {
			res := enrol(card, b)
			if res.Status != http.StatusCreated || birthday(t, res) != b {
				t.Fatalf("enrol with %s: %d %s", b, res.Status, res.Body)
			}
			id := res.JSON(t)["id"]
			if got := tl.do(t, "GET", fmt.Sprintf("/api/v1/members/%v", id), tl.admin, nil); birthday(t, got) != b {
				t.Errorf("GET shows %s", got.Body)
			}
			if got := tl.do(t, "GET", "/api/v1/members/lookup?card="+card, tl.oslo, nil); birthday(t, got) != b {
				t.Errorf("the till's lookup shows %s", got.Body)
			}
		}
	})

	t.Run("a member without a birthday has none in the answer", func(t *testing.T) {
		res := tl.do(t, "POST", "/api/v1/members", tl.oslo, map[string]any{"card": "2900000000025", "marketing_consent": false})
		if _, ok := res.JSON(t)["birthday"]; res.Status != http.StatusCreated || ok {
			t.Errorf("%d %s, want no birthday", res.Status, res.Body)
		}
	})

	bad := []struct{ name, birthday string }{
		{"30 February", "--02-30"},
		{"29 February of a common year", "2023-02-29"},
		{"a year in the future", fmt.Sprintf("%d-01-01", time.Now().Year()+1)},
		{"a year before 1900", "1899-12-31"},
		{"a month and day without the dashes", "05-17"},
		{"a day first", "17.05.1990"},
	}
	for _, tc := range bad {
		t.Run("enrolling with "+tc.name+" is invalid", func(t *testing.T) {
			wantError(t, enrol("2900000000032", tc.birthday), 422, "birthday")
		})
	}
	if n := tl.count(t, `SELECT count(*) FROM members WHERE card = '2900000000032'`); n != 0 {
		t.Errorf("%d members stored from bad birthdays", n)
	}

	m := joinedMember(t, tl, "kari@example.com")
	path := fmt.Sprintf("/api/v1/members/%d", m.ID)
	t.Run("an admin sets, changes and clears a birthday", func(t *testing.T) {
		for _, b := range []string{"--12-24", "1985-05-17"} {
			if res := tl.do(t, "PATCH", path, tl.admin, map[string]any{"birthday": b}); res.Status != http.StatusOK || birthday(t, res) != b {
				t.Fatalf("patch %s: %d %s", b, res.Status, res.Body)
			}
		}
		if res := tl.do(t, "PATCH", path, tl.admin, map[string]any{"name": "Kari N."}); birthday(t, res) != "1985-05-17" {
			t.Errorf("a patch without birthday changed it: %s", res.Body)
		}
		res := tl.do(t, "PATCH", path, tl.admin, map[string]any{"birthday": ""})
		if _, ok := res.JSON(t)["birthday"]; res.Status != http.StatusOK || ok {
			t.Errorf("clear: %d %s", res.Status, res.Body)
		}
	})
	for _, tc := range bad {
		t.Run("patching "+tc.name+" is invalid", func(t *testing.T) {
			wantError(t, tl.do(t, "PATCH", path, tl.admin, map[string]any{"birthday": tc.birthday}), 422, "birthday")
		})
	}
	t.Run("a birthday of the wrong type is invalid", func(t *testing.T) {
		wantError(t, tl.do(t, "PATCH", path, tl.admin, map[string]any{"birthday": 517}), 422, "birthday")
	})

	t.Run("the export shows the birthday and erasure clears it", func(t *testing.T) {
		tl.do(t, "PATCH", path, tl.admin, map[string]any{"birthday": "--02-29"})
		res := tl.do(t, "GET", path+"/export", tl.admin, nil)
		if got := res.JSON(t)["member"].(map[string]any)["birthday"]; res.Status != http.StatusOK || got != "--02-29" {
			t.Fatalf("export: %d %s", res.Status, res.Body)
		}
		if res := tl.do(t, "DELETE", path, tl.admin, nil); res.Status != http.StatusNoContent {
			t.Fatalf("erase: %d", res.Status)
		}
		if n := tl.count(t, `SELECT count(*) FROM members WHERE id = $1 AND birth_date IS NOT NULL`, m.ID); n != 0 {
			t.Error("the erased member keeps a birthday")
		}
	})
}
