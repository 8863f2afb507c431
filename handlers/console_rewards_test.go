package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

func TestConsoleRewards(t *testing.T) {
	f := newMemFixture(t) // one store, in NOK
	ctx := context.Background()
	admin, csrf := f.loginAs(t, "admin")
	marketer, marketerCSRF := f.loginAs(t, "marketer")
	stored := func() string {
		t.Helper()
		p, err := f.DB.FindRewardProgram(ctx)
		if err != nil && models.ErrorCode(err) != models.ENOTFOUND {
			t.Fatal(err)
		}
		rs, err := f.DB.FindRewards(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := "program: none"
		if p != nil {
			days := "never"
			if p.ExpireAfterDays != nil {
				days = fmt.Sprint(*p.ExpireAfterDays)
			}
			out = fmt.Sprintf("program: %d/%g/%d/%s", p.PointsPerVisit, p.PointsPerMajorUnit, p.MinAmount, days)
		}
		for _, r := range rs {
			d := "?"
			switch {
			case r.DiscountMinor != nil:
				d = fmt.Sprint(*r.DiscountMinor)
			case r.DiscountPercent != nil:
				d = fmt.Sprintf("%g%%", *r.DiscountPercent)
			}
			out += fmt.Sprintf("; %s %q %d %s %v", r.Code, r.Name, r.CostPoints, d, r.Active)
		}
		return out
	}
	mustContain := func(t *testing.T, body string, wants ...string) {
		t.Helper()
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %s", want)
			}
		}
	}

	t.Run("the navigation leads to the rewards", func(t *testing.T) {
		res := f.get(t, marketer, "/console/members")
		mustContain(t, res.Body, `href="/console/rewards"`)
	})

	t.Run("an admin sets the program, the minimum typed in kroner", func(t *testing.T) {
		res := f.postForm(t, admin, "/console/rewards/program", csrf, url.Values{"points_per_visit": {"1"},
			"points_per_major_unit": {"0"}, "min_amount": {"50,5"}, "expire_after_days": {""}})
		if res.Status != http.StatusSeeOther || res.Header.Get("Location") != "/console/rewards?saved=program" {
			t.Fatalf("save program: %d %s\n%s", res.Status, res.Header.Get("Location"), res.Body)
		}
		if got := stored(); got != "program: 1/0/5050/never" {
			t.Fatalf("stored %s", got)
		}
		page := f.get(t, admin, res.Header.Get("Location"))
		mustContain(t, page.Body, "Reward program saved.", "50.50 NOK", "<dd>never</dd>", `name="min_amount" value="50.50"`,
			`aria-current="page">Rewards`)
	})

	t.Run("a bad program shows each error by its field and keeps what was typed", func(t *testing.T) {
		before := stored()
		res := f.postForm(t, admin, "/console/rewards/program", csrf, url.Values{"points_per_visit": {"lots"},
			"points_per_major_unit": {"x"}, "min_amount": {"12.345"}, "expire_after_days": {"0"}})
		if res.Status != http.StatusUnprocessableEntity || stored() != before {
			t.Fatalf("bad program: %d, stored %s", res.Status, stored())
		}
		mustContain(t, res.Body, "The program was not saved",
			`id="points_per_visit-err">must be a whole number`, `value="lots"`,
			`id="points_per_major_unit-err">must be a number`, `value="x"`,
			`id="min_amount-err">must be an amount`, `value="12.345"`,
			`id="expire_after_days-err">must be between 1 and 36500`)
	})

	t.Run("an admin adds rewards, as an amount and as a percentage", func(t *testing.T) {
		for _, form := range []url.Values{
			{"code": {"coffee"}, "name": {"Free coffee"}, "cost_points": {"10"}, "discount": {"35"}, "discount_kind": {"amount"}, "active": {"1"}},
			{"code": {"big-day"}, "name": {"Big day"}, "cost_points": {"50"}, "discount": {"12,5"}, "discount_kind": {"percent"}},
		} {
			res := f.postForm(t, admin, "/console/rewards", csrf, form)
			if res.Status != http.StatusSeeOther {
				t.Fatalf("add %s: %d\n%s", form.Get("code"), res.Status, res.Body)
			}
		}
		if got := stored(); got != `program: 1/0/5050/never; coffee "Free coffee" 10 3500 true; big-day "Big day" 50 12.5% false` {
			t.Fatalf("stored %s", got)
		}
		page := f.get(t, admin, "/console/rewards?saved=reward")
		mustContain(t, page.Body, "Reward saved.", `id="cost-coffee" name="cost_points" form="reward-coffee" value="10"`,
			`id="discount-coffee" name="discount" form="reward-coffee" value="35.00"`, `action="/console/rewards/edit/big-day"`)
	})

	t.Run("a bad or taken reward is not added and the form keeps what was typed", func(t *testing.T) {
		before := stored()
		res := f.postForm(t, admin, "/console/rewards", csrf, url.Values{"code": {"Not A Code"}, "name": {"Cake ☕"},
			"cost_points": {""}, "discount": {"150"}, "discount_kind": {"percent"}})
		if res.Status != http.StatusUnprocessableEntity || stored() != before {
			t.Fatalf("bad reward: %d, stored %s", res.Status, stored())
		}
		mustContain(t, res.Body, "The reward was not saved", `id="new-code-err">must be 1-32 lowercase`, `value="Not A Code"`,
			`value="Cake ☕"`, `id="new-cost-err">is required`, `id="new-discount-err">must be more than 0 and at most 100`,
			`<option value="percent" selected>`)
		res = f.postForm(t, admin, "/console/rewards", csrf, url.Values{"code": {"coffee"}, "name": {"Another"},
			"cost_points": {"5"}, "discount": {"10"}, "discount_kind": {"amount"}})
		if res.Status != http.StatusUnprocessableEntity || stored() != before {
			t.Fatalf("taken code: %d, stored %s", res.Status, stored())
		}
		mustContain(t, res.Body, `id="new-code-err">is taken`)
	})

	t.Run("an admin edits and deactivates a reward", func(t *testing.T) {
		res := f.postForm(t, admin, "/console/rewards/edit/coffee", csrf, url.Values{"name": {"Coffee on us"},
			"cost_points": {"8"}, "discount": {"20"}, "discount_kind": {"percent"}})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("edit: %d\n%s", res.Status, res.Body)
		}
		if got := stored(); !strings.Contains(got, `coffee "Coffee on us" 8 20% false`) {
			t.Fatalf("stored %s", got)
		}
	})

	t.Run("a bad edit shows the error on that reward's row", func(t *testing.T) {
		before := stored()
		res := f.postForm(t, admin, "/console/rewards/edit/big-day", csrf, url.Values{"name": {"Big day"},
			"cost_points": {"0"}, "discount": {"12.5"}, "discount_kind": {"percent"}, "active": {"1"}})
		if res.Status != http.StatusUnprocessableEntity || stored() != before {
			t.Fatalf("bad edit: %d, stored %s", res.Status, stored())
		}
		mustContain(t, res.Body, `id="cost-big-day-err">must be between 1 and 100000000`, `form="reward-big-day" value="0"`)
		if strings.Contains(res.Body, `id="cost-coffee-err"`) {
			t.Error("the error shows on another row")
		}
		if res := f.postForm(t, admin, "/console/rewards/edit/no-such", csrf, url.Values{"name": {"X"}, "cost_points": {"1"},
			"discount": {"1"}}); res.Status != http.StatusNotFound {
			t.Errorf("edit of a missing reward: %d", res.Status)
		}
	})

	t.Run("a marketer reads the rewards without forms", func(t *testing.T) {
		res := f.get(t, marketer, "/console/rewards")
		if res.Status != http.StatusOK {
			t.Fatalf("marketer: %d", res.Status)
		}
		mustContain(t, res.Body, "changing them needs the admin role", "Coffee on us", "20.0 %", "50.50 NOK")
		for _, form := range []string{`action="/console/rewards"`, `action="/console/rewards/program"`, `action="/console/rewards/edit/`} {
			if strings.Contains(res.Body, form) {
				t.Errorf("a marketer sees the form %s", form)
			}
		}
	})

	t.Run("nobody but an admin changes anything", func(t *testing.T) {
		before := stored()
		register, err := f.DB.CreateAPIKey(ctx, models.RoleRegister, "oslo-1", "till-2")
		if err != nil {
			t.Fatal(err)
		}
		program := url.Values{"points_per_visit": {"100"}, "points_per_major_unit": {"0"}}
		reward := url.Values{"code": {"free"}, "name": {"Free"}, "cost_points": {"1"}, "discount": {"100"}, "discount_kind": {"percent"}}
		edit := url.Values{"name": {"Free"}, "cost_points": {"1"}, "discount": {"1"}, "active": {"1"}}
		for _, tc := range []struct {
			name   string
			client *http.Client
			csrf   string
			header string
		}{
			{"a marketer", marketer, marketerCSRF, ""},
			{"a visitor without a session", f.newClient(t), "", ""},
			{"a till's API key", f.newClient(t), "", "Bearer " + register},
		} {
			for path, form := range map[string]url.Values{"/console/rewards/program": program, "/console/rewards": reward,
				"/console/rewards/edit/coffee": edit} {
				fv := url.Values{}
				for k, v := range form {
					fv[k] = v
				}
				if tc.csrf != "" {
					fv.Set("_csrf", tc.csrf)
				}
				req, err := http.NewRequest(http.MethodPost, f.URL+path, strings.NewReader(fv.Encode()))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				res := f.do(t, tc.client, req)
				if res.Status != http.StatusForbidden && res.Status != http.StatusSeeOther ||
					res.Status == http.StatusSeeOther && !strings.HasPrefix(res.Header.Get("Location"), "/console/login") {
					t.Errorf("%s posting %s: %d %s", tc.name, path, res.Status, res.Header.Get("Location"))
				}
			}
			if tc.client != marketer {
				req, _ := http.NewRequest(http.MethodGet, f.URL+"/console/rewards", nil)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				if res := f.do(t, tc.client, req); res.Status != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/console/login") {
					t.Errorf("%s reading the page: %d %s", tc.name, res.Status, res.Header.Get("Location"))
				}
			}
		}
		if got := stored(); got != before {
			t.Fatalf("stored %s, was %s", got, before)
		}
	})
}

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in     string
		digits int
		want   int64
	}{
		{"50", 2, 5000}, {"50,5", 2, 5050}, {"1 000.25", 2, 100025}, {"1500", 0, 1500}, {"1.234", 3, 1234}, {".5", 2, 50},
	} {
		if got, ok := parseAmount(tc.in, tc.digits); !ok || got != tc.want {
			t.Errorf("parseAmount(%q, %d) = %d, %v; want %d", tc.in, tc.digits, got, ok, tc.want)
		}
		if back, _ := parseAmount(formatAmount(tc.want, tc.digits), tc.digits); back != tc.want {
			t.Errorf("formatAmount(%d, %d) = %q does not read back", tc.want, tc.digits, formatAmount(tc.want, tc.digits))
		}
	}
	for _, in := range []string{"", "-1", "1.5", "abc", "1.", "1e5"} {
		if _, ok := parseAmount(in, 0); ok {
			t.Errorf("parseAmount(%q, 0) accepted", in)
		}
	}
}

