package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/segments"
)

// segmentShop is a till with three members inserted directly (their consent and status set
// as a campaign would find them):
//
//	name  home      status  consent    email
//	ada   oslo-1    active  confirmed  ada@example.org  (mailable)
//	ben   oslo-1    active  none       ben@example.org
//	cai   bergen-1  active  confirmed  cai@example.org  (mailable)
func segmentShop(t *testing.T) (*till, map[string]int64) {
	t.Helper()
	tl := newTill(t)
	ids := map[string]int64{}
	for i, m := range []struct{ name, store, consent string }{
		{"ada", "oslo-1", "confirmed"}, {"ben", "oslo-1", "none"}, {"cai", "bergen-1", "confirmed"},
	} {
		var id int64
		err := tl.db.Pool.QueryRow(context.Background(), `
			INSERT INTO members (card, email, name, home_store_id, status, marketing_consent, source)
			VALUES ($1, $2, $3, (SELECT id FROM stores WHERE code = $4), 'active', $5, 'test') RETURNING id`,
			fmt.Sprintf("70000000000%02d", i), m.name+"@example.org", m.name, m.store, m.consent).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		ids[m.name] = id
	}
	return tl, ids
}

func TestSegmentRequestsAreValidated(t *testing.T) {
	tl, _ := segmentShop(t)
	oslo := map[string]any{"field": "home_store", "op": "eq", "value": "oslo-1"}
	if res := tl.do(t, "POST", "/api/v1/segments", tl.marketer, map[string]any{"name": "Oslo", "rules": oslo}); res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	cases := []struct {
		name   string
		token  string
		body   any
		status int
		field  string
	}{
		{"a register may not save segments", tl.oslo, map[string]any{"name": "X", "rules": oslo}, 403, ""},
		{"malformed JSON is 400", tl.marketer, raw(`{"name": "X", "rules": {"field": `), 400, ""},
		{"an unknown field is named by its path", tl.marketer, map[string]any{"name": "X",
			"rules": map[string]any{"all": []any{map[string]any{"field": "shoe_size", "op": "eq", "value": 42}}}}, 422, "rules.all.0.field"},
		{"an unknown operator is named by its path", tl.marketer, map[string]any{"name": "X",
			"rules": map[string]any{"any": []any{oslo, map[string]any{"field": "orders_365d", "op": "like", "value": 1}}}}, 422, "rules.any.1.op"},
		{"a value of the wrong type is named", tl.marketer, map[string]any{"name": "X",
			"rules": map[string]any{"field": "birthday_month", "op": "eq", "value": 13}}, 422, "rules.value"},
		{"rules that are not a tree are invalid", tl.marketer, map[string]any{"name": "X", "rules": "everyone"}, 422, "rules"},
		{"missing rules are invalid", tl.marketer, map[string]any{"name": "X"}, 422, "rules"},
		{"a name over 80 characters is invalid", tl.marketer, map[string]any{"name": strings.Repeat("n", 81), "rules": oslo}, 422, "name"},
		{"a blank name is invalid", tl.marketer, map[string]any{"name": "  ", "rules": oslo}, 422, "name"},
		{"a name wrongly typed is invalid", tl.marketer, map[string]any{"name": 5, "rules": oslo}, 422, "name"},
		{"a duplicate name is a conflict, whatever its case", tl.admin, map[string]any{"name": "OSLO", "rules": oslo}, 409, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tl.do(t, "POST", "/api/v1/segments", tc.token, tc.body), tc.status, tc.field)
		})
	}
	reads := []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"an unknown segment is 404", "GET", "/api/v1/segments/999999", nil, 404, ""},
		{"a segment id that is not a number is 404", "GET", "/api/v1/segments/oslo", nil, 404, ""},
		{"members of an unknown segment is 404", "GET", "/api/v1/segments/999999/members", nil, 404, ""},
		{"patching an unknown segment is 404", "PATCH", "/api/v1/segments/999999", map[string]any{"name": "Y"}, 404, ""},
		{"deleting an unknown segment is 404", "DELETE", "/api/v1/segments/999999", nil, 404, ""},
		{"a register may not read segments", "GET", "/api/v1/segments", nil, 403, ""},
	}
	for _, tc := range reads {
		t.Run(tc.name, func(t *testing.T) {
			token := tl.marketer
			if strings.Contains(tc.name, "register") {
				token = tl.oslo
			}
			wantError(t, tl.do(t, tc.method, tc.path, token, tc.body), tc.status, tc.field)
		})
	}
	t.Run("no token is 401", func(t *testing.T) {
		wantError(t, tl.do(t, "GET", "/api/v1/segments/fields", "", nil), 401, "")
	})
}

