package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// goodCard has a correct EAN-13 check digit. (The contract's example 7012345678904 does not.)
const (
	goodCard = "7012345678908"
	badCard  = "7012345678904"
)

// till is an API with stores and one token per kind of caller.
type till struct {
	*api
	admin, marketer, oslo, bergen string // tokens; oslo and bergen are registers of those stores
}

func newTill(t *testing.T) *till {
	t.Helper()
	a := newAPI(t)
	ctx := context.Background()
	for _, s := range []models.StoreInput{
		{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"},
		{Code: "bergen-1", Name: "Bergen", Timezone: "Europe/Oslo", Currency: "NOK"},
	} {
		if _, err := a.db.CreateStore(ctx, s); err != nil {
			t.Fatalf("create store %s: %v", s.Code, err)
		}
	}
	key := func(role, store string) string {
		t.Helper()
		tok, err := a.db.CreateAPIKey(ctx, role, store, role+" "+store)
		if err != nil {
			t.Fatalf("create %s key: %v", role, err)
		}
		return tok
	}
	return &till{api: a, admin: key(models.RoleAdmin, ""), marketer: key(models.RoleMarketer, ""),
		oslo: key(models.RoleRegister, "oslo-1"), bergen: key(models.RoleRegister, "bergen-1")}
}

// sale is a valid transaction for oslo-1, as generic JSON so that cases can break it.
func sale(id string) map[string]any {
	return map[string]any{
		"id": id, "store": "oslo-1", "register": "till-2", "kind": "sale",
		"occurred_at": "2026-11-20T14:03:00+01:00", "amount": 12950, "currency": "NOK",
		"items": []any{map[string]any{"sku": "LP-1234", "qty": 1, "unit_price": 12950}},
	}
}

func with(m map[string]any, key string, v any) map[string]any {
	out := maps.Clone(m)
	out[key] = v
	return out
}

func without(m map[string]any, key string) map[string]any {
	out := maps.Clone(m)
	delete(out, key)
	return out
}

func (tl *till) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := tl.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantError checks status, the contract's error code for it, and (if field is not empty) that
// error.fields names field.
func wantError(t *testing.T, res *response, status int, field string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d; body %.500s", res.Status, status, res.Body)
	}
	code, fields := res.ErrorFields(t)
	if code != codeOf[status] {
		t.Errorf("error.code %q, want %q", code, codeOf[status])
	}
	if field != "" {
		if _, ok := fields[field]; !ok {
			t.Errorf("error.fields %v does not name %q", fields, field)
		}
	}
}

