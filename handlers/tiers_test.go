package handlers

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestTiers(t *testing.T) {
	tl := newTill(t)
	ladder := map[string]any{"tiers": []any{
		map[string]any{"name": "Gold", "min_spend": 500000, "discount_percent": 10.5},
		map[string]any{"name": "Silver", "min_spend": 100000, "discount_percent": 5},
	}}
	cases := []struct {
		name   string
		token  string
		body   any
		status int
		field  string
	}{
		{"a marketer may not set the ladder", tl.marketer, ladder, 403, ""},
		{"a register may not set the ladder", tl.oslo, ladder, 403, ""},
		{"a body without tiers is invalid", tl.admin, map[string]any{}, 422, "tiers"},
		{"a discount over 100 is invalid and named by its index", tl.admin, map[string]any{"tiers": []any{
			map[string]any{"name": "Silver", "min_spend": 0, "discount_percent": 5},
			map[string]any{"name": "Gold", "min_spend": 10, "discount_percent": 101},
		}}, 422, "tiers.1.discount_percent"},
		{"a decimal threshold is invalid", tl.admin, map[string]any{"tiers": []any{
			map[string]any{"name": "Gold", "min_spend": 10.5, "discount_percent": 1},
		}}, 422, "tiers.0.min_spend"},
		{"a repeated name is invalid", tl.admin, map[string]any{"tiers": []any{
			map[string]any{"name": "Gold", "min_spend": 0, "discount_percent": 1},
			map[string]any{"name": "Gold", "min_spend": 10, "discount_percent": 2},
		}}, 422, "tiers.1.name"},
		{"a name over 40 characters is invalid", tl.admin, map[string]any{"tiers": []any{
			map[string]any{"name": strings.Repeat("g", 41), "min_spend": 0, "discount_percent": 1},
		}}, 422, "tiers.0.name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tl.do(t, "PUT", "/api/v1/tiers", tc.token, tc.body), tc.status, tc.field)
		})
	}

	lookup := func(t *testing.T) (tier any, discount string) {
		t.Helper()
		res := tl.do(t, "GET", "/api/v1/members/lookup?card="+goodCard, tl.oslo, nil)
		if res.Status != 200 {
			t.Fatalf("lookup: %d %s", res.Status, res.Body)
		}
		m := res.JSON(t)
		return m["tier"], m["discount_percent"].(json.Number).String()
	}
	if res := tl.do(t, "POST", "/api/v1/members", tl.oslo, map[string]any{"card": goodCard, "name": "Kari", "marketing_consent": false}); res.Status != 201 {
		t.Fatalf("create member: %d %s", res.Status, res.Body)
	}
	buy := func(t *testing.T, id, kind string, amount int) {
		t.Helper()
		b := with(with(with(sale(id), "member", map[string]any{"card": goodCard}), "amount", amount),
			"occurred_at", time.Now().Format(time.RFC3339))
		b = with(b, "kind", kind)
		if kind == "sale" {
			b = with(b, "items", []any{map[string]any{"sku": "LP-1", "qty": 1, "unit_price": amount}})
		} else {
			b = without(b, "items")
		}
		if res := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, b); res.Status != 201 {
			t.Fatalf("%s: %d %s", id, res.Status, res.Body)
		}
	}

	t.Run("with no tiers the lookup gives no tier and no discount", func(t *testing.T) {
		if tier, d := lookup(t); tier != nil || d != "0" {
			t.Errorf("tier %v, discount %s; want null and 0", tier, d)
		}
	})
	t.Run("an empty ladder reads as an empty list", func(t *testing.T) {
		res := tl.do(t, "GET", "/api/v1/tiers", tl.marketer, nil)
		if res.Status != 200 || strings.TrimSpace(string(res.Body)) != `{"tiers":[]}` {
			t.Errorf("%d %s", res.Status, res.Body)
		}
	})
	t.Run("an admin sets the ladder and gets it back lowest threshold first", func(t *testing.T) {
		res := tl.do(t, "PUT", "/api/v1/tiers", tl.admin, ladder)
		want := `{"tiers":[{"name":"Silver","min_spend":100000,"discount_percent":5},{"name":"Gold","min_spend":500000,"discount_percent":10.5}]}`
		if res.Status != 200 || strings.TrimSpace(string(res.Body)) != want {
			t.Fatalf("%d %s, want %s", res.Status, res.Body, want)
		}
		if got := tl.do(t, "GET", "/api/v1/tiers", tl.marketer, nil); strings.TrimSpace(string(got.Body)) != want {
			t.Errorf("GET gives %s", got.Body)
		}
	})
	steps := []struct {
		name     string
		id, kind string
		amount   int
		tier     any
		discount string
	}{
		{"a member below every threshold has no tier", "T-1", "sale", 99999, nil, "0"},
		{"a purchase reaching a threshold gives its tier at once", "T-2", "sale", 1, "Silver", "5"},
		{"a purchase above the top threshold gives the top tier", "T-3", "sale", 450000, "Gold", "10.5"},
		{"a refund moves the member down a tier", "T-4", "refund", 50001, "Silver", "5"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			buy(t, s.id, s.kind, s.amount)
			if tier, d := lookup(t); tier != s.tier || d != s.discount {
				t.Errorf("tier %v, discount %s; want %v and %s", tier, d, s.tier, s.discount)
			}
		})
	}
}
