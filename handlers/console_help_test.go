package handlers

import (
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/regulars/regulars/templates"
)

// The console explains its words in one line each, and every "Formula" link leads to a section
// of a document the server itself serves.
func TestConsoleHelp(t *testing.T) {
	cc := newConsole(t)
	client, _ := cc.loginAs(t, "marketer")
	res := cc.get(t, client, "/console/help")
	if res.Status != http.StatusOK {
		t.Fatalf("help: %d", res.Status)
	}
	page := html.UnescapeString(res.Body)
	docs := map[string]string{}
	for _, term := range templates.Glossary {
		if !strings.Contains(page, term.Name) || !strings.Contains(page, term.Short) {
			t.Errorf("the help page lacks %s: %q", term.Name, term.Short)
		}
		href := helpHref(term.Doc, term.Section)
		if !strings.Contains(page, `href="`+href+`"`) {
			t.Errorf("no formula link %s for %s", href, term.Name)
		}
		path, anchor, _ := strings.Cut(href, "#")
		if _, ok := docs[path]; !ok {
			doc := cc.get(t, client, path)
			if doc.Status != http.StatusOK {
				t.Fatalf("%s: %d", path, doc.Status)
			}
			docs[path] = doc.Body
		}
		if !strings.Contains(docs[path], `<section id="`+anchor+`">`) {
			t.Errorf("%s has no section %q (the formula of %s)", path, anchor, term.Name)
		}
	}
	if !strings.Contains(page, `href="/console/help/metrics"`) || !strings.Contains(page, `href="/console/help/campaign-stats"`) {
		t.Error("the help page does not list the documents")
	}
	if res := cc.get(t, client, "/console/help/nope"); res.Status != http.StatusNotFound {
		t.Errorf("an unknown document: %d", res.Status)
	}
	if res := cc.get(t, cc.newClient(t), "/console/help"); res.Status != http.StatusSeeOther && res.Status != http.StatusFound {
		t.Errorf("help without a login: %d, want a redirect to the login", res.Status)
	}
}

// The dashboard's headings carry the one-line explanation, and its help panel lists the terms.
func TestDashboardExplainsItsFigures(t *testing.T) {
	cc, _ := newDashboardConsole(t)
	client, _ := cc.loginAs(t, "marketer")
	page := html.UnescapeString(cc.get(t, client, "/console/").Body)
	for _, key := range []string{"p_alive", "clv_historic", "clv_predicted", "churn_rate"} {
		if !strings.Contains(page, `data-sort="`+key+`" title="`+templates.Explain(key)+`"`) {
			t.Errorf("the %s heading has no explanation", key)
		}
	}
	if !strings.Contains(page, "What the figures mean") || !strings.Contains(page, templates.Explain("rfm")) {
		t.Error("no help panel on the dashboard")
	}
}
