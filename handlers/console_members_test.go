package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/handlers/browsertest"

	"github.com/chromedp/chromedp"
	"github.com/regulars/regulars/models"
)

// memFixture is a console with a store, a member with two purchases and a tier ladder.
type memFixture struct {
	*consoleClient
	member *models.Member
}

func newMemFixture(t *testing.T) *memFixture {
	t.Helper()
	cc := newConsole(t)
	ctx := context.Background()
	if _, err := cc.DB.CreateStore(ctx, models.StoreInput{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	token, err := cc.DB.CreateAPIKey(ctx, models.RoleRegister, "oslo-1", "till-1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := cc.DB.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	m, err := cc.DB.CreateMember(ctx, p, models.MemberInput{Email: "kari.nordmann@example.com", Name: "Kari Nordmann",
		Phone: "+47 912 34 567", HomeStore: "oslo-1", MarketingConsent: &yes, Language: "nb", ConsentTextVersion: "2026-11"},
		models.ConsentEvidence{Source: "till"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, amount := range []int64{259000, 12950} {
		in := models.TransactionInput{ID: fmt.Sprintf("R-%d", i+1), Store: "oslo-1", Register: "till-1", Kind: "sale",
			OccurredAt: now.Add(-time.Duration(30-i) * 24 * time.Hour).Format(time.RFC3339),
			Amount:     models.Int{Value: amount, Present: true}, Currency: "NOK", Member: &models.MemberRef{Card: m.Card},
			Items: []models.ItemInput{{SKU: "LP-1001", Qty: models.Int{Value: 1, Present: true}, UnitPrice: models.Int{Value: amount, Present: true}}}}
		if _, _, err := cc.DB.RecordTransaction(ctx, p, in); err != nil {
			t.Fatal(err)
		}
	}
	five, ten := 5.0, 10.0
	if _, err := cc.DB.ReplaceTiers(ctx, []models.TierInput{
		{Name: "Silver", MinSpend: models.Int{Value: 100000, Present: true}, DiscountPercent: &five},
		{Name: "Gold", MinSpend: models.Int{Value: 500000, Present: true}, DiscountPercent: &ten},
	}); err != nil {
		t.Fatal(err)
	}
	full, err := cc.DB.FindMemberByID(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &memFixture{consoleClient: cc, member: full}
}

func TestConsoleMemberSearchAndProfile(t *testing.T) {
	f := newMemFixture(t)
	marketer, _ := f.loginAs(t, "marketer")
	for _, tc := range []struct {
		name, q string
		found   bool
	}{
		{"by card", f.member.Card, true},
		{"by the whole email", "kari.nordmann@example.com", true},
		{"by the beginning of the email", "kari.nord", true},
		{"by a part of the name", "nordm", true},
		{"nothing for a stranger", "nobody-here", false},
	} {
		t.Run("a marketer finds a member "+tc.name, func(t *testing.T) {
			res := f.get(t, marketer, "/console/members?q="+url.QueryEscape(tc.q))
			link := fmt.Sprintf(`href="/console/members/%d"`, f.member.ID)
			if res.Status != http.StatusOK || strings.Contains(res.Body, link) != tc.found {
				t.Fatalf("search %q: %d, found %v\n%s", tc.q, res.Status, !tc.found, res.Body)
			}
			if !tc.found && !strings.Contains(res.Body, "No member matches") {
				t.Errorf("no 'no match' message")
			}
		})
	}

	t.Run("the profile shows tier, discount, purchases and consents", func(t *testing.T) {
		res := f.get(t, marketer, fmt.Sprintf("/console/members/%d", f.member.ID))
		if res.Status != http.StatusOK {
			t.Fatalf("profile: %d\n%s", res.Status, res.Body)
		}
		for _, want := range []string{"Kari Nordmann", f.member.Card, "Silver", "5.0 %", "2\u202f590.00 NOK", "129.50 NOK", "R-1", "R-2", "granted", "2026-11"} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("profile lacks %q", want)
			}
		}
		if strings.Contains(res.Body, "/erase") || strings.Contains(res.Body, "/export") {
			t.Error("a marketer is offered export or erase")
		}
		if strings.Index(res.Body, "R-2") > strings.Index(res.Body, "R-1") {
			t.Error("purchases are not newest first")
		}
	})

	t.Run("an unknown member is a console 404 page", func(t *testing.T) {
		for _, path := range []string{"/console/members/999999", "/console/members/abc"} {
			if res := f.get(t, marketer, path); res.Status != http.StatusNotFound || !strings.Contains(res.Body, "<html") {
				t.Errorf("%s: %d", path, res.Status)
			}
		}
	})

	t.Run("text from members is escaped", func(t *testing.T) {
		if _, err := f.DB.Pool.Exec(context.Background(), `UPDATE members SET name = '<script>alert(1)</script>' WHERE id = $1`, f.member.ID); err != nil {
			t.Fatal(err)
		}
		res := f.get(t, marketer, "/console/members?q=script")
		if strings.Contains(res.Body, "<script>alert") || !strings.Contains(res.Body, "&lt;script&gt;") {
			t.Fatalf("unescaped name:\n%s", res.Body)
		}
	})
}

func TestConsoleMemberExportAndErase(t *testing.T) {
	f := newMemFixture(t)
	admin, csrf := f.loginAs(t, "admin")
	marketer, marketerCSRF := f.loginAs(t, "marketer")
	base := fmt.Sprintf("/console/members/%d", f.member.ID)

	t.Run("an admin sees export and erase", func(t *testing.T) {
		res := f.get(t, admin, base)
		if !strings.Contains(res.Body, base+"/export") || !strings.Contains(res.Body, base+"/erase") {
			t.Fatalf("no export or erase for an admin:\n%s", res.Body)
		}
	})

	t.Run("export downloads the member's data as JSON", func(t *testing.T) {
		res := f.get(t, admin, base+"/export")
		if res.Status != http.StatusOK || !strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("export: %d %v", res.Status, res.Header)
		}
		var x models.MemberExport
		if err := json.Unmarshal([]byte(res.Body), &x); err != nil {
			t.Fatal(err)
		}
		if x.Member.Card != f.member.Card || len(x.Transactions) != 2 || len(x.Consents) != 1 {
			t.Fatalf("export %+v", x)
		}
	})

	t.Run("a marketer can neither export nor erase", func(t *testing.T) {
		if res := f.get(t, marketer, base+"/export"); res.Status != http.StatusForbidden {
			t.Fatalf("export: %d", res.Status)
		}
		if res := f.get(t, marketer, base+"/erase"); res.Status != http.StatusForbidden {
			t.Fatalf("erase form: %d", res.Status)
		}
		res := f.postForm(t, marketer, base+"/erase", marketerCSRF, url.Values{"confirm_card": {f.member.Card}})
		if res.Status != http.StatusForbidden || !strings.Contains(res.Body, "You need the admin role") {
			t.Fatalf("erase: %d", res.Status)
		}
	})

	t.Run("erase without the CSRF token is refused and changes nothing", func(t *testing.T) {
		res := f.postForm(t, admin, base+"/erase", "", url.Values{"confirm_card": {f.member.Card}})
		if res.Status != http.StatusForbidden {
			t.Fatalf("erase without token: %d", res.Status)
		}
		if m, _ := f.DB.FindMemberByID(context.Background(), f.member.ID); m.Status == models.StatusErased {
			t.Fatal("erased without a CSRF token")
		}
	})

	t.Run("erase asks for the card number first", func(t *testing.T) {
		form := f.get(t, admin, base+"/erase")
		if form.Status != http.StatusOK || !strings.Contains(form.Body, "cannot be undone") {
			t.Fatalf("erase form: %d", form.Status)
		}
		res := f.postForm(t, admin, base+"/erase", csrf, url.Values{"confirm_card": {"123"}})
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(res.Body, "Type the member") {
			t.Fatalf("wrong confirmation: %d", res.Status)
		}
		if m, _ := f.DB.FindMemberByID(context.Background(), f.member.ID); m.Status == models.StatusErased {
			t.Fatal("erased without confirmation")
		}
	})

	t.Run("erase with the card number erases", func(t *testing.T) {
		res := f.postForm(t, admin, base+"/erase", csrf, url.Values{"confirm_card": {f.member.Card}})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("erase: %d\n%s", res.Status, res.Body)
		}
		page := f.get(t, admin, res.Header.Get("Location"))
		if page.Status != http.StatusOK || !strings.Contains(page.Body, "personal data was erased") || strings.Contains(page.Body, "Kari") {
			t.Fatalf("after erase: %d\n%s", page.Status, page.Body)
		}
		if res := f.get(t, admin, "/console/members?q=kari"); strings.Contains(res.Body, base) {
			t.Fatal("an erased member is still found")
		}
		if res := f.get(t, admin, base+"/export"); res.Status != http.StatusNotFound {
			t.Fatalf("export of an erased member: %d", res.Status)
		}
	})
}

