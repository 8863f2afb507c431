package handlers

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/regulars/regulars/handlers/browsertest"
	"github.com/regulars/regulars/models"
)

// catalogueShop is a console over three active members: ada bought coffee, ben tea (twice a
// product of the brand "Leaf"), cai nothing, all in the last month.
func catalogueShop(t *testing.T) *consoleClient {
	t.Helper()
	cc := newConsole(t)
	ctx := context.Background()
	if _, err := cc.DB.Pool.Exec(ctx, `
		INSERT INTO stores (code, name, timezone, currency) VALUES ('oslo-1', 'Oslo', 'Europe/Oslo', 'NOK');
		INSERT INTO products (sku, name, category, brand, price_minor) VALUES
		    ('LP-1', 'Latte', 'Coffee', 'House', 4500), ('CB-1', 'Cold brew', 'coffee', 'House', 4000),
		    ('TE-1', 'Earl Grey', 'Tea', 'Leaf', 2500), ('TE-2', 'Sencha', 'Tea', 'Leaf', 3000),
		    ('BN-1', 'Bun', 'Bakery', 'Nonna', 3000);
		INSERT INTO members (card, name, status, source) VALUES
		    ('0000000000001', 'ada', 'active', 'test'), ('0000000000002', 'ben', 'active', 'test'),
		    ('0000000000003', 'cai', 'active', 'test');
		INSERT INTO transactions (store_id, txn_id, kind, occurred_at, amount_minor, currency, member_id, content_hash)
		SELECT s.id, 'T-' || m.name, 'sale', now() - interval '10 days', 4500, 'NOK', m.id, '\x00'
		FROM stores s, members m WHERE m.name IN ('ada', 'ben');
		INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor)
		SELECT t.id, 1, CASE t.txn_id WHEN 'T-ada' THEN 'LP-1' ELSE 'TE-2' END, 1, 4500 FROM transactions t`); err != nil {
		t.Fatal(err)
	}
	return cc
}

func TestConsoleCatalogueOptions(t *testing.T) {
	cc := catalogueShop(t)
	client, _ := cc.loginAs(t, models.RoleMarketer)
	options := func(t *testing.T, query string) []catalogueOption {
		t.Helper()
		res := cc.get(t, client, "/console/api/catalogue?"+query)
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		var body struct{ Options []catalogueOption }
		if err := json.Unmarshal([]byte(res.Body), &body); err != nil {
			t.Fatal(err)
		}
		return body.Options
	}
	for _, tc := range []struct {
		name, query, want string
	}{
		{"categories containing the letters, in any case, one per spelling", "field=bought_category&query=OF", "Coffee: Coffee (2 products)"},
		{"every category without a query", "field=bought_category", "Bakery: Bakery (1 product) | Coffee: Coffee (2 products) | Tea: Tea (2 products)"},
		{"brands", "field=bought_brand&query=lea", "Leaf: Leaf (2 products)"},
		{"skus by name, with their category and brand", "field=bought_sku&query=sencha", "TE-2: TE-2 – Sencha (Tea, Leaf)"},
		{"nothing matches", "field=bought_brand&query=zzz", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, o := range options(t, tc.query) {
				got = append(got, o.Value+": "+o.Label)
			}
			if g := strings.Join(got, " | "); g != tc.want {
				t.Errorf("got %q, want %q", g, tc.want)
			}
		})
	}
	t.Run("another field is refused", func(t *testing.T) {
		if res := cc.get(t, client, "/console/api/catalogue?field=home_store"); res.Status != http.StatusUnprocessableEntity {
			t.Errorf("status %d, want 422", res.Status)
		}
	})
	t.Run("without a session there is no catalogue", func(t *testing.T) {
		if res := cc.get(t, cc.newClient(t), "/console/api/catalogue?field=bought_sku"); res.Status == http.StatusOK {
			t.Errorf("status %d without a login", res.Status)
		}
	})
}

