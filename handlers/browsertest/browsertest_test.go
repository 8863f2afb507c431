package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestPagesShareOneBrowserButNothingElse opens two pages of the shared browser: each has the
// size and language asked for, neither sees the other's cookies, and closing the browser leaves
// no folder behind.
func TestPagesShareOneBrowserButNothingElse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "one", Path: "/"})
		}
		cookie := "none"
		if c, err := r.Cookie("session"); err == nil {
			cookie = c.Value
		}
		fmt.Fprintf(w, `<p id="seen">%s %s</p>`, cookie, r.Header.Get("Accept-Language"))
	}))
	defer srv.Close()
	t.Cleanup(func() { // runs last, after the pages' own cleanups
		shared.mu.Lock()
		dir := shared.dir
		shared.mu.Unlock()
		Close()
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("the browser's folder %s is still there after Close: %v", dir, err)
		}
	})

	var seen string
	var width int
	phone := New(t, 412, 915, "nb-NO")
	if err := chromedp.Run(phone,
		chromedp.Navigate(srv.URL+"/set"),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.Text(`#seen`, &seen, chromedp.ByQuery),
		chromedp.Evaluate(`window.innerWidth`, &width),
	); err != nil {
		t.Fatal(err)
	}
	if seen != "one nb-NO" || width != 412 {
		t.Errorf("the phone page saw %q at width %d, want its cookie and language at 412", seen, width)
	}
	laptop := New(t, 1280, 900, "")
	if err := chromedp.Run(laptop,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.Text(`#seen`, &seen, chromedp.ByQuery),
		chromedp.Evaluate(`window.innerWidth`, &width),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(seen, "none") || width != 1280 {
		t.Errorf("the laptop page saw %q at width %d, want no cookie at 1280", seen, width)
	}
}
