package handlers

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

func redemption(id string) map[string]any {
	return map[string]any{"id": id, "store": "oslo-1", "member": map[string]any{"card": goodCard}, "reward": "coffee"}
}

// wantCode checks a 409's specific error code.
func wantConflict(t *testing.T, res *response, code string) {
	t.Helper()
	if res.Status != http.StatusConflict {
		t.Fatalf("status %d, want 409; body %s", res.Status, res.Body)
	}
	if got, _ := res.ErrorFields(t); got != code {
		t.Errorf("error.code %q, want %q", got, code)
	}
}

func TestRedemptionsAPI(t *testing.T) {
	rt := newRewardsTill(t)
	rt.earn(t, 25)
	body := with(redemption("RD-1"), "transaction", "R-000123")
	res := rt.mustDo(t, "POST", "/api/v1/redemptions", rt.oslo, body, 201)
	got := res.JSON(t)
	if fmt.Sprint(got["points_spent"]) != "10" || fmt.Sprint(got["balance_after"]) != "15" || fmt.Sprint(got["discount_minor"]) != "3500" {
		t.Errorf("redemption %v", got)
	}
	if res.Header.Get("Idempotent-Replayed") != "" {
		t.Error("a 201 says it is a replay")
	}
	again := rt.mustDo(t, "POST", "/api/v1/redemptions", rt.oslo, body, 200)
	if again.Header.Get("Idempotent-Replayed") != "true" {
		t.Error("a replay without Idempotent-Replayed: true")
	}
	if n := rt.count(t, `SELECT coalesce(sum(points), 0)::int FROM points_ledger`); n != 15 {
		t.Errorf("balance %d after a replay, want 15", n)
	}
	wantError(t, rt.do(t, "POST", "/api/v1/redemptions", rt.oslo, with(body, "reward", "tenoff")), 409, "id")

	rt.mustDo(t, "POST", "/api/v1/redemptions", rt.oslo, redemption("RD-2"), 201)
	wantConflict(t, rt.do(t, "POST", "/api/v1/redemptions", rt.oslo, redemption("RD-3")), "insufficient_points")

	cases := []struct {
		name   string
		token  string
		body   any
		status int
		field  string
	}{
		{"a register of another store is forbidden", rt.bergen, redemption("RD-9"), 403, ""},
		{"an admin is forbidden", rt.admin, redemption("RD-9"), 403, ""},
		{"a redemption without id is invalid", rt.oslo, without(redemption("RD-9"), "id"), 422, "id"},
		{"a redemption without member is invalid", rt.oslo, without(redemption("RD-9"), "member"), 422, "member"},
		{"a card with a bad check digit is invalid", rt.oslo, with(redemption("RD-9"), "member", map[string]any{"card": badCard}), 422, "member.card"},
		{"neither reward nor voucher is invalid", rt.oslo, without(redemption("RD-9"), "reward"), 422, "reward"},
		{"both reward and voucher are invalid", rt.oslo, with(redemption("RD-9"), "voucher", "2800000000005"), 422, "voucher"},
		{"an unknown reward is invalid", rt.oslo, with(redemption("RD-9"), "reward", "tea"), 422, "reward"},
		{"a reward as a number is invalid", rt.oslo, with(redemption("RD-9"), "reward", 5), 422, "reward"},
		{"an unknown member is not found", rt.oslo, with(redemption("RD-9"), "member", map[string]any{"email": "nobody@example.com"}), 404, ""},
		{"an unknown voucher is not found", rt.oslo, with(without(redemption("RD-9"), "reward"), "voucher", "2800000000005"), 404, ""},
		{"a body that is not JSON is malformed", rt.oslo, raw(`{"id":`), 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, rt.do(t, "POST", "/api/v1/redemptions", tc.token, tc.body), tc.status, tc.field)
		})
	}

	// Cancel: the points come back once; a second cancel answers the same.
	first := rt.mustDo(t, "POST", "/api/v1/redemptions/oslo-1/RD-2/cancel", rt.oslo, nil, 200).JSON(t)
	second := rt.mustDo(t, "POST", "/api/v1/redemptions/oslo-1/RD-2/cancel", rt.oslo, nil, 200).JSON(t)
	if fmt.Sprint(first) != fmt.Sprint(second) || first["cancelled_at"] == nil || fmt.Sprint(first["balance_after"]) != "15" {
		t.Errorf("cancels %v and %v, want the same, cancelled, balance 15", first, second)
	}
	wantError(t, rt.do(t, "POST", "/api/v1/redemptions/oslo-1/RD-2/cancel", rt.bergen, nil), 403, "")
	wantError(t, rt.do(t, "POST", "/api/v1/redemptions/oslo-1/RD-2/cancel", rt.admin, nil), 403, "")
	wantError(t, rt.do(t, "POST", "/api/v1/redemptions/oslo-1/RD-404/cancel", rt.oslo, nil), 404, "")
	if n := rt.count(t, `SELECT coalesce(sum(points), 0)::int FROM points_ledger`); n != 15 {
		t.Errorf("balance %d after two cancels, want 15", n)
	}
}