func TestPostTransactionRefusesBadInput(t *testing.T) {
	tl := newTill(t)
	future := time.Now().Add(25 * time.Hour).Format(time.RFC3339)
	huge := raw(fmt.Sprintf(`{"id":"R-big","store":"oslo-1","register":%q}`, strings.Repeat("x", maxBody)))
	batch := make([]any, models.MaxBatch+1)
	for i := range batch {
		batch[i] = sale(fmt.Sprintf("B-%d", i))
	}
	base := sale("R-1")
	cases := []struct {
		name   string
		path   string
		body   any
		status int
		field  string
	}{
		{"a transaction without id is invalid", "", without(base, "id"), 422, "id"},
		{"a transaction without store is invalid", "", without(base, "store"), 422, "store"},
		{"a transaction without kind is invalid", "", without(base, "kind"), 422, "kind"},
		{"a transaction without occurred_at is invalid", "", without(base, "occurred_at"), 422, "occurred_at"},
		{"a transaction without amount is invalid", "", without(base, "amount"), 422, "amount"},
		{"a transaction without currency is invalid", "", without(base, "currency"), 422, "currency"},
		{"an amount as a float is invalid", "", with(base, "amount", 129.5), 422, "amount"},
		{"an amount as a string is invalid", "", with(base, "amount", "12950"), 422, "amount"},
		{"a negative amount is invalid", "", with(base, "amount", -12950), 422, "amount"},
		{"a zero amount is invalid", "", with(base, "amount", 0), 422, "amount"},
		{"an absurd amount is invalid", "", with(base, "amount", 100_000_001), 422, "amount"},
		{"an unknown currency is invalid", "", with(base, "currency", "XYZ"), 422, "currency"},
		{"a currency that is not the store's is invalid", "", with(base, "currency", "EUR"), 422, "currency"},
		{"occurred_at more than 24 hours ahead is invalid", "", with(base, "occurred_at", future), 422, "occurred_at"},
		{"occurred_at without offset is invalid", "", with(base, "occurred_at", "2026-11-20T14:03:00"), 422, "occurred_at"},
		{"a card with a bad check digit is invalid", "", with(base, "member", map[string]any{"card": badCard}), 422, "member.card"},
		{"a card of 12 digits is invalid", "", with(base, "member", map[string]any{"card": "701234567890"}), 422, "member.card"},
		{"an id as a number is invalid", "", with(base, "id", 12345), 422, "id"},
		{"a card as a number is invalid", "", with(base, "member", map[string]any{"card": 7012345678908}), 422, "member.card"},
		{"an unknown kind is invalid", "", with(base, "kind", "gift"), 422, "kind"},
		{"an item with qty 0 is invalid", "", with(base, "items", []any{map[string]any{"sku": "A", "qty": 0, "unit_price": 1}}), 422, "items.0.qty"},
		{"a sale naming a sale it refunds is invalid", "", with(base, "refunds", "R-0"), 422, "refunds"},
		{"malformed JSON is malformed", "", raw(`{"id": "R-1", "amount": `), 400, ""},
		{"an empty body is malformed", "", raw(``), 400, ""},
		{"a JSON array is malformed", "", raw(`[1, 2]`), 400, ""},
		{"two JSON values are malformed", "", raw(`{"id":"R-1"} {"id":"R-2"}`), 400, ""},
		{"a body over 1 MiB is too large", "", huge, 413, ""},
		{"a chunked body over 1 MiB is too large", "", chunked(huge), 413, ""},
		{"a batch over 1000 items is too large", "/batch", map[string]any{"transactions": batch}, 413, ""},
		{"a batch over 1 MiB is too large", "/batch", huge, 413, ""},
		{"a batch without transactions is invalid", "/batch", map[string]any{}, 422, "transactions"},
		{"a batch whose transactions are not an array is invalid", "/batch", map[string]any{"transactions": 5}, 422, "transactions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := tl.do(t, http.MethodPost, "/api/v1/transactions"+tc.path, tl.oslo, tc.body)
			wantError(t, res, tc.status, tc.field)
		})
	}
	if n := tl.count(t, `SELECT count(*) FROM transactions`); n != 0 {
		t.Errorf("%d transactions stored from bad input, want 0", n)
	}
}

func TestAuthentication(t *testing.T) {
	tl := newTill(t)
	cases := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
		status int
	}{
		{"a transaction without a token is unauthorized", "POST", "/api/v1/transactions", "", sale("A-1"), 401},
		{"a transaction with an unknown token is unauthorized", "POST", "/api/v1/transactions", "rgl_nosuchtoken", sale("A-2"), 401},
		{"a transaction with a token of no kind is unauthorized", "POST", "/api/v1/transactions", "not-a-regulars-token", sale("A-3"), 401},
		{"a marketer may not post a transaction", "POST", "/api/v1/transactions", tl.marketer, sale("A-4"), 403},
		{"an admin may not post a transaction", "POST", "/api/v1/transactions", tl.admin, sale("A-5"), 403},
		{"a register may not post for another store", "POST", "/api/v1/transactions", tl.bergen, sale("A-6"), 403},
		{"a batch without a token is unauthorized", "POST", "/api/v1/transactions/batch", "", map[string]any{"transactions": []any{sale("A-7")}}, 401},
		{"a register may not create a store", "POST", "/api/v1/stores", tl.oslo, map[string]any{"code": "x", "name": "x", "timezone": "UTC", "currency": "NOK"}, 403},
		{"a marketer may not create a member", "POST", "/api/v1/members", tl.marketer, map[string]any{"marketing_consent": false}, 403},
		{"a marketer may not look members up", "GET", "/api/v1/members/lookup?card=" + goodCard, tl.marketer, nil, 403},
		{"a lookup without a token is unauthorized", "GET", "/api/v1/members/lookup?card=" + goodCard, "", nil, 401},
		{"listing stores without a token is unauthorized", "GET", "/api/v1/stores", "", nil, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := tl.do(t, tc.method, tc.path, tc.token, tc.body)
			wantError(t, res, tc.status, "")
			if tc.status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q, want a Bearer challenge", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if n := tl.count(t, `SELECT count(*) FROM transactions`); n != 0 {
		t.Errorf("%d transactions stored by refused callers, want 0", n)
	}
}