func TestConsoleTiers(t *testing.T) {
	f := newMemFixture(t)
	admin, csrf := f.loginAs(t, "admin")
	marketer, marketerCSRF := f.loginAs(t, "marketer")
	ctx := context.Background()
	tiers := func() string {
		ts, err := f.DB.FindTiers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(ts)
	}
	before := tiers()

	t.Run("a marketer reads the tiers without a form", func(t *testing.T) {
		res := f.get(t, marketer, "/console/tiers")
		if res.Status != http.StatusOK || !strings.Contains(res.Body, "Gold") || !strings.Contains(res.Body, "5\u202f000.00") ||
			strings.Contains(res.Body, `action="/console/tiers"`) {
			t.Fatalf("tiers for a marketer: %d\n%s", res.Status, res.Body)
		}
	})

	t.Run("a marketer's post is refused and changes nothing", func(t *testing.T) {
		res := f.postForm(t, marketer, "/console/tiers", marketerCSRF, url.Values{"rows": {"1"}, "name.0": {"All"},
			"min_spend.0": {"0"}, "discount.0": {"50"}})
		if res.Status != http.StatusForbidden || tiers() != before {
			t.Fatalf("marketer post: %d, tiers %s", res.Status, tiers())
		}
	})

	t.Run("an admin's post without the CSRF token is refused and changes nothing", func(t *testing.T) {
		res := f.postForm(t, admin, "/console/tiers", "", url.Values{"rows": {"1"}, "name.0": {"All"},
			"min_spend.0": {"0"}, "discount.0": {"50"}})
		if res.Status != http.StatusForbidden || tiers() != before {
			t.Fatalf("post without token: %d, tiers %s", res.Status, tiers())
		}
	})

	t.Run("the editor shows the ladder in major units", func(t *testing.T) {
		res := f.get(t, admin, "/console/tiers")
		for _, want := range []string{`value="Silver"`, `value="1000.00"`, `value="Gold"`, `value="5000.00"`, `value="10"`, `name="name.3"`} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("editor lacks %s", want)
			}
		}
	})

	t.Run("field errors show by their inputs and nothing is saved", func(t *testing.T) {
		res := f.postForm(t, admin, "/console/tiers", csrf, url.Values{"rows": {"4"},
			"name.0": {"Silver"}, "min_spend.0": {"1000"}, "discount.0": {"5"},
			"name.1": {"Silver"}, "min_spend.1": {"12.345"}, "discount.1": {"120"},
			"name.2": {""}, "min_spend.2": {""}, "discount.2": {""}, // blank: ignored
			"name.3": {"Bronze"}, "min_spend.3": {"500"}, "discount.3": {"2"}})
		if res.Status != http.StatusUnprocessableEntity || tiers() != before {
			t.Fatalf("bad tiers: %d, tiers %s", res.Status, tiers())
		}
		for _, want := range []string{
			`id="name-1-err">is the name of an earlier tier`,
			`id="min-1-err">must be an amount`,
			`id="discount-1-err">must be from 0 to 100`,
			`value="Bronze"`,
		} {
			if !strings.Contains(res.Body, want) {
				t.Errorf("page lacks %s", want)
			}
		}
		if strings.Contains(res.Body, `id="name-3-err"`) {
			t.Error("an error is shown by the wrong row")
		}
	})

	t.Run("an admin replaces the ladder", func(t *testing.T) {
		res := f.postForm(t, admin, "/console/tiers", csrf, url.Values{"rows": {"3"},
			"name.0": {"Silver"}, "min_spend.0": {"1000"}, "discount.0": {"5"}, "remove.0": {"1"},
			"name.1": {"Gold"}, "min_spend.1": {"6 000,50"}, "discount.1": {"12.5"},
			"name.2": {"Bronze"}, "min_spend.2": {"0"}, "discount.2": {"2"}})
		if res.Status != http.StatusSeeOther {
			t.Fatalf("save: %d\n%s", res.Status, res.Body)
		}
		if got := tiers(); got != "[{Bronze 0 2} {Gold 600050 12.5}]" {
			t.Fatalf("tiers %s", got)
		}
		if page := f.get(t, admin, res.Header.Get("Location")); !strings.Contains(page.Body, "Tiers saved.") {
			t.Error("no notice after saving")
		}
	})
}