// segmentView is a SegmentDetail or list item as the tests read it.
type segmentView struct {
	ID       int64           `json:"id"`
	Name     string          `json:"name"`
	Rules    json.RawMessage `json:"rules"`
	Members  int64           `json:"members"`
	Mailable int64           `json:"mailable"`
	Sample   []struct {
		Name string `json:"name"`
	} `json:"sample"`
}

func TestSavedSegmentsThroughTheAPI(t *testing.T) {
	tl, ids := segmentShop(t)
	body := map[string]any{"name": "Oslo", "description": "home store Oslo",
		"rules": map[string]any{"all": []any{map[string]any{"field": "home_store", "op": "eq", "value": "oslo-1"}}}}
	res := tl.do(t, "POST", "/api/v1/segments", tl.marketer, body)
	if res.Status != 201 {
		t.Fatalf("create: %d %s", res.Status, res.Body)
	}
	var created segmentView
	mustUnmarshal(t, res.Body, &created)
	if created.Members != 2 || created.Mailable != 1 || len(created.Sample) != 2 || created.Sample[0].Name != "ada" {
		t.Errorf("created %+v, want 2 members (ada, ben), 1 mailable", created)
	}
	path := fmt.Sprintf("/api/v1/segments/%d", created.ID)

	t.Run("the list shows it with its counts", func(t *testing.T) {
		res := tl.do(t, "GET", "/api/v1/segments", tl.admin, nil)
		var out struct {
			Segments []struct {
				segmentView
				CountedAt *time.Time `json:"counted_at"`
			}
		}
		mustUnmarshal(t, res.Body, &out)
		// The create's answer counted them live, and cached what it counted.
		if res.Status != 200 || len(out.Segments) != 1 || out.Segments[0].Members != 2 || out.Segments[0].Mailable != 1 ||
			out.Segments[0].CountedAt == nil {
			t.Errorf("%d %s", res.Status, res.Body)
		}
	})
	t.Run("the field registry lists the new fields", func(t *testing.T) {
		res := tl.do(t, "GET", "/api/v1/segments/fields", tl.marketer, nil)
		for _, name := range []string{`"tier"`, `"birthday_month"`, `"home_store"`} {
			if !strings.Contains(string(res.Body), `"name":`+name) {
				t.Errorf("fields lack %s: %.300s", name, res.Body)
			}
		}
	})
	t.Run("members are paged with limit and after", func(t *testing.T) {
		res := tl.do(t, "GET", path+"/members?limit=1", tl.marketer, nil)
		var page struct {
			Members []struct {
				ID        int64   `json:"id"`
				HomeStore *string `json:"home_store"`
			}
			NextAfter *int64 `json:"next_after"`
		}
		mustUnmarshal(t, res.Body, &page)
		if res.Status != 200 || len(page.Members) != 1 || page.Members[0].ID != ids["ada"] || page.NextAfter == nil {
			t.Fatalf("first page: %d %s", res.Status, res.Body)
		}
		res = tl.do(t, "GET", fmt.Sprintf("%s/members?limit=1&after=%d", path, *page.NextAfter), tl.marketer, nil)
		page.NextAfter = nil
		mustUnmarshal(t, res.Body, &page)
		if len(page.Members) != 1 || page.Members[0].ID != ids["ben"] || page.NextAfter != nil {
			t.Errorf("last page: %d %s", res.Status, res.Body)
		}
		if strings.Contains(string(res.Body), "@") {
			t.Errorf("the member list shows email addresses: %s", res.Body)
		}
		wantError(t, tl.do(t, "GET", path+"/members?limit=0", tl.marketer, nil), 422, "limit")
		wantError(t, tl.do(t, "GET", path+"/members?after=x", tl.marketer, nil), 422, "after")
	})
	t.Run("a patch changes the rules and the counts follow", func(t *testing.T) {
		res := tl.do(t, "PATCH", path, tl.marketer, map[string]any{
			"rules": map[string]any{"field": "marketing_consent", "op": "eq", "value": "confirmed"}})
		var got segmentView
		mustUnmarshal(t, res.Body, &got)
		if res.Status != 200 || got.Name != "Oslo" || got.Members != 2 || got.Mailable != 2 {
			t.Errorf("%d %s", res.Status, res.Body)
		}
		wantError(t, tl.do(t, "PATCH", path, tl.marketer, map[string]any{
			"rules": map[string]any{"not": map[string]any{"field": "status", "op": "gt", "value": "active"}}}), 422, "rules.not.op")
	})
	t.Run("delete is 204 and then the segment is gone", func(t *testing.T) {
		if res := tl.do(t, "DELETE", path, tl.marketer, nil); res.Status != 204 {
			t.Fatalf("%d %s", res.Status, res.Body)
		}
		wantError(t, tl.do(t, "GET", path, tl.marketer, nil), 404, "")
	})
}

