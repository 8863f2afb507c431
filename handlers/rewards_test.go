package handlers

import (
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// rewardsTill is a till with a program (1 point per krone), the rewards coffee (10 points,
// 35.00 off) and tenoff (20 points, 10 % off), and a member with goodCard.
type rewardsTill struct {
	*till
	memberID int64
	sales    int
}

func newRewardsTill(t *testing.T) *rewardsTill {
	t.Helper()
	rt := &rewardsTill{till: newTill(t)}
	rt.mustDo(t, "PUT", "/api/v1/rewards/program", rt.admin, map[string]any{"points_per_visit": 0, "points_per_major_unit": 1}, 200)
	rt.mustDo(t, "POST", "/api/v1/rewards", rt.admin, map[string]any{"code": "coffee", "name": "Free coffee", "cost_points": 10, "discount_minor": 3500}, 201)
	rt.mustDo(t, "POST", "/api/v1/rewards", rt.admin, map[string]any{"code": "tenoff", "name": "10 % off", "cost_points": 20, "discount_percent": 10}, 201)
	res := rt.mustDo(t, "POST", "/api/v1/members", rt.oslo, map[string]any{"card": goodCard, "email": "kari@example.com", "name": "Kari", "marketing_consent": false}, 201)
	var m models.Member
	mustUnmarshal(t, res.Body, &m)
	rt.memberID = m.ID
	return rt
}

func (rt *rewardsTill) mustDo(t *testing.T, method, path, token string, body any, status int) *response {
	t.Helper()
	res := rt.do(t, method, path, token, body)
	if res.Status != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, res.Status, status, res.Body)
	}
	return res
}

// earn posts a sale of the member worth points.
func (rt *rewardsTill) earn(t *testing.T, points int) {
	t.Helper()
	rt.sales++
	body := with(with(sale(fmt.Sprintf("S-%d", rt.sales)), "amount", points*100), "member", map[string]any{"card": goodCard})
	res := rt.mustDo(t, "POST", "/api/v1/transactions", rt.oslo, without(body, "items"), 201)
	if got := res.JSON(t)["points_earned"]; fmt.Sprint(got) != strconv.Itoa(points) {
		t.Fatalf("points_earned %v, want %d", got, points)
	}
}

