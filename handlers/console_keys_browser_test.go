package handlers

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/regulars/regulars/handlers/browsertest"
)

// TestConsoleTillKeyInBrowser is a stolen till's story in Chromium: an admin logs in, creates a
// till key, reads the token the page shows once and posts a sale with it (201); then revokes the
// key on the same page, and the same token is refused (401). Screenshot console-till-key.png.
func TestConsoleTillKeyInBrowser(t *testing.T) {
	f := newAdminFixture(t)
	email := f.createUser(t, "admin")
	ctx := browsertest.New(t, 1280, 900, "")

	var token, curl string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(f.URL+"/console/keys"),
		chromedp.WaitVisible(`#email`, chromedp.ByQuery),
		chromedp.SendKeys(`#email`, email, chromedp.ByQuery),
		chromedp.SendKeys(`#password`, consolePassword, chromedp.ByQuery),
		chromedp.Submit(`#password`, chromedp.ByQuery),
		chromedp.WaitVisible(`#key-name`, chromedp.ByQuery),
		chromedp.SendKeys(`#key-name`, "Browser till", chromedp.ByQuery),
		chromedp.SetValue(`#key-store`, "oslo-1", chromedp.ByQuery),
		chromedp.Click(`#create-key`, chromedp.ByQuery),
		chromedp.WaitVisible(`#created-token`, chromedp.ByQuery),
		chromedp.Value(`#created-token`, &token, chromedp.ByQuery),
		chromedp.Value(`#created-curl`, &curl, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("create a till key in the browser: %v", err)
	}
	if !strings.HasPrefix(token, "rgl_") || !strings.Contains(curl, "Bearer "+token) || !strings.Contains(curl, f.URL+"/api/v1/transactions") {
		t.Fatalf("token %q, curl %q", token, curl)
	}
	browsertest.Screenshot(t, ctx, "console-till-key.png")
	postSale(t, f.URL, token, "B-1", http.StatusCreated)

	var id string
	if err := f.DB.Pool.QueryRow(context.Background(), `SELECT id::text FROM api_keys WHERE name = 'Browser till'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var flash string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(f.URL+"/console/keys"),
		chromedp.WaitVisible(`#revoke-`+id, chromedp.ByQuery),
		chromedp.Click(`#revoke-`+id, chromedp.ByQuery),
		chromedp.WaitVisible(`p.flash`, chromedp.ByQuery),
		chromedp.Text(`p.flash`, &flash, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("revoke the key in the browser: %v", err)
	}
	if !strings.Contains(flash, "Key revoked") {
		t.Fatalf("flash %q", flash)
	}
	postSale(t, f.URL, token, "B-2", http.StatusUnauthorized)
}