// The rule tree is bounded (segments.MaxRules, MaxDepth, MaxListValues): a bigger one is 422
// naming the field, before anything is counted.
func TestSegmentRuleTreeLimits(t *testing.T) {
	tl := newTill(t)
	rule := map[string]any{"field": "orders_365d", "op": "gt", "value": 1}
	rules := make([]any, segments.MaxRules+1)
	for i := range rules {
		rules[i] = rule
	}
	deep := any(rule)
	for range segments.MaxDepth {
		deep = map[string]any{"not": deep}
	}
	list := make([]any, segments.MaxListValues+1)
	for i := range list {
		list[i] = "oslo-1"
	}
	for _, tc := range []struct {
		name  string
		rules any
		field string
	}{
		{"more than 200 rules", map[string]any{"any": rules}, "rules"},
		{"nested more than 10 deep", deep, "rules" + strings.Repeat(".not", segments.MaxDepth)},
		{"an in list over 1000 values", map[string]any{"field": "home_store", "op": "in", "value": list}, "rules.value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tl.do(t, "POST", "/api/v1/segments", tl.marketer, map[string]any{"name": "too big", "rules": tc.rules})
			wantError(t, res, 422, tc.field)
		})
	}
}

// A segment never counted (saved before the counts were cached, or by another replica a moment
// ago) lists with null counts, and the view has it counted in the background.
func TestSegmentListCountsTheUncountedInTheBackground(t *testing.T) {
	tl, _ := segmentShop(t)
	var id int64
	if err := tl.db.Pool.QueryRow(context.Background(),
		`INSERT INTO segments (name, rules) VALUES ('Oslo', '{"field": "home_store", "op": "eq", "value": "oslo-1"}') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	type listed struct {
		Segments []struct {
			Members   *int64     `json:"members"`
			Mailable  *int64     `json:"mailable"`
			CountedAt *time.Time `json:"counted_at"`
		}
	}
	var first listed
	res := tl.do(t, "GET", "/api/v1/segments", tl.marketer, nil)
	mustUnmarshal(t, res.Body, &first)
	if res.Status != 200 || len(first.Segments) != 1 || first.Segments[0].CountedAt != nil || first.Segments[0].Members != nil {
		t.Fatalf("first view: %d %s; want null counts", res.Status, res.Body)
	}
	deadline := time.Now().Add(time.Minute) // generous: the count takes milliseconds
	for {
		var out listed
		mustUnmarshal(t, tl.do(t, "GET", "/api/v1/segments", tl.marketer, nil).Body, &out)
		if s := out.Segments[0]; s.CountedAt != nil {
			if *s.Members != 2 || *s.Mailable != 1 {
				t.Errorf("counted %d/%d, want 2/1", *s.Members, *s.Mailable)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("not counted a minute after the first view")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A save whose rules are too slow to count while the request waits is still a success: the
// segment is stored, the answer has null counts, and the background count fills them in.
func TestSlowSegmentSaveAnswersWithoutCounts(t *testing.T) {
	tl, _ := segmentShop(t)
	tl.srv.reconfigure(t, func(c *Config) { c.StatementTimeout = 4 * time.Second }) // the live count gets half of it, the save the rest
	ctx := context.Background()
	tx, err := tl.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// Counting reads members; holding them makes the live count too slow.
	if _, err := tx.Exec(ctx, `LOCK TABLE members IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"name": "Oslo", "rules": map[string]any{"field": "home_store", "op": "eq", "value": "oslo-1"}}
	res := tl.do(t, "POST", "/api/v1/segments", tl.marketer, body)
	var created struct {
		ID       int64           `json:"id"`
		Members  *int64          `json:"members"`
		Mailable *int64          `json:"mailable"`
		Sample   json.RawMessage `json:"sample"`
	}
	mustUnmarshal(t, res.Body, &created)
	if res.Status != 201 || created.ID == 0 || created.Members != nil || created.Mailable != nil || string(created.Sample) != "[]" {
		t.Fatalf("create: %d %s; want 201 with null counts and an empty sample", res.Status, res.Body)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute) // generous: once members are free the count takes milliseconds
	for {
		var out struct {
			Segments []struct {
				Members   *int64     `json:"members"`
				CountedAt *time.Time `json:"counted_at"`
			}
		}
		mustUnmarshal(t, tl.do(t, "GET", "/api/v1/segments", tl.marketer, nil).Body, &out)
		if len(out.Segments) == 1 && out.Segments[0].CountedAt != nil {
			if *out.Segments[0].Members != 2 {
				t.Errorf("counted %d members, want 2", *out.Segments[0].Members)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the saved segment was not counted a minute after the lock was released")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