func TestRewardProgramAndRewardsAPI(t *testing.T) {
	tl := newTill(t)
	rt := &rewardsTill{till: tl}
	wantError(t, tl.do(t, "GET", "/api/v1/rewards/program", tl.admin, nil), 404, "")
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"a program without points_per_visit is invalid", map[string]any{"points_per_major_unit": 0}, "points_per_visit"},
		{"negative unit points are invalid", map[string]any{"points_per_visit": 1, "points_per_major_unit": -1}, "points_per_major_unit"},
		{"unit points as a string are invalid", map[string]any{"points_per_visit": 1, "points_per_major_unit": "1"}, "points_per_major_unit"},
		{"a decimal min_amount is invalid", map[string]any{"points_per_visit": 1, "points_per_major_unit": 0, "min_amount": 1.5}, "min_amount"},
		{"zero expiry days are invalid", map[string]any{"points_per_visit": 1, "points_per_major_unit": 0, "expire_after_days": 0}, "expire_after_days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tl.do(t, "PUT", "/api/v1/rewards/program", tl.admin, tc.body), 422, tc.field)
		})
	}
	program := map[string]any{"points_per_visit": 1, "points_per_major_unit": 0, "min_amount": 0, "expire_after_days": 365}
	wantError(t, tl.do(t, "PUT", "/api/v1/rewards/program", tl.marketer, program), 403, "")
	wantError(t, tl.do(t, "PUT", "/api/v1/rewards/program", tl.oslo, program), 403, "")
	rt.mustDo(t, "PUT", "/api/v1/rewards/program", tl.admin, program, 200)
	rt.mustDo(t, "PUT", "/api/v1/rewards/program", tl.admin, with(program, "expire_after_days", nil), 200)
	for _, token := range []string{tl.admin, tl.marketer, tl.oslo} {
		got := rt.mustDo(t, "GET", "/api/v1/rewards/program", token, nil, 200).JSON(t)
		if got["expire_after_days"] != nil || fmt.Sprint(got["points_per_visit"]) != "1" {
			t.Errorf("program %v, want 1 a visit, never expiring", got)
		}
	}

	coffee := map[string]any{"code": "coffee", "name": "Free coffee", "cost_points": 10, "discount_minor": 3500}
	wantError(t, tl.do(t, "POST", "/api/v1/rewards", tl.marketer, coffee), 403, "")
	rt.mustDo(t, "POST", "/api/v1/rewards", tl.admin, coffee, 201)
	wantError(t, tl.do(t, "POST", "/api/v1/rewards", tl.admin, coffee), 409, "code")
	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"a bad code is invalid", with(coffee, "code", "Café"), "code"},
		{"no discount is invalid", without(with(coffee, "code", "x"), "discount_minor"), "discount_minor"},
		{"both discounts are invalid", with(with(coffee, "code", "x"), "discount_percent", 5), "discount_minor"},
		{"a cost of 0 is invalid", with(with(coffee, "code", "x"), "cost_points", 0), "cost_points"},
		{"a percent over 100 is invalid", without(with(with(coffee, "code", "x"), "discount_percent", 150), "discount_minor"), "discount_percent"},
		{"a name as a number is invalid", with(with(coffee, "code", "x"), "name", 5), "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tl.do(t, "POST", "/api/v1/rewards", tl.admin, tc.body), 422, tc.field)
		})
	}
	got := rt.mustDo(t, "PATCH", "/api/v1/rewards/coffee", tl.admin, map[string]any{"discount_percent": 25, "active": false}, 200).JSON(t)
	if got["discount_minor"] != nil || fmt.Sprint(got["discount_percent"]) != "25" || got["active"] != false || got["name"] != "Free coffee" {
		t.Errorf("patched %v", got)
	}
	wantError(t, tl.do(t, "PATCH", "/api/v1/rewards/tea", tl.admin, map[string]any{"active": false}), 404, "")
	wantError(t, tl.do(t, "PATCH", "/api/v1/rewards/coffee", tl.admin, map[string]any{"cost_points": "ten"}), 422, "cost_points")
	wantError(t, tl.do(t, "PATCH", "/api/v1/rewards/coffee", tl.oslo, map[string]any{"active": true}), 403, "")
	for _, token := range []string{tl.admin, tl.marketer, tl.oslo} {
		list := rt.mustDo(t, "GET", "/api/v1/rewards", token, nil, 200).JSON(t)["rewards"].([]any)
		if len(list) != 1 {
			t.Errorf("rewards %v, want coffee", list)
		}
	}
}

func TestVouchersAndTheTillLookup(t *testing.T) {
	rt := newRewardsTill(t)
	lookup := func() map[string]any {
		t.Helper()
		return rt.mustDo(t, "GET", "/api/v1/members/lookup?card="+goodCard, rt.oslo, nil, 200).JSON(t)
	}
	rt.earn(t, 12)
	m := lookup()
	points, _ := m["points"].(map[string]any)
	if points == nil || fmt.Sprint(points["balance"]) != "12" {
		t.Fatalf("lookup %v, want points with balance 12", m)
	}
	rewards := points["rewards"].([]any)
	if len(rewards) != 2 || rewards[0].(map[string]any)["affordable"] != true || rewards[1].(map[string]any)["affordable"] != false {
		t.Errorf("rewards %v, want coffee affordable, tenoff not", rewards)
	}
	if v, ok := m["vouchers"].([]any); !ok || len(v) != 0 {
		t.Errorf("vouchers %v, want an empty list", m["vouchers"])
	}

	path := fmt.Sprintf("/api/v1/members/%d/vouchers", rt.memberID)
	expires := time.Now().Add(72 * time.Hour).Format(time.RFC3339)
	body := map[string]any{"reward": "coffee", "expires_at": expires}
	wantError(t, rt.do(t, "POST", path, rt.marketer, body), 403, "")
	wantError(t, rt.do(t, "POST", path, rt.oslo, body), 403, "")
	wantError(t, rt.do(t, "POST", "/api/v1/members/999999/vouchers", rt.admin, body), 404, "")
	wantError(t, rt.do(t, "POST", path, rt.admin, with(body, "reward", "tea")), 422, "reward")
	wantError(t, rt.do(t, "POST", path, rt.admin, with(body, "expires_at", "tomorrow")), 422, "expires_at")
	wantError(t, rt.do(t, "POST", path, rt.admin, without(body, "expires_at")), 422, "expires_at")
	v := rt.mustDo(t, "POST", path, rt.admin, body, 201).JSON(t)
	code, _ := v["code"].(string)
	if !models.ValidCard(code) || v["name"] != "Free coffee" || v["reward"] != "coffee" {
		t.Errorf("voucher %v, want an EAN-13 code for coffee", v)
	}
	vouchers, _ := lookup()["vouchers"].([]any)
	if len(vouchers) != 1 || vouchers[0].(map[string]any)["code"] != code {
		t.Errorf("lookup vouchers %v, want %s", vouchers, code)
	}
}