// TestConsoleBrowserCataloguePicker types a few letters into a bought_category rule of the
// segment builder in Chromium, picks the category from the catalogue's matches and watches the
// live count go from the three active members to ben, the one tea buyer; then picks a sku from
// the keyboard. It also opens the Revenue page.
func TestConsoleBrowserCataloguePicker(t *testing.T) {
	cc := catalogueShop(t)
	email := cc.createUser(t, models.RoleMarketer)
	ctx := browsertest.New(t, 1280, 900, "")
	jsErrors := watchJSErrors(ctx)
	rule := `#rule-builder .rb-rule:nth-of-type(2)`
	// A select's value set from script fires no event; the builder listens for change.
	setField := func(name string) chromedp.Action {
		return chromedp.Evaluate(`(function () {
			var s = document.querySelector('`+rule+` .rb-field');
			s.value = '`+name+`';
			s.dispatchEvent(new Event('change'));
		})()`, nil)
	}
	var textarea string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(cc.URL+"/console/login"),
		chromedp.WaitVisible(`#email`, chromedp.ByID),
		chromedp.SendKeys(`#email`, email, chromedp.ByID),
		chromedp.SendKeys(`#password`, consolePassword, chromedp.ByID),
		chromedp.Submit(`#password`, chromedp.ByID),
		chromedp.WaitVisible(`header.console nav`, chromedp.ByQuery),
		chromedp.Navigate(cc.URL+"/console/segments/new"),
		chromedp.WaitVisible(`#rule-builder .rb-group`, chromedp.ByQuery),
		chromedp.Poll(`document.getElementById('segment-count').textContent === '3'`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Click(`#rule-builder .rb-add-rule`, chromedp.ByQuery),
		chromedp.WaitVisible(rule+` .rb-field`, chromedp.ByQuery),
		setField("bought_category"),
		chromedp.WaitVisible(rule+` input[role=combobox]`, chromedp.ByQuery),
		chromedp.SendKeys(rule+` input[role=combobox]`, "te", chromedp.ByQuery),
		chromedp.WaitVisible(rule+` .rb-options li[data-value="Tea"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("open the builder and search the catalogue: %v", err)
	}
	browsertest.Screenshot(t, ctx, "console-segment-picker.png")
	if err := chromedp.Run(ctx,
		chromedp.Click(rule+` .rb-options li[data-value="Tea"]`, chromedp.ByQuery),
		chromedp.Poll(`document.getElementById('segment-count').textContent === '1'`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Value(`#segment-rules`, &textarea, chromedp.ByID),
	); err != nil {
		t.Fatalf("pick Tea and see the count change: %v", err)
	}
	if !strings.Contains(textarea, `"value": "Tea"`) || !strings.Contains(textarea, `"field": "bought_category"`) {
		t.Errorf("the rules say %s", textarea)
	}

	// The same rule on a sku, picked with the arrow keys and Enter: ada's latte.
	if err := chromedp.Run(ctx,
		setField("bought_sku"),
		chromedp.WaitVisible(rule+` input[role=combobox]`, chromedp.ByQuery),
		chromedp.SendKeys(rule+` input[role=combobox]`, "latte", chromedp.ByQuery),
		chromedp.WaitVisible(rule+` .rb-options li[data-value="LP-1"]`, chromedp.ByQuery),
		chromedp.SendKeys(rule+` input[role=combobox]`, kb.ArrowDown, chromedp.ByQuery),
		// Enter as a real browser sends it: the page cancels the keydown, so no keypress follows
		// (chromedp's SendKeys would send the keypress anyway, which submits the form).
		chromedp.ActionFunc(func(ctx context.Context) error {
			down := input.DispatchKeyEvent(input.KeyRawDown).WithKey("Enter").WithCode("Enter").WithWindowsVirtualKeyCode(13)
			if err := down.Do(ctx); err != nil {
				return err
			}
			return input.DispatchKeyEvent(input.KeyUp).WithKey("Enter").WithCode("Enter").WithWindowsVirtualKeyCode(13).Do(ctx)
		}),
		chromedp.Poll(`document.querySelector('`+rule+` input[role=combobox]').value === 'LP-1'`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Poll(`document.getElementById('segment-count').textContent === '1'`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Value(`#segment-rules`, &textarea, chromedp.ByID),
	); err != nil {
		t.Fatalf("pick a sku from the keyboard: %v", err)
	}
	if !strings.Contains(textarea, `"value": "LP-1"`) {
		t.Errorf("the rules say %s", textarea)
	}

	// The Revenue page draws its charts without script errors (the CSP forbids inline style).
	var charts int
	if err := chromedp.Run(ctx,
		chromedp.Navigate(cc.URL+"/console/revenue"),
		chromedp.WaitVisible(`#revenue-months`, chromedp.ByID),
		chromedp.Evaluate(`document.querySelectorAll('svg.chart-line').length`, &charts),
	); err != nil {
		t.Fatalf("open the Revenue page: %v", err)
	}
	if charts != 2 {
		t.Errorf("%d line charts on the Revenue page, want 2", charts)
	}
	browsertest.Screenshot(t, ctx, "console-revenue.png")
	if errs := jsErrors(); len(errs) > 0 {
		t.Errorf("JavaScript errors: %v", errs)
	}
}

// watchJSErrors collects the page's JavaScript exceptions and console errors (a CSP violation
// is one) from now on; the function it returns lists them so far.
func watchJSErrors(ctx context.Context) func() []string {
	var (
		mu   sync.Mutex
		errs []string
	)
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			errs = append(errs, ev.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				errs = append(errs, "console error")
			}
		}
	})
	return func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(errs) }
}