func TestParseMajor(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "5000": 500000, "5000.5": 500050, "5 000,50": 500050, ".5": 50, "12.34": 1234} {
		if got, ok := parseMajor(in); !ok || got != want {
			t.Errorf("parseMajor(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "1.234", "abc", "1.", "1e5", "99999999999999999999"} {
		if _, ok := parseMajor(in); ok {
			t.Errorf("parseMajor(%q) accepted", in)
		}
	}
}

// TestConsoleLoginInBrowser logs in through the form in Chromium and opens a member's page,
// taking the screenshots console-login.png and console-member.png.
func TestConsoleLoginInBrowser(t *testing.T) {
	f := newMemFixture(t)
	email := f.createUser(t, "admin")
	srv := f.URL
	ctx := browsertest.New(t, 1024, 768, "")

	var errText string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(srv+fmt.Sprintf("/console/members/%d", f.member.ID)),
		chromedp.WaitVisible(`#email`, chromedp.ByQuery),
		chromedp.SendKeys(`#email`, email, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, "wrong password", chromedp.ByQuery),
		chromedp.Submit(`#password`, chromedp.ByQuery),
		chromedp.WaitVisible(`#login-error`, chromedp.ByQuery),
		chromedp.Text(`#login-error`, &errText, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("wrong password in the browser: %v", err)
	}
	if !strings.Contains(errText, "email or password is wrong") {
		t.Fatalf("error shown: %q", errText)
	}
	browsertest.Screenshot(t, ctx, "console-login.png")

	var heading, location string
	if err := chromedp.Run(ctx,
		chromedp.SendKeys(`#password`, consolePassword, chromedp.ByQuery),
		chromedp.Submit(`#password`, chromedp.ByQuery),
		chromedp.WaitVisible(`dl.facts`, chromedp.ByQuery),
		chromedp.Text(`h1`, &heading, chromedp.ByQuery),
		chromedp.Location(&location),
	); err != nil {
		t.Fatalf("log in in the browser: %v", err)
	}
	if heading != "Kari Nordmann" || !strings.HasSuffix(location, fmt.Sprintf("/console/members/%d", f.member.ID)) {
		t.Fatalf("after login: %q at %s", heading, location)
	}
	browsertest.Screenshot(t, ctx, "console-member.png")

	// The search form works from the keyboard.
	var found string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(srv+"/console/members"),
		chromedp.SendKeys(`#q`, "nordmann\n", chromedp.ByQuery),
		chromedp.WaitVisible(`table.data`, chromedp.ByQuery),
		chromedp.Text(`table.data tbody`, &found, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("search in the browser: %v", err)
	}
	if !strings.Contains(found, f.member.Card) {
		t.Fatalf("search result %q", found)
	}
}