func TestVoucherRedemptionsAPI(t *testing.T) {
	rt := newRewardsTill(t)
	expires := time.Now().Add(time.Hour)
	v := rt.mustDo(t, "POST", fmt.Sprintf("/api/v1/members/%d/vouchers", rt.memberID), rt.admin,
		map[string]any{"reward": "tenoff", "expires_at": expires.Format(time.RFC3339)}, 201).JSON(t)
	use := func(id string) map[string]any {
		return with(without(redemption(id), "reward"), "voucher", v["code"])
	}
	// 16 tills at once: one voucher, one use.
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 16 {
		wg.Go(func() {
			res := rt.do(t, "POST", "/api/v1/redemptions", rt.oslo, use(fmt.Sprintf("RD-%d", i)))
			if res.Status == http.StatusConflict {
				if code, _ := res.ErrorFields(t); code != "voucher_used" {
					t.Errorf("409 with code %q, want voucher_used", code)
				}
			}
			mu.Lock()
			statuses[res.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[201] != 1 || statuses[409] != 15 {
		t.Fatalf("statuses %v, want one 201 and fifteen 409", statuses)
	}
	var used string
	for i := range 16 {
		if rt.count(t, `SELECT count(*)::int FROM redemptions WHERE txn_id = $1`, fmt.Sprintf("RD-%d", i)) == 1 {
			used = fmt.Sprintf("RD-%d", i)
		}
	}
	got := rt.mustDo(t, "POST", "/api/v1/redemptions", rt.oslo, use(used), 200).JSON(t)
	if fmt.Sprint(got["points_spent"]) != "0" || fmt.Sprint(got["discount_percent"]) != "10" || got["voucher"] != v["code"] {
		t.Errorf("voucher redemption %v", got)
	}
	// Cancelled, it is usable again until it expires.
	rt.mustDo(t, "POST", "/api/v1/redemptions/oslo-1/"+used+"/cancel", rt.oslo, nil, 200)
	rt.mustDo(t, "POST", "/api/v1/redemptions", rt.oslo, use("RD-again"), 201)
	rt.mustDo(t, "POST", "/api/v1/redemptions/oslo-1/RD-again/cancel", rt.oslo, nil, 200)
	rt.db.Now = func() time.Time { return expires.Add(time.Minute) }
	wantConflict(t, rt.do(t, "POST", "/api/v1/redemptions", rt.oslo, use("RD-late")), "voucher_expired")
}

func TestConcurrentRedemptionsAPI(t *testing.T) {
	rt := newRewardsTill(t)
	rt.earn(t, 95)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range 32 {
		wg.Go(func() {
			res := rt.do(t, "POST", "/api/v1/redemptions", rt.oslo, redemption(fmt.Sprintf("RD-%d", i)))
			mu.Lock()
			statuses[res.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[201] != 9 || statuses[409] != 23 {
		t.Errorf("statuses %v, want nine 201 and twenty-three 409", statuses)
	}
	if n := rt.count(t, `SELECT coalesce(sum(points), 0)::int FROM points_ledger`); n != 5 {
		t.Errorf("balance %d, want 5", n)
	}
}
