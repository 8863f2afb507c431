package handlers

import (
	"strings"
	"testing"
)

func TestProducts(t *testing.T) {
	tl := newTill(t)
	product := func(sku, name, category, brand string, price any) map[string]any {
		return map[string]any{"sku": sku, "name": name, "category": category, "brand": brand, "price_minor": price}
	}
	catalogue := map[string]any{"products": []any{
		product("LP-1", "Latte", "Coffee", "House", 4500),
		with(product("LP-2", "Lungo", "Coffee", "House", 3900), "cost_minor", 900),
		product("CK-1", "Carrot cake", "Bakery", "Nonna's", 5200),
	}}
	for _, tc := range []struct {
		name   string
		token  string
		body   any
		status int
		field  string
	}{
		{"a marketer may not change the catalogue", tl.marketer, catalogue, 403, ""},
		{"a register may not change the catalogue", tl.oslo, catalogue, 403, ""},
		{"a body without products is invalid", tl.admin, map[string]any{}, 422, "products"},
		{"a decimal price is named by its index", tl.admin, map[string]any{"products": []any{
			product("A-1", "A", "", "", 100), product("A-2", "B", "", "", 100), product("A-3", "C", "", "", 100),
			product("A-4", "D", "", "", 1.5),
		}}, 422, "products.3.price_minor"},
		{"a missing name is invalid", tl.admin, map[string]any{"products": []any{product("A-1", "", "", "", 100)}}, 422, "products.0.name"},
		{"a negative cost is invalid", tl.admin, map[string]any{"products": []any{
			with(product("A-1", "A", "", "", 100), "cost_minor", -1)}}, 422, "products.0.cost_minor"},
		{"a sku twice in one call is invalid", tl.admin, map[string]any{"products": []any{
			product("A-1", "A", "", "", 100), product("A-1", "B", "", "", 100)}}, 422, "products.1.sku"},
		{"a sku of 65 characters is invalid", tl.admin, map[string]any{"products": []any{
			product(strings.Repeat("s", 65), "A", "", "", 100)}}, 422, "products.0.sku"},
		{"more than 1000 products are refused", tl.admin, map[string]any{"products": make([]any, 1001)}, 422, "products"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tl.do(t, "PUT", "/api/v1/products", tc.token, tc.body), tc.status, tc.field)
		})
	}
	if n := tl.count(t, `SELECT count(*) FROM products`); n != 0 {
		t.Fatalf("%d products stored by refused calls, want none", n)
	}

	put := func(t *testing.T, body any) map[string]any {
		t.Helper()
		res := tl.do(t, "PUT", "/api/v1/products", tl.admin, body)
		if res.Status != 200 {
			t.Fatalf("put products: %d %s", res.Status, res.Body)
		}
		return res.JSON(t)
	}
	t.Run("an admin adds products", func(t *testing.T) {
		got := put(t, catalogue)
		if got["inserted"].(interface{ String() string }).String() != "3" {
			t.Errorf("got %v, want 3 inserted", got)
		}
	})
	t.Run("a second call updates by sku and leaves identical products alone", func(t *testing.T) {
		got := put(t, map[string]any{"products": []any{
			product("LP-1", "Latte", "coffee", "House", 4900),
			with(product("LP-2", "Lungo", "Coffee", "House", 3900), "cost_minor", 900),
			product("TEA-1", "Green tea", "Tea", "Leaf", 3000),
		}})
		for k, want := range map[string]string{"read": "3", "inserted": "1", "updated": "1", "unchanged": "1"} {
			if got[k].(interface{ String() string }).String() != want {
				t.Errorf("%s: got %v, want %s", k, got[k], want)
			}
		}
		if n := tl.count(t, `SELECT count(*) FROM products WHERE sku = 'LP-1' AND category = 'coffee' AND price_minor = 4900`); n != 1 {
			t.Errorf("LP-1 was not updated")
		}
	})

	search := func(t *testing.T, token, query string) (int, string) {
		t.Helper()
		res := tl.do(t, "GET", "/api/v1/products"+query, token, nil)
		if res.Status != 200 {
			return res.Status, string(res.Body)
		}
		var skus []string
		for _, p := range res.JSON(t)["products"].([]any) {
			skus = append(skus, p.(map[string]any)["sku"].(string))
		}
		return 200, strings.Join(skus, " ")
	}
	for _, tc := range []struct {
		name, token, query, want string
	}{
		{"a marketer searches by sku prefix", tl.marketer, "?query=lp", "LP-1 LP-2"},
		{"an admin searches a category, any case", tl.admin, "?query=COFFEE", "LP-1 LP-2"},
		{"a brand substring", tl.marketer, "?query=nonna", "CK-1"},
		{"no query lists by sku up to the limit", tl.marketer, "?limit=2", "CK-1 LP-1"},
		{"nothing found is an empty list", tl.marketer, "?query=zzz", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, got := search(t, tc.token, tc.query); status != 200 || got != tc.want {
				t.Errorf("got %d [%s], want [%s]", status, got, tc.want)
			}
		})
	}
	t.Run("a register may not search", func(t *testing.T) {
		wantError(t, tl.do(t, "GET", "/api/v1/products?query=lp", tl.oslo, nil), 403, "")
	})
	t.Run("a limit over 100 is invalid", func(t *testing.T) {
		wantError(t, tl.do(t, "GET", "/api/v1/products?limit=101", tl.marketer, nil), 422, "limit")
	})
}