func TestMemberPointsAndLiabilityAPI(t *testing.T) {
	rt := newRewardsTill(t)
	rt.earn(t, 15)
	rt.earn(t, 7)
	rt.mustDo(t, "POST", "/api/v1/redemptions", rt.oslo, map[string]any{"id": "RD-1", "store": "oslo-1", "member": map[string]any{"card": goodCard}, "reward": "coffee"}, 201)

	path := fmt.Sprintf("/api/v1/members/%d/points", rt.memberID)
	wantError(t, rt.do(t, "GET", path, rt.oslo, nil), 403, "")
	wantError(t, rt.do(t, "GET", "/api/v1/members/999999/points", rt.admin, nil), 404, "")
	wantError(t, rt.do(t, "GET", path+"?limit=0", rt.admin, nil), 422, "limit")
	wantError(t, rt.do(t, "GET", path+"?limit=x", rt.admin, nil), 422, "limit")
	wantError(t, rt.do(t, "GET", path+"?before=-1", rt.admin, nil), 422, "before")
	first := rt.mustDo(t, "GET", path+"?limit=2", rt.marketer, nil, 200).JSON(t)
	entries := first["entries"].([]any)
	if fmt.Sprint(first["balance"]) != "12" || len(entries) != 2 || first["next_before"] == nil {
		t.Fatalf("first page %v, want balance 12, 2 entries and a next page", first)
	}
	if e := entries[0].(map[string]any); e["kind"] != "spent" || fmt.Sprint(e["points"]) != "-10" ||
		fmt.Sprint(e["redemption"]) != "map[id:RD-1 store:oslo-1]" {
		t.Errorf("newest entry %v, want RD-1's spending", e)
	}
	rest := rt.mustDo(t, "GET", fmt.Sprintf("%s?limit=2&before=%v", path, first["next_before"]), rt.admin, nil, 200).JSON(t)
	if e := rest["entries"].([]any); len(e) != 1 || fmt.Sprint(e[0].(map[string]any)["transaction"]) != "map[id:S-1 store:oslo-1]" || rest["next_before"] != nil {
		t.Errorf("last page %v, want S-1's credit and no next page", rest)
	}

	wantError(t, rt.do(t, "GET", "/api/v1/rewards/liability", rt.marketer, nil), 403, "")
	wantError(t, rt.do(t, "GET", "/api/v1/rewards/liability?as_of=2026-12-01", rt.admin, nil), 422, "as_of")
	l := rt.mustDo(t, "GET", "/api/v1/rewards/liability", rt.admin, nil, 200).JSON(t)
	total := l["total"].(map[string]any)
	if l["reward"] != "coffee" || fmt.Sprint(l["rate_minor_per_point"]) != "350" ||
		fmt.Sprint(total["points_outstanding"]) != "12" || fmt.Sprint(total["value_minor"]) != "4200" {
		t.Errorf("liability %v, want 12 points worth 4200 at coffee's 350 a point", l)
	}
	if stores := l["stores"].([]any); len(stores) != 1 || stores[0].(map[string]any)["store"] != "oslo-1" {
		t.Errorf("stores %v, want oslo-1", stores)
	}
	past := url.QueryEscape(time.Now().Add(-24 * time.Hour).Format(time.RFC3339))
	if l := rt.mustDo(t, "GET", "/api/v1/rewards/liability?as_of="+past, rt.admin, nil, 200).JSON(t); len(l["stores"].([]any)) != 0 {
		t.Errorf("as of yesterday %v, want nothing", l)
	}
}