// A batch for another store is refused item by item: each result is 403.
func TestBatchForAnotherStoreFailsEachItem(t *testing.T) {
	tl := newTill(t)
	res := tl.do(t, "POST", "/api/v1/transactions/batch", tl.bergen, map[string]any{"transactions": []any{sale("A-1"), sale("A-2")}})
	if res.Status != 200 {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	var out batchOutput
	mustUnmarshal(t, res.Body, &out)
	if out.Failed != 2 || out.Results[0].Status != 403 || out.Results[1].Status != 403 {
		t.Errorf("got %+v, want two 403 items", out)
	}
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, b)
	}
}

func TestIdempotency(t *testing.T) {
	tl := newTill(t)
	first := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, sale("R-1"))
	if first.Status != 201 {
		t.Fatalf("first post: %d %s", first.Status, first.Body)
	}
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Error("a new transaction is marked as replayed")
	}

	t.Run("a replay answers 200 with the stored transaction", func(t *testing.T) {
		again := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, sale("R-1"))
		if again.Status != 200 || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("status %d, Idempotent-Replayed %q", again.Status, again.Header.Get("Idempotent-Replayed"))
		}
		if !reflect.DeepEqual(first.JSON(t), again.JSON(t)) {
			t.Errorf("replay body differs:\nfirst %s\nagain %s", first.Body, again.Body)
		}
	})
	t.Run("the same instant with another offset is a replay", func(t *testing.T) {
		res := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, with(sale("R-1"), "occurred_at", "2026-11-20T13:03:00Z"))
		if res.Status != 200 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
	})
	t.Run("the same id with another amount is a conflict", func(t *testing.T) {
		res := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, with(sale("R-1"), "amount", 100))
		wantError(t, res, 409, "id")
	})
	t.Run("the same id in another store is another transaction", func(t *testing.T) {
		res := tl.do(t, "POST", "/api/v1/transactions", tl.bergen, with(sale("R-1"), "store", "bergen-1"))
		if res.Status != 201 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
	})
	if n := tl.count(t, `SELECT count(*) FROM transactions WHERE txn_id = 'R-1'`); n != 2 {
		t.Errorf("%d rows for R-1, want 2 (one per store)", n)
	}
}

func TestConcurrentDuplicatesAreStoredOnce(t *testing.T) {
	tl := newTill(t)
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = tl.do(t, "POST", "/api/v1/transactions", tl.oslo, sale("R-race")).Status
		})
	}
	wg.Wait()
	created, replayed := 0, 0
	for _, s := range statuses {
		switch s {
		case 201:
			created++
		case 200:
			replayed++
		default:
			t.Errorf("unexpected status %d", s)
		}
	}
	if created != 1 || replayed != n-1 {
		t.Errorf("%d created and %d replayed, want 1 and %d", created, replayed, n-1)
	}
	if rows := tl.count(t, `SELECT count(*) FROM transactions WHERE txn_id = 'R-race'`); rows != 1 {
		t.Errorf("%d rows stored, want 1", rows)
	}
	if rows := tl.count(t, `SELECT count(*) FROM transaction_items`); rows != 1 {
		t.Errorf("%d item rows stored, want 1", rows)
	}
}

