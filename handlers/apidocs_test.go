package handlers

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/regulars/regulars/handlers/browsertest"
)

// /api/docs is the document for tools and a readable page for browsers, with everything the
// page needs served from the binary.
func TestAPIDocsPageAndAssets(t *testing.T) {
	e := newConsole(t)
	get := func(path, accept string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, e.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		if _, err := b.ReadFrom(res.Body); err != nil {
			t.Fatal(err)
		}
		return res, b.Bytes()
	}
	onDisk, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/docs/openapi.yaml", "/api/docs"} {
		res, body := get(path, "application/yaml, */*")
		if res.StatusCode != http.StatusOK || !bytes.Equal(body, onDisk) ||
			!strings.HasPrefix(res.Header.Get("Content-Type"), "application/yaml") {
			t.Errorf("GET %s: %d %s, not the document", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	browserAccept := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	res, page := get("/api/docs", browserAccept)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(page), `<div id="swagger-ui">`) || !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("browser GET /api/docs: %d %s %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Security-Policy"), page)
	}
	if strings.Contains(string(page), "https://") || strings.Contains(string(page), "//cdn") {
		t.Error("the page loads something from elsewhere")
	}
	for file, ctype := range map[string]string{"swagger-ui-bundle.js": "text/javascript", "api-docs.js": "text/javascript",
		"swagger-ui.css": "text/css", "api-docs.css": "text/css"} {
		res, body := get("/api/docs/"+file, "")
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), ctype) || len(body) == 0 {
			t.Errorf("GET /api/docs/%s: %d %s, %d bytes", file, res.StatusCode, res.Header.Get("Content-Type"), len(body))
		}
		if !strings.Contains(string(page), "/api/docs/"+file) {
			t.Errorf("the page does not use %s", file)
		}
	}
	for _, path := range []string{"/api/docs/nope.js", "/api/docs/index.html", "/api/docs/..%2Fopenapi.yaml"} {
		if res, _ := get(path, ""); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.StatusCode)
		}
	}
}

// The page renders the API's operations in a real browser, with nothing from the internet.
func TestAPIDocsPageInABrowser(t *testing.T) {
	e := newConsole(t)
	ctx := browsertest.New(t, 1280, 900, "")
	var ops int
	var text string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(e.URL+"/api/docs"),
		chromedp.WaitVisible(`.opblock`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelectorAll('.opblock').length > 50`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Evaluate(`document.querySelectorAll('.opblock').length`, &ops),
		chromedp.Text(`#swagger-ui`, &text, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/api/v1/transactions", "/api/v1/members/lookup", "Authorize"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	t.Logf("%d operations shown", ops)
}