// stampCard makes member card's points a stamp card: 1 point a visit, a reward "coffee" that
// costs cost, and visits live sales at oslo-1 (which must exist); it returns the till's key.
func stampCard(t *testing.T, db *models.DB, card string, cost, visits int) *models.Principal {
	t.Helper()
	ctx := context.Background()
	zero := 0.0
	if _, err := db.SetRewardProgram(ctx, models.RewardProgramInput{PointsPerVisit: models.Int{Present: true, Value: 1},
		PointsPerMajorUnit: &zero}); err != nil {
		t.Fatal(err)
	}
	code, name := "coffee", "Free coffee"
	if _, err := db.CreateReward(ctx, models.RewardInput{Code: &code, Name: &name, CostPoints: models.Int{Present: true, Value: int64(cost)},
		DiscountMinor: models.Int{Present: true, Value: 3500}}); err != nil {
		t.Fatal(err)
	}
	token, err := db.CreateAPIKey(ctx, models.RoleRegister, "oslo-1", "stamp-till")
	if err != nil {
		t.Fatal(err)
	}
	p, err := db.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	for i := range visits {
		in := models.TransactionInput{ID: fmt.Sprintf("S-%d", i+1), Store: "oslo-1", Register: "stamp-till", Kind: "sale",
			OccurredAt: time.Now().Add(-time.Hour).Format(time.RFC3339), Amount: models.Int{Value: 4500, Present: true},
			Currency: "NOK", Member: &models.MemberRef{Card: card}}
		if _, _, err := db.RecordTransaction(ctx, p, in); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestConsoleMemberPoints(t *testing.T) {
	f := newMemFixture(t)
	ctx := context.Background()
	marketer, _ := f.loginAs(t, "marketer")
	till := stampCard(t, f.DB, f.member.Card, 3, 4)
	if _, _, err := f.DB.Redeem(ctx, till, models.RedemptionInput{ID: "RD-1", Store: "oslo-1",
		Member: &models.MemberRef{Card: f.member.Card}, Reward: "coffee"}); err != nil {
		t.Fatal(err)
	}
	v, err := f.DB.CreateVoucher(ctx, f.member.ID, models.VoucherInput{Reward: "coffee",
		ExpiresAt: time.Now().Add(48 * time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	res := f.get(t, marketer, fmt.Sprintf("/console/members/%d", f.member.ID))
	if res.Status != http.StatusOK {
		t.Fatalf("member page: %d", res.Status)
	}
	for _, want := range []string{`<dd class="num">1 point</dd>`, "<td>spent</td>", "−3", "redemption RD-1 at oslo-1",
		"<td>earned</td>", "+1", "receipt S-4 at oslo-1", v.Code, "Free coffee (coffee)"} {
		if !strings.Contains(res.Body, want) {
			t.Errorf("member page lacks %s", want)
		}
	}
}