func TestUnmatchedCardIsLinkedWhenRegistered(t *testing.T) {
	tl := newTill(t)
	res := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, with(sale("R-1"), "member", map[string]any{"card": goodCard}))
	if res.Status != 201 {
		t.Fatalf("sale: %d %s", res.Status, res.Body)
	}
	var txn models.Transaction
	mustUnmarshal(t, res.Body, &txn)
	if txn.Member == nil || txn.Member.Matched || txn.Member.MemberID != nil || txn.Member.Card != goodCard {
		t.Fatalf("member on the sale %+v, want the card, unmatched", txn.Member)
	}

	res = tl.do(t, "GET", "/api/v1/members/lookup?card="+goodCard, tl.oslo, nil)
	wantError(t, res, 404, "")

	res = tl.do(t, "POST", "/api/v1/members", tl.oslo, map[string]any{
		"card": goodCard, "name": "Kari Nordmann", "email": "Kari@Example.com", "marketing_consent": true, "consent_text_version": "v1"})
	if res.Status != 201 {
		t.Fatalf("create member: %d %s", res.Status, res.Body)
	}
	var m models.Member
	mustUnmarshal(t, res.Body, &m)
	if m.LinkedTransactions != 1 || m.Card != goodCard || m.HomeStore != "oslo-1" || m.MarketingConsent != models.ConsentPending || m.Source != "till" {
		t.Errorf("member %+v: want linked_transactions 1, home store oslo-1, consent pending, source till", m)
	}
	if m.Email == nil || *m.Email != "kari@example.com" {
		t.Errorf("email %v, want it lowercased", m.Email)
	}

	lookups := []struct{ name, query string }{
		{"by card", "card=" + goodCard},
		{"by email in another case", "email=KARI@example.com"},
	}
	for _, l := range lookups {
		t.Run("the member is found "+l.name, func(t *testing.T) {
			res := tl.do(t, "GET", "/api/v1/members/lookup?"+l.query, tl.oslo, nil)
			if res.Status != 200 {
				t.Fatalf("lookup: %d %s", res.Status, res.Body)
			}
			var got models.MemberLookup
			mustUnmarshal(t, res.Body, &got)
			if got.ID != m.ID || got.Card != goodCard || got.Name != "Kari Nordmann" {
				t.Errorf("lookup found %+v, want member %d", got, m.ID)
			}
		})
	}

	t.Run("a replay of the sale shows it matched", func(t *testing.T) {
		res := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, with(sale("R-1"), "member", map[string]any{"card": goodCard}))
		var again models.Transaction
		mustUnmarshal(t, res.Body, &again)
		if res.Status != 200 || again.Member == nil || !again.Member.Matched || again.Member.MemberID == nil || *again.Member.MemberID != m.ID {
			t.Errorf("replay %d %s, want 200 matched to member %d", res.Status, res.Body, m.ID)
		}
	})
	t.Run("a new sale on the card is matched at once", func(t *testing.T) {
		res := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, with(sale("R-2"), "member", map[string]any{"card": goodCard}))
		var txn models.Transaction
		mustUnmarshal(t, res.Body, &txn)
		if res.Status != 201 || txn.Member == nil || !txn.Member.Matched {
			t.Errorf("got %d %s, want 201 matched", res.Status, res.Body)
		}
	})
}

func TestMembers(t *testing.T) {
	tl := newTill(t)
	res := tl.do(t, "POST", "/api/v1/members", tl.oslo, map[string]any{
		"card": goodCard, "email": "kari@example.com", "phone": "+47 912 34 567", "name": "Kari", "marketing_consent": false})
	if res.Status != 201 {
		t.Fatalf("create member: %d %s", res.Status, res.Body)
	}
	cases := []struct {
		name   string
		token  string
		body   map[string]any
		status int
		field  string
	}{
		{"a taken card is a conflict", tl.oslo, map[string]any{"card": goodCard, "marketing_consent": false}, 409, "card"},
		{"a taken email is a conflict", tl.oslo, map[string]any{"email": "KARI@example.com", "marketing_consent": false}, 409, "email"},
		{"a taken phone is a conflict", tl.oslo, map[string]any{"phone": "+4791234567", "marketing_consent": false}, 409, "phone"},
		{"a card with a bad check digit is invalid", tl.oslo, map[string]any{"card": badCard, "marketing_consent": false}, 422, "card"},
		{"no consent answer is invalid", tl.oslo, map[string]any{"name": "Ola"}, 422, "marketing_consent"},
		{"consent without an email is invalid", tl.oslo, map[string]any{"name": "Ola", "marketing_consent": true}, 422, "email"},
		{"a bad email is invalid", tl.oslo, map[string]any{"email": "not-an-address", "marketing_consent": false}, 422, "email"},
		{"an unknown home store is invalid", tl.oslo, map[string]any{"home_store": "nowhere", "marketing_consent": false}, 422, "home_store"},
		{"consent as a string is invalid", tl.oslo, map[string]any{"marketing_consent": "yes"}, 422, "marketing_consent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tl.do(t, "POST", "/api/v1/members", tc.token, tc.body), tc.status, tc.field)
		})
	}

	t.Run("an admin may enrol a member and a card is issued", func(t *testing.T) {
		res := tl.do(t, "POST", "/api/v1/members", tl.admin, map[string]any{"name": "Ola", "marketing_consent": false})
		if res.Status != 201 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		var m models.Member
		mustUnmarshal(t, res.Body, &m)
		if !models.ValidCard(m.Card) || m.Source != "admin" || m.HomeStore != "" {
			t.Errorf("member %+v: want a valid issued card, source admin, no home store", m)
		}
	})

	lookups := []struct {
		name   string
		query  string
		status int
		field  string
	}{
		{"a lookup by phone with separators finds the member", "phone=%2B47%20912-34-567", 200, ""},
		{"a lookup of an unknown card is not found", "card=4006381333931", 404, ""},
		{"a lookup of an unknown email is not found", "email=nobody@example.com", 404, ""},
		{"a lookup with nothing to look for is invalid", "", 422, "card"},
		{"a lookup with two keys is invalid", "card=" + goodCard + "&email=kari@example.com", 422, "card"},
		{"a lookup of a card with a bad check digit is invalid", "card=" + badCard, 422, "card"},
	}
	for _, l := range lookups {
		t.Run(l.name, func(t *testing.T) {
			res := tl.do(t, "GET", "/api/v1/members/lookup?"+l.query, tl.oslo, nil)
			if l.status == 200 {
				if res.Status != 200 {
					t.Fatalf("status %d: %s", res.Status, res.Body)
				}
				return
			}
			wantError(t, res, l.status, l.field)
		})
	}
}

func TestRefunds(t *testing.T) {
	tl := newTill(t)
	if res := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, with(sale("R-1"), "member", map[string]any{"card": goodCard})); res.Status != 201 {
		t.Fatalf("sale: %d %s", res.Status, res.Body)
	}
	refund := func(id, of string) map[string]any {
		r := with(with(sale(id), "kind", "refund"), "refunds", of)
		return with(r, "amount", 5000)
	}
	t.Run("a refund of a sale that does not exist is invalid", func(t *testing.T) {
		wantError(t, tl.do(t, "POST", "/api/v1/transactions", tl.oslo, refund("F-1", "R-404")), 422, "refunds")
	})
	t.Run("a refund of a sale of another store is invalid", func(t *testing.T) {
		wantError(t, tl.do(t, "POST", "/api/v1/transactions", tl.bergen, with(refund("F-2", "R-1"), "store", "bergen-1")), 422, "refunds")
	})
	t.Run("a refund of a real sale is recorded with the sale's member", func(t *testing.T) {
		res := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, refund("F-3", "R-1"))
		if res.Status != 201 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		var txn models.Transaction
		mustUnmarshal(t, res.Body, &txn)
		if txn.Kind != "refund" || txn.Refunds != "R-1" || txn.Amount != 5000 {
			t.Errorf("refund stored as %+v", txn)
		}
	})
	t.Run("a refund of a refund is invalid", func(t *testing.T) {
		wantError(t, tl.do(t, "POST", "/api/v1/transactions", tl.oslo, refund("F-4", "F-3")), 422, "refunds")
	})
	t.Run("a refund naming no sale is recorded", func(t *testing.T) {
		res := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, without(refund("F-5", ""), "refunds"))
		if res.Status != 201 {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
	})
}

func TestBatch(t *testing.T) {
	tl := newTill(t)
	if res := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, sale("R-old")); res.Status != 201 {
		t.Fatalf("sale: %d %s", res.Status, res.Body)
	}
	items := []any{
		sale("R-new"),                    // 201
		sale("R-old"),                    // 200: stored before
		with(sale("R-bad"), "amount", 0), // 422
		with(sale("R-old"), "amount", 1), // 409
		with(sale("R-new"), "amount", 1), // 409: the first copy in the batch wins
		sale("R-new"),                    // 200: a copy of the first
		with(sale("R-x"), "id", 5),       // 422: wrong type, names id
		7,                                // 400: not an object
		with(with(sale("R-ref"), "kind", "refund"), "refunds", "R-new"), // 201: refunds a sale of this batch
	}
	res := tl.do(t, "POST", "/api/v1/transactions/batch", tl.oslo, map[string]any{"transactions": items})
	if res.Status != 200 {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	var out batchOutput
	mustUnmarshal(t, res.Body, &out)
	want := []struct {
		status int
		field  string
	}{{201, ""}, {200, ""}, {422, "amount"}, {409, "id"}, {409, "id"}, {200, ""}, {422, "id"}, {400, ""}, {201, ""}}
	if len(out.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(out.Results), len(want))
	}
	for i, w := range want {
		r := out.Results[i]
		if r.Index != i || r.Status != w.status {
			t.Errorf("item %d: index %d status %d, want status %d (%+v)", i, r.Index, r.Status, w.status, r.Error)
			continue
		}
		if (r.Transaction != nil) != (w.status < 300) || (r.Error != nil) != (w.status >= 300) {
			t.Errorf("item %d: transaction %v error %v", i, r.Transaction != nil, r.Error)
		}
		if r.Error != nil && r.Error.Code != codeOf[w.status] {
			t.Errorf("item %d: error code %q, want %q", i, r.Error.Code, codeOf[w.status])
		}
		if w.field != "" && r.Error != nil && r.Error.Fields[w.field] == "" {
			t.Errorf("item %d: error.fields %v does not name %q", i, r.Error.Fields, w.field)
		}
	}
	if out.Created != 2 || out.Replayed != 2 || out.Failed != 5 {
		t.Errorf("created %d replayed %d failed %d, want 2, 2, 5", out.Created, out.Replayed, out.Failed)
	}
	if n := tl.count(t, `SELECT count(*) FROM transactions`); n != 3 {
		t.Errorf("%d transactions stored, want 3", n)
	}

	t.Run("a batch of 1000 items is accepted", func(t *testing.T) {
		items := make([]any, models.MaxBatch)
		for i := range items {
			items[i] = sale(fmt.Sprintf("K-%04d", i))
		}
		res := tl.do(t, "POST", "/api/v1/transactions/batch", tl.oslo, map[string]any{"transactions": items})
		var out batchOutput
		mustUnmarshal(t, res.Body, &out)
		if res.Status != 200 || out.Created != models.MaxBatch {
			t.Errorf("status %d, created %d, want 200 and %d", res.Status, out.Created, models.MaxBatch)
		}
	})
	t.Run("an empty batch is fine", func(t *testing.T) {
		res := tl.do(t, "POST", "/api/v1/transactions/batch", tl.oslo, map[string]any{"transactions": []any{}})
		if res.Status != 200 {
			t.Errorf("status %d: %s", res.Status, res.Body)
		}
	})
}

func TestStores(t *testing.T) {
	tl := newTill(t)
	berlin := map[string]any{"code": "berlin-1", "name": "Berlin", "timezone": "Europe/Berlin", "currency": "eur"}
	res := tl.do(t, "POST", "/api/v1/stores", tl.admin, berlin)
	if res.Status != 201 {
		t.Fatalf("create store: %d %s", res.Status, res.Body)
	}
	var st models.Store
	mustUnmarshal(t, res.Body, &st)
	if st.Code != "berlin-1" || st.Currency != "EUR" {
		t.Errorf("store %+v, want berlin-1 in EUR", st)
	}
	cases := []struct {
		name   string
		body   map[string]any
		status int
		field  string
	}{
		{"a taken code is a conflict", berlin, 409, "code"},
		{"an unknown time zone is invalid", with(berlin, "timezone", "Mars/Olympus"), 422, "timezone"},
		{"an unknown currency is invalid", with(with(berlin, "code", "b2"), "currency", "XYZ"), 422, "currency"},
		{"a code with capitals is invalid", with(berlin, "code", "Berlin"), 422, "code"},
		{"a missing name is invalid", without(with(berlin, "code", "b3"), "name"), 422, "name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tl.do(t, "POST", "/api/v1/stores", tl.admin, tc.body), tc.status, tc.field)
		})
	}
	t.Run("every role may list the stores", func(t *testing.T) {
		for _, tok := range []string{tl.admin, tl.marketer, tl.oslo} {
			res := tl.do(t, "GET", "/api/v1/stores", tok, nil)
			var out struct{ Stores []models.Store }
			mustUnmarshal(t, res.Body, &out)
			if res.Status != 200 || len(out.Stores) != 3 {
				t.Errorf("status %d, %d stores, want 200 and 3", res.Status, len(out.Stores))
			}
		}
	})
}

func TestNoStoresListIsEmptyNotNull(t *testing.T) {
	a := newAPI(t)
	tok, err := a.db.CreateAPIKey(context.Background(), models.RoleAdmin, "", "admin")
	if err != nil {
		t.Fatal(err)
	}
	res := a.do(t, "GET", "/api/v1/stores", tok, nil)
	if res.Status != 200 || strings.TrimSpace(string(res.Body)) != `{"stores":[]}` {
		t.Errorf("got %d %s, want an empty list", res.Status, res.Body)
	}
}

func TestOperations(t *testing.T) {
	tl := newTill(t)
	if res := tl.do(t, "POST", "/api/v1/transactions", tl.oslo, sale("R-1")); res.Status != 201 {
		t.Fatalf("sale: %d %s", res.Status, res.Body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		t.Run(path+" answers 200", func(t *testing.T) {
			if res := tl.do(t, "GET", path, "", nil); res.Status != 200 {
				t.Errorf("status %d: %s", res.Status, res.Body)
			}
		})
	}
	t.Run("/metrics counts requests by route and shows the pool", func(t *testing.T) {
		res := tl.do(t, "GET", "/metrics", "", nil)
		if res.Status != 200 {
			t.Fatalf("status %d", res.Status)
		}
		body := string(res.Body)
		for _, want := range []string{
			`regulars_http_requests_total{method="POST",route="/api/v1/transactions",status="201"} 1`,
			`regulars_http_request_duration_seconds_bucket{method="POST",route="/api/v1/transactions",status="201"`,
			"regulars_db_pool_connections ",
			"regulars_db_pool_max_connections ",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})
	t.Run("/readyz answers 503 when the database is gone", func(t *testing.T) {
		gone := newAPI(t)
		gone.db.Pool.Close()
		if res := gone.do(t, "GET", "/readyz", "", nil); res.Status != 503 {
			t.Errorf("status %d: %s", res.Status, res.Body)
		}
		if res := gone.do(t, "GET", "/healthz", "", nil); res.Status != 200 {
			t.Errorf("/healthz status %d without a database, want 200", res.Status)
		}
	})
	t.Run("a request id comes back on every response", func(t *testing.T) {
		if res := tl.do(t, "GET", "/healthz", "", nil); res.Header.Get("X-Request-Id") == "" {
			t.Error("no X-Request-Id")
		}
	})
}
