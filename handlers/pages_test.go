package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
	"github.com/regulars/regulars/templates"
)

var testSecret = []byte("pages-test-secret")

// site is the real server with the club pages on a real database, and a browser-like client:
// a cookie jar, no automatic redirects (so 303s are seen).
type site struct {
	db     *models.DB
	ts     *httptest.Server
	client *http.Client
}

func newSite(t *testing.T, o ClubOptions) *site {
	t.Helper()
	return newSiteAt(t, o, nil)
}

// newSiteAt is newSite with the database's clock set to now (nil: the real one) before the server
// starts.
func newSiteAt(t *testing.T, o ClubOptions, now func() time.Time) *site {
	t.Helper()
	db := dbtest.New(t)
	if now != nil {
		db.Now = now
	}
	if o.Secret == nil {
		o.Secret = testSecret
	}
	ts := newTestServer(t, db, func(c *Config) { c.Club = o })
	if _, err := db.CreateStore(context.Background(), models.StoreInput{Code: "oslo-1", Name: "Oslo Grünerløkka", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	return &site{db: db, ts: ts.Server, client: newClient()}
}

func newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type page struct {
	Status int
	Header http.Header
	Body   string
}

// do sends a request; headers are name, value pairs.
func (s *site) do(t *testing.T, c *http.Client, method, path string, form url.Values, headers ...string) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := page{Status: res.StatusCode, Header: res.Header, Body: string(b)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		if m := missingString.FindString(p.Body); m != "" {
			t.Errorf("%s %s shows the catalogue id %s instead of its text", method, path, m)
		}
	}
	return p
}

func (s *site) get(t *testing.T, path string, headers ...string) page {
	t.Helper()
	return s.do(t, s.client, http.MethodGet, path, nil, headers...)
}

func (s *site) post(t *testing.T, path string, form url.Values, headers ...string) page {
	t.Helper()
	return s.do(t, s.client, http.MethodPost, path, form, headers...)
}

// missingString is how templates.T shows an id without a text.
var missingString = regexp.MustCompile(`\[[a-z_]+(\.[a-z0-9_]+)+\]`)

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// csrf is the token in a page's form.
func csrf(t *testing.T, p page) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("page has no CSRF field:\n%s", p.Body)
	}
	return m[1]
}

// join fills the join form as a visitor would: open it, then post it with its CSRF token.
func (s *site) join(t *testing.T, fields url.Values, headers ...string) page {
	t.Helper()
	form := s.get(t, "/join", headers...)
	if form.Status != http.StatusOK {
		t.Fatalf("GET /join: %d\n%s", form.Status, form.Body)
	}
	fields.Set("_csrf", csrf(t, form))
	return s.post(t, "/join", fields, headers...)
}

func kari() url.Values {
	return url.Values{"name": {"Kari Nordmann"}, "email": {"kari@example.com"}, "home_store": {"oslo-1"}, "marketing_consent": {"yes"}, "lang": {"en"}}
}

type memberRow struct {
	ID                    int64
	Name, Status, Consent string
	Card                  string
	Count                 int
}

// memberByEmail reads the members with email straight from the database.
func (s *site) memberByEmail(t *testing.T, email string) memberRow {
	t.Helper()
	var r memberRow
	err := s.db.Pool.QueryRow(context.Background(),
		`SELECT count(*) OVER (), id, name, status, marketing_consent, coalesce(card, '')
		   FROM members WHERE lower(email) = lower($1)`, email).Scan(&r.Count, &r.ID, &r.Name, &r.Status, &r.Consent, &r.Card)
	if err != nil && err.Error() != "no rows in result set" {
		t.Fatal(err)
	}
	return r
}

func (s *site) memberByID(t *testing.T, id int64) memberRow {
	t.Helper()
	r := memberRow{ID: id}
	err := s.db.Pool.QueryRow(context.Background(),
		`SELECT name, status, marketing_consent, coalesce(card, '') FROM members WHERE id = $1`, id).Scan(&r.Name, &r.Status, &r.Consent, &r.Card)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (s *site) members(t *testing.T) int {
	t.Helper()
	var n int
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM members`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func token(purpose string, id int64, expires time.Time) string {
	return models.SignToken(testSecret, purpose, id, expires)
}

// joined is Kari, joined on the web with consent and still pending.
func joined(t *testing.T, s *site) memberRow {
	t.Helper()
	if p := s.join(t, kari()); p.Status != http.StatusSeeOther {
		t.Fatalf("join: %d\n%s", p.Status, p.Body)
	}
	m := s.memberByEmail(t, "kari@example.com")
	if m.Count != 1 || m.Status != models.StatusPending {
		t.Fatalf("after joining: %+v, want one pending member", m)
	}
	return m
}

// confirm opens confirmation link tok and presses its button, as a member does; it returns the
// page after the button.
func (s *site) confirm(t *testing.T, tok string) page {
	t.Helper()
	form := s.get(t, "/confirm?token="+url.QueryEscape(tok))
	if form.Status != http.StatusOK {
		t.Fatalf("GET /confirm: %d\n%s", form.Status, form.Body)
	}
	return s.post(t, "/confirm", url.Values{"_csrf": {csrf(t, form)}, "token": {tok}, "lang": {"en"}})
}

// confirmed is Kari after clicking the confirmation link.
func confirmed(t *testing.T, s *site) memberRow {
	t.Helper()
	m := joined(t, s)
	if p := s.confirm(t, token(models.TokenConfirm, m.ID, time.Now().Add(time.Hour))); p.Status != http.StatusOK {
		t.Fatalf("confirm: %d\n%s", p.Status, p.Body)
	}
	return s.memberByID(t, m.ID)
}

func TestJoinFormSpeaksTheVisitorsLanguage(t *testing.T) {
	s := newSite(t, ClubOptions{})
	cases := []struct {
		name, path, accept, lang, label, consent string
	}{
		{"an English browser gets English", "/join", "en-GB,en;q=0.9", "en", ">Email address<", "offers and news from Regulars club by email"},
		{"a Norwegian browser gets Bokmål", "/join", "nb-NO,nb;q=0.9,en;q=0.5", "nb", ">E-postadresse<", "tilbud og nyheter fra Regulars-klubben på e-post"},
		{"the language switch overrides the browser", "/join?lang=nb", "en", "nb", ">Navn<", "tilbud og nyheter"},
		{"an unknown language gets English", "/join", "de-DE", "en", ">Name<", "offers and news"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := s.get(t, c.path, "Accept-Language", c.accept)
			if p.Status != http.StatusOK {
				t.Fatalf("status %d\n%s", p.Status, p.Body)
			}
			for _, want := range []string{`<html lang="` + c.lang + `">`, c.label, c.consent} {
				if !strings.Contains(html.UnescapeString(p.Body), want) {
					t.Errorf("page lacks %q:\n%s", want, p.Body)
				}
			}
		})
	}

	t.Run("the consent box is unticked and the store from the link preselected", func(t *testing.T) {
		p := s.get(t, "/join?store=oslo-1")
		box := regexp.MustCompile(`<input type="checkbox" id="marketing_consent"[^>]*>`).FindString(p.Body)
		if box == "" || strings.Contains(box, "checked") {
			t.Errorf("consent box %q: want present and unticked", box)
		}
		if !strings.Contains(p.Body, `<option value="oslo-1" selected>`) {
			t.Errorf("store oslo-1 is not preselected:\n%s", p.Body)
		}
		if !strings.Contains(p.Body, `name="website"`) || !strings.Contains(p.Body, `tabindex="-1"`) {
			t.Error("the form has no honeypot field")
		}
		for name, want := range map[string]string{
			"Content-Security-Policy": "default-src 'self'",
			"Referrer-Policy":         "no-referrer",
			"X-Content-Type-Options":  "nosniff",
			"Cache-Control":           "no-store",
		} {
			if got := p.Header.Get(name); !strings.Contains(got, want) {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
	})

	t.Run("the stylesheet is served", func(t *testing.T) {
		p := s.get(t, "/static/site.css")
		if p.Status != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/css") || !strings.Contains(p.Body, ".field") {
			t.Errorf("GET /static/site.css: %d %s", p.Status, p.Header.Get("Content-Type"))
		}
	})
}

func TestJoinShowsAnInvalidEmailByItsField(t *testing.T) {
	for _, c := range []struct{ lang, message string }{
		{"en", "Enter an email address like name@example.com."},
		{"nb", "Skriv en e-postadresse som navn@eksempel.no."},
	} {
		t.Run("in "+c.lang, func(t *testing.T) {
			s := newSite(t, ClubOptions{})
			f := kari()
			f.Set("email", "kari.nordmann@")
			f.Set("lang", c.lang)
			p := s.join(t, f)
			if p.Status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422\n%s", p.Status, p.Body)
			}
			field := regexp.MustCompile(`(?s)<div class="field invalid" id="email-field">(.*?)</div>`).FindStringSubmatch(p.Body)
			if field == nil {
				t.Fatalf("the email field is not marked invalid:\n%s", p.Body)
			}
			if !strings.Contains(field[1], `id="email-error"`) || !strings.Contains(field[1], c.message) {
				t.Errorf("the email field does not hold its error %q:\n%s", c.message, field[1])
			}
			input := regexp.MustCompile(`<input type="email"[^>]*>`).FindString(field[1])
			if !strings.Contains(input, `aria-invalid="true"`) || !regexp.MustCompile(`aria-describedby="[^"]*email-error`).MatchString(input) {
				t.Errorf("the email input is not tied to its error: %s", input)
			}
			if !strings.Contains(p.Body, `value="Kari Nordmann"`) {
				t.Error("the name typed was lost")
			}
			if !strings.Contains(p.Body, `<a href="#email">`) {
				t.Error("the error summary does not link to the email field")
			}
			if n := s.members(t); n != 0 {
				t.Errorf("%d members stored after an invalid form", n)
			}
		})
	}
}

func TestJoinWithoutAValidCSRFTokenIsForbidden(t *testing.T) {
	s := newSite(t, ClubOptions{})
	t.Run("no token and no cookie", func(t *testing.T) {
		f := kari()
		f.Del("lang") // the page language then comes from Accept-Language
		p := s.do(t, newClient(), http.MethodPost, "/join", f, "Accept-Language", "nb")
		if p.Status != http.StatusForbidden || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			t.Errorf("status %d %s, want a 403 page", p.Status, p.Header.Get("Content-Type"))
		}
		if !strings.Contains(p.Body, "Skjemaet er utløpt") {
			t.Errorf("the 403 page is not in Norwegian:\n%s", p.Body)
		}
	})
	t.Run("a cookie but a wrong token", func(t *testing.T) {
		s.get(t, "/join")
		f := kari()
		f.Set("_csrf", "forged")
		if p := s.post(t, "/join", f); p.Status != http.StatusForbidden {
			t.Errorf("status %d, want 403", p.Status)
		}
	})
	t.Run("a cross-site post from a browser", func(t *testing.T) {
		p := s.do(t, newClient(), http.MethodPost, "/join", kari(), "Sec-Fetch-Site", "cross-site")
		if p.Status != http.StatusForbidden {
			t.Errorf("status %d, want 403", p.Status)
		}
	})
	if n := s.members(t); n != 0 {
		t.Errorf("%d members stored without a valid CSRF token", n)
	}
}

func TestAFloodFromOneIPIsRateLimited(t *testing.T) {
	s := newSite(t, ClubOptions{JoinRate: 3})
	form := s.get(t, "/join")
	f := url.Values{"_csrf": {csrf(t, form)}, "lang": {"nb"}} // empty: 422 each, still counted
	// Two clients on addresses of their own (X-Forwarded-For is not believed without trusted
	// proxies), sharing the browser's cookies.
	one, other := loopbackClient(t, s.client.Jar, "127.0.0.7"), loopbackClient(t, s.client.Jar, "127.0.0.8")
	for i := range 3 {
		if p := s.do(t, one, http.MethodPost, "/join", f); p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("attempt %d: %d, want 422", i+1, p.Status)
		}
	}
	p := s.do(t, one, http.MethodPost, "/join", f)
	if p.Status != http.StatusTooManyRequests {
		t.Fatalf("attempt 4: %d, want 429", p.Status)
	}
	if got := p.Header.Get("Retry-After"); got != "20" {
		t.Errorf("Retry-After %q, want 20 (3 a minute)", got)
	}
	if !strings.Contains(p.Body, "For mange forsøk") || !strings.Contains(p.Body, "20 sekunder") {
		t.Errorf("the 429 page is not in the visitor's language:\n%s", p.Body)
	}
	if p := s.do(t, other, http.MethodPost, "/join", f); p.Status != http.StatusUnprocessableEntity {
		t.Errorf("another IP: %d, want 422 (the limit is per IP)", p.Status)
	}
}

func TestTheHoneypotKeepsNothingAndLooksTheSame(t *testing.T) {
	s := newSite(t, ClubOptions{})
	human := s.join(t, url.Values{"name": {"Ola"}, "email": {"ola@example.com"}, "home_store": {"oslo-1"}, "lang": {"en"}})
	f := kari()
	f.Set("website", "http://spam.example")
	bot := s.join(t, f)
	if bot.Status != http.StatusSeeOther || bot.Header.Get("Location") != human.Header.Get("Location") {
		t.Errorf("bot got %d %q, a person %d %q: want the same", bot.Status, bot.Header.Get("Location"), human.Status, human.Header.Get("Location"))
	}
	if m := s.memberByEmail(t, "kari@example.com"); m.Count != 0 {
		t.Errorf("the honeypot stored a member: %+v", m)
	}
	sent := s.get(t, bot.Header.Get("Location"))
	if sent.Status != http.StatusOK || !strings.Contains(sent.Body, "Check your inbox") {
		t.Errorf("the page after joining: %d\n%s", sent.Status, sent.Body)
	}
}

func TestJoiningTwiceGivesOneMemberAndTheSameAnswer(t *testing.T) {
	s := newSite(t, ClubOptions{})
	var mails int
	s2 := newSite(t, ClubOptions{MailQueued: func() { mails++ }})
	for _, s := range []*site{s, s2} {
		first := s.join(t, kari())
		second := s.join(t, kari())
		m := s.memberByEmail(t, "kari@example.com")
		s.confirm(t, token(models.TokenConfirm, m.ID, time.Now().Add(time.Hour)))
		third := s.join(t, kari()) // already an active member
		for i, p := range []page{second, third} {
			if p.Status != first.Status || p.Header.Get("Location") != first.Header.Get("Location") || p.Body != first.Body {
				t.Errorf("join #%d answered %d %q, the first %d %q: the form tells who is a member",
					i+2, p.Status, p.Header.Get("Location"), first.Status, first.Header.Get("Location"))
			}
		}
		if m := s.memberByEmail(t, "kari@example.com"); m.Count != 1 {
			t.Errorf("%d members with the same email", m.Count)
		}
	}
	if mails < 3 {
		t.Errorf("MailQueued called %d times for 3 joins", mails)
	}
}

func TestConfirmingShowsTheCardAndActivates(t *testing.T) {
	s := newSite(t, ClubOptions{})
	m := joined(t, s)
	link := token(models.TokenConfirm, m.ID, time.Now().Add(time.Hour))
	p := s.confirm(t, link)
	if p.Status != http.StatusOK {
		t.Fatalf("confirm: %d\n%s", p.Status, p.Body)
	}
	after := s.memberByID(t, m.ID)
	if after.Status != models.StatusActive || after.Consent != models.ConsentConfirmed {
		t.Errorf("after confirming: %+v, want active with confirmed consent", after)
	}
	if after.Card == "" || !strings.Contains(p.Body, after.Card) {
		t.Errorf("the welcome page does not show card %q:\n%s", after.Card, p.Body)
	}
	img := regexp.MustCompile(`<img class="barcode" src="([^"]+)"`).FindStringSubmatch(p.Body)
	if img == nil {
		t.Fatalf("no barcode image:\n%s", p.Body)
	}
	png := s.get(t, html.UnescapeString(img[1]))
	if png.Status != http.StatusOK || png.Header.Get("Content-Type") != "image/png" || !strings.HasPrefix(png.Body, "\x89PNG") {
		t.Errorf("barcode: %d %s", png.Status, png.Header.Get("Content-Type"))
	}
	if !strings.Contains(p.Body, `href="/preferences?`) {
		t.Error("the welcome page has no link to the preferences")
	}
	again := s.confirm(t, link)
	tokens := regexp.MustCompile(`token=[^"&]+`)
	if again.Status != http.StatusOK || tokens.ReplaceAllString(again.Body, "") != tokens.ReplaceAllString(p.Body, "") {
		t.Errorf("confirming twice: %d, not the same page", again.Status)
	}
}

// A mail gateway's link scanner opens every link in a mail. Had a stranger typed Kari's address
// into the join form, the scanner would confirm the sign-up (and the consent) for her; the link
// must only show a button, and the button's POST confirms.
func TestOpeningTheConfirmationLinkChangesNothing(t *testing.T) {
	s := newSite(t, ClubOptions{})
	m := joined(t, s)
	tok := token(models.TokenConfirm, m.ID, time.Now().Add(time.Hour))
	scanner := newClient()

	t.Run("a scanner's GET shows one button and changes nothing", func(t *testing.T) {
		for range 3 {
			p := s.do(t, scanner, http.MethodGet, "/confirm?token="+url.QueryEscape(tok), nil)
			if p.Status != http.StatusOK || !regexp.MustCompile(`<form method="post" action="/confirm">`).MatchString(p.Body) ||
				strings.Count(p.Body, "<button") != 1 {
				t.Fatalf("%d, want a page with one button posting to /confirm:\n%s", p.Status, p.Body)
			}
		}
		if after := s.memberByID(t, m.ID); after.Status != models.StatusPending || after.Consent != models.ConsentPending {
			t.Errorf("after opening the link: %+v, want still pending", after)
		}
		var welcomes int
		if err := s.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM club_mail WHERE kind = 'welcome'`).Scan(&welcomes); err != nil {
			t.Fatal(err)
		}
		if welcomes != 0 {
			t.Errorf("%d welcome mails queued by opening the link", welcomes)
		}
	})

	t.Run("a POST without the page's CSRF token is refused", func(t *testing.T) {
		p := s.do(t, newClient(), http.MethodPost, "/confirm", url.Values{"token": {tok}})
		if p.Status != http.StatusForbidden || s.memberByID(t, m.ID).Status != models.StatusPending {
			t.Errorf("%d, want 403 and still pending", p.Status)
		}
	})

	t.Run("a POST with a bad token is refused", func(t *testing.T) {
		form := s.get(t, "/confirm?token="+url.QueryEscape(tok))
		p := s.post(t, "/confirm", url.Values{"_csrf": {csrf(t, form)}, "token": {token(models.TokenPreferences, m.ID, time.Now().Add(time.Hour))}})
		if p.Status != http.StatusBadRequest || s.memberByID(t, m.ID).Status != models.StatusPending {
			t.Errorf("%d, want 400 and still pending", p.Status)
		}
	})

	t.Run("pressing the button confirms", func(t *testing.T) {
		p := s.confirm(t, tok)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "Welcome to the club") {
			t.Fatalf("%d:\n%s", p.Status, p.Body)
		}
		if after := s.memberByID(t, m.ID); after.Status != models.StatusActive || after.Consent != models.ConsentConfirmed {
			t.Errorf("after the button: %+v, want active with confirmed consent", after)
		}
	})
}

func TestBadLinksChangeNothing(t *testing.T) {
	s := newSite(t, ClubOptions{})
	m := confirmed(t, s)
	tamper := func(tok string) string { // one character of the signature changed
		if strings.HasSuffix(tok, "A") {
			return tok[:len(tok)-1] + "B"
		}
		return tok[:len(tok)-1] + "A"
	}
	good := token(models.TokenUnsubscribe, m.ID, time.Time{})
	cases := []struct {
		name, method, path string
		status             int
		says               string
	}{
		{"a tampered confirmation link", http.MethodGet, "/confirm?token=" + tamper(token(models.TokenConfirm, m.ID, time.Now().Add(time.Hour))), 400, "This link is not valid"},
		{"an expired confirmation link", http.MethodGet, "/confirm?token=" + token(models.TokenConfirm, m.ID, time.Now().Add(-time.Hour)), 410, "This link has expired"},
		{"an unsubscribe link used to confirm", http.MethodGet, "/confirm?token=" + good, 400, "This link is not valid"},
		{"a tampered unsubscribe POST", http.MethodPost, "/unsubscribe?token=" + tamper(good), 400, "This link is not valid"},
		{"a one-click POST without a token", http.MethodPost, "/unsubscribe", 400, "This link is not valid"},
		{"a tampered preferences link", http.MethodGet, "/preferences?token=" + tamper(token(models.TokenPreferences, m.ID, time.Now().Add(time.Hour))), 400, "This link is not valid"},
		{"an expired preferences link", http.MethodGet, "/preferences?token=" + token(models.TokenPreferences, m.ID, time.Now().Add(-time.Hour)), 410, "This link has expired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var form url.Values
			if c.method == http.MethodPost {
				form = url.Values{"List-Unsubscribe": {"One-Click"}}
			}
			p := s.do(t, newClient(), c.method, c.path, form)
			if p.Status != c.status || !strings.Contains(p.Body, c.says) {
				t.Errorf("%d, want %d saying %q:\n%s", p.Status, c.status, c.says, p.Body)
			}
			if c.status == http.StatusGone && !strings.Contains(p.Body, `href="/join?`) {
				t.Error("the expired-link page does not lead to the join form")
			}
			if after := s.memberByID(t, m.ID); after != m {
				t.Errorf("member changed: %+v, was %+v", after, m)
			}
		})
	}
}

func TestUnsubscribing(t *testing.T) {
	s := newSite(t, ClubOptions{})
	m := confirmed(t, s)
	link := "/unsubscribe?token=" + token(models.TokenUnsubscribe, m.ID, time.Time{})

	t.Run("opening the link shows one button and changes nothing", func(t *testing.T) {
		p := s.get(t, link)
		if p.Status != http.StatusOK || !regexp.MustCompile(`<form method="post" action="/unsubscribe\?[^"]*token=`).MatchString(p.Body) ||
			!strings.Contains(p.Body, `<button type="submit">`) {
			t.Errorf("%d, want a page with one button posting to the link:\n%s", p.Status, p.Body)
		}
		if got := s.memberByID(t, m.ID).Consent; got != models.ConsentConfirmed {
			t.Errorf("consent %q after opening the page", got)
		}
	})

	t.Run("a one-click POST without cookies or CSRF withdraws consent", func(t *testing.T) {
		p := s.do(t, &http.Client{}, http.MethodPost, link, url.Values{"List-Unsubscribe": {"One-Click"}})
		if p.Status != http.StatusOK {
			t.Fatalf("%d:\n%s", p.Status, p.Body)
		}
		if got := s.memberByID(t, m.ID).Consent; got != models.ConsentWithdrawn {
			t.Errorf("consent %q after one click, want withdrawn", got)
		}
		var withdrawals int
		if err := s.db.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM consents WHERE member_id = $1 AND NOT granted AND source = 'unsubscribe'`, m.ID).Scan(&withdrawals); err != nil {
			t.Fatal(err)
		}
		if withdrawals != 1 {
			t.Errorf("%d withdrawals recorded, want 1", withdrawals)
		}
	})

	t.Run("the button again says so and links to the preferences", func(t *testing.T) {
		p := s.post(t, link, url.Values{}, "Accept-Language", "nb")
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "Du er meldt av") || !strings.Contains(p.Body, `href="/preferences?`) {
			t.Errorf("%d:\n%s", p.Status, p.Body)
		}
	})
}

func TestPreferencesSaveAndWithdraw(t *testing.T) {
	s := newSite(t, ClubOptions{})
	m := confirmed(t, s)
	tok := token(models.TokenPreferences, m.ID, time.Now().Add(time.Hour))

	form := s.get(t, "/preferences?token="+url.QueryEscape(tok))
	if form.Status != http.StatusOK || !strings.Contains(form.Body, `value="Kari Nordmann"`) {
		t.Fatalf("preferences: %d\n%s", form.Status, form.Body)
	}
	if !regexp.MustCompile(`<input type="checkbox" id="marketing_consent"[^>]* checked`).MatchString(form.Body) {
		t.Error("the consent box does not show the confirmed consent")
	}

	t.Run("saving changes the name and withdraws consent", func(t *testing.T) {
		p := s.post(t, "/preferences", url.Values{"_csrf": {csrf(t, form)}, "token": {tok}, "lang": {"en"},
			"name": {"Kari N."}, "home_store": {"oslo-1"}, "language": {"nb"}})
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "Innstillingene dine er lagret") {
			t.Fatalf("%d, want the saved page in the language just chosen:\n%s", p.Status, p.Body)
		}
		after := s.memberByID(t, m.ID)
		if after.Name != "Kari N." || after.Consent != models.ConsentWithdrawn {
			t.Errorf("after saving: %+v", after)
		}
	})

	t.Run("saving without the CSRF token is forbidden", func(t *testing.T) {
		p := s.do(t, newClient(), http.MethodPost, "/preferences", url.Values{"token": {tok}, "name": {"Mallory"}})
		if p.Status != http.StatusForbidden || s.memberByID(t, m.ID).Name == "Mallory" {
			t.Errorf("%d, want 403 and nothing changed", p.Status)
		}
	})

	t.Run("the data and erase buttons ask for a link by mail", func(t *testing.T) {
		form := s.get(t, "/preferences?token="+url.QueryEscape(tok))
		for _, action := range []string{"export", "erase"} {
			if !regexp.MustCompile(`(?s)<form method="post" action="/preferences/request">.*?name="action" value="` + action + `"`).MatchString(form.Body) {
				t.Errorf("no button posting action %s to /preferences/request:\n%s", action, form.Body)
			}
		}
		if strings.Contains(form.Body, "/preferences/export?") || strings.Contains(form.Body, "/preferences/erase?") {
			t.Errorf("the page links straight to export or erase:\n%s", form.Body)
		}
	})
}

// requestLink presses a button of the preferences page of tok: "export" or "erase".
func (s *site) requestLink(t *testing.T, tok, action string, headers ...string) page {
	t.Helper()
	form := s.get(t, "/preferences?token="+url.QueryEscape(tok))
	if form.Status != http.StatusOK {
		t.Fatalf("preferences: %d\n%s", form.Status, form.Body)
	}
	return s.post(t, "/preferences/request", url.Values{"_csrf": {csrf(t, form)}, "token": {tok}, "lang": {"en"}, "action": {action}}, headers...)
}

// lastLink is the token of member id's newest link for action, signed as the mail signs it, or ""
// when there is none.
func (s *site) lastLink(t *testing.T, id int64, action string) string {
	t.Helper()
	var linkID int64
	var expires time.Time
	err := s.db.Pool.QueryRow(context.Background(), `SELECT id, expires_at FROM member_links
		WHERE member_id = $1 AND action = $2 ORDER BY id DESC LIMIT 1`, id, action).Scan(&linkID, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return token(models.LinkTokenPurpose(action), linkID, expires)
}

// ageMail makes the mail queued so far an hour old, out of the hourly cap, for tests that ask for
// more links than it allows.
func (s *site) ageMail(t *testing.T) {
	t.Helper()
	if _, err := s.db.Pool.Exec(context.Background(), `UPDATE club_mail SET created_at = created_at - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
}

// queuedMail counts the club mail of kind queued for member id.
func (s *site) queuedMail(t *testing.T, id int64, kind string) int {
	t.Helper()
	var n int
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM club_mail WHERE member_id = $1 AND kind = $2`,
		id, kind).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// useLink opens a mailed link (path?token=tok) and presses its one button.
func (s *site) useLink(t *testing.T, path, tok string) page {
	t.Helper()
	form := s.get(t, path+"?token="+url.QueryEscape(tok))
	if form.Status != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, form.Status, form.Body)
	}
	if n := strings.Count(form.Body, "<button"); n != 1 {
		t.Errorf("GET %s shows %d buttons, want one", path, n)
	}
	return s.post(t, path, url.Values{"_csrf": {csrf(t, form)}, "token": {tok}, "lang": {"en"}})
}

// A preferences link is in every campaign mail, whose HTML a marketer writes, and can leak to
// the marketer (click stats) or anyone the template sends it to. With it alone nobody may download
// the member's data, erase them, or turn their withdrawn consent back into a confirmed one.
func TestAPreferencesLinkCannotExportEraseOrGrantConsent(t *testing.T) {
	s := newSite(t, ClubOptions{})
	m := confirmed(t, s)
	tok := token(models.TokenPreferences, m.ID, time.Now().Add(time.Hour))
	attacker := newClient()
	form := s.do(t, attacker, http.MethodGet, "/preferences?token="+url.QueryEscape(tok), nil)
	if form.Status != http.StatusOK {
		t.Fatalf("preferences: %d", form.Status)
	}
	post := func(path string, f url.Values) page {
		f.Set("_csrf", csrf(t, form))
		f.Set("token", tok)
		return s.do(t, attacker, http.MethodPost, path, f)
	}

	t.Run("export refuses it", func(t *testing.T) {
		for _, p := range []page{
			s.do(t, attacker, http.MethodGet, "/preferences/export?token="+url.QueryEscape(tok), nil),
			post("/preferences/export", url.Values{}),
		} {
			if p.Status != http.StatusBadRequest || strings.Contains(p.Body, m.Card) || strings.Contains(p.Body, "kari@example.com") {
				t.Errorf("%d %s, want 400 without the member's data:\n%s", p.Status, p.Header.Get("Content-Type"), p.Body)
			}
		}
	})

	t.Run("erase refuses it", func(t *testing.T) {
		for _, p := range []page{
			s.do(t, attacker, http.MethodGet, "/preferences/erase?token="+url.QueryEscape(tok), nil),
			post("/preferences/erase", url.Values{}),
		} {
			if p.Status != http.StatusBadRequest {
				t.Errorf("%d, want 400:\n%s", p.Status, p.Body)
			}
		}
		if got := s.memberByID(t, m.ID).Status; got != models.StatusActive {
			t.Errorf("status %q, want active", got)
		}
	})

	t.Run("ticking the box on a withdrawn consent grants nothing and mails the member a link", func(t *testing.T) {
		if _, err := s.db.Unsubscribe(context.Background(), m.ID, models.ConsentEvidence{}); err != nil {
			t.Fatal(err)
		}
		if page := s.get(t, "/preferences?token="+url.QueryEscape(tok)); !strings.Contains(page.Body, "we send you a link to confirm it") {
			t.Errorf("the page does not say that ticking the box mails a link:\n%s", page.Body)
		}
		p := post("/preferences", url.Values{"lang": {"en"}, "name": {"Kari Nordmann"}, "home_store": {"oslo-1"},
			"language": {"en"}, "marketing_consent": {"yes"}})
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "We have sent you a link") {
			t.Fatalf("%d, want the saved page saying a link was sent:\n%s", p.Status, p.Body)
		}
		if got := s.memberByID(t, m.ID).Consent; got != models.ConsentWithdrawn {
			t.Errorf("consent %q after ticking the box with a preferences link, want still withdrawn", got)
		}
		if n := s.queuedMail(t, m.ID, models.MailLinkConsent); n != 1 {
			t.Errorf("%d consent link mails queued, want 1", n)
		}
		var grants int
		if err := s.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM consents WHERE member_id = $1 AND granted
			AND recorded_at > now() - interval '1 minute' AND source = 'preferences'`, m.ID).Scan(&grants); err != nil {
			t.Fatal(err)
		}
		if grants != 0 {
			t.Errorf("%d consent grants recorded from the preferences page", grants)
		}
	})

	t.Run("the link may still rename and unsubscribe", func(t *testing.T) {
		if p := post("/preferences", url.Values{"lang": {"en"}, "name": {"Kari N."}, "language": {"en"}}); p.Status != http.StatusOK {
			t.Fatalf("%d:\n%s", p.Status, p.Body)
		}
		if got := s.memberByID(t, m.ID).Name; got != "Kari N." {
			t.Errorf("name %q, want Kari N.", got)
		}
	})

	t.Run("the card image shows only the barcode", func(t *testing.T) {
		p := s.do(t, attacker, http.MethodGet, "/card.png?token="+url.QueryEscape(tok), nil)
		if p.Status != http.StatusOK || p.Header.Get("Content-Type") != "image/png" {
			t.Errorf("%d %s", p.Status, p.Header.Get("Content-Type"))
		}
	})
}

// The links a member asks for on the preferences page are mailed to them and work once, for an
// hour; only the button on the page a link opens uses it.
func TestMailedLinksWorkOnceAndForAnHour(t *testing.T) {
	var clock atomic.Int64
	start := time.Now()
	clock.Store(start.UnixNano())
	s := newSiteAt(t, ClubOptions{}, func() time.Time { return time.Unix(0, clock.Load()) })
	m := confirmed(t, s)
	prefs := token(models.TokenPreferences, m.ID, time.Now().Add(time.Hour))

	t.Run("asking for the data says a link was sent and queues it", func(t *testing.T) {
		p := s.requestLink(t, prefs, models.LinkExport, "Accept-Language", "nb")
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "We have sent you a link to download your data") {
			t.Fatalf("%d:\n%s", p.Status, p.Body)
		}
		if n := s.queuedMail(t, m.ID, models.MailLinkExport); n != 1 {
			t.Errorf("%d export link mails queued, want 1", n)
		}
	})

	t.Run("the export link downloads once", func(t *testing.T) {
		tok := s.lastLink(t, m.ID, models.LinkExport)
		for range 2 { // a scanner opens the link first
			if p := s.do(t, newClient(), http.MethodGet, "/preferences/export?token="+url.QueryEscape(tok), nil); p.Status != http.StatusOK ||
				strings.Contains(p.Body, m.Card) {
				t.Fatalf("GET: %d, want the page with the button, without data:\n%s", p.Status, p.Body)
			}
		}
		p := s.useLink(t, "/preferences/export", tok)
		if p.Status != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), "application/json") ||
			!strings.HasPrefix(p.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("%d %s %s\n%s", p.Status, p.Header.Get("Content-Type"), p.Header.Get("Content-Disposition"), p.Body)
		}
		var x models.MemberExport
		if err := json.Unmarshal([]byte(p.Body), &x); err != nil {
			t.Fatal(err)
		}
		if x.Member.Card != m.Card || len(x.Consents) == 0 {
			t.Errorf("export: card %q, %d consents; want %q and the consent history", x.Member.Card, len(x.Consents), m.Card)
		}
		form := s.get(t, "/preferences?token="+url.QueryEscape(prefs))
		again := s.post(t, "/preferences/export", url.Values{"_csrf": {csrf(t, form)}, "token": {tok}})
		if again.Status != http.StatusGone || !strings.Contains(again.Body, "This link has been used") {
			t.Errorf("a second use: %d, want 410 saying it was used:\n%s", again.Status, again.Body)
		}
		if reopened := s.get(t, "/preferences/export?token="+url.QueryEscape(tok)); reopened.Status != http.StatusGone {
			t.Errorf("opening a used link: %d, want 410", reopened.Status)
		}
	})

	t.Run("a link for one action does not do another", func(t *testing.T) {
		s.ageMail(t)
		s.requestLink(t, prefs, models.LinkExport)
		tok := s.lastLink(t, m.ID, models.LinkExport)
		if p := s.get(t, "/preferences/erase?token="+url.QueryEscape(tok)); p.Status != http.StatusBadRequest {
			t.Errorf("an export link on the erase page: %d, want 400", p.Status)
		}
	})

	t.Run("an erase link expires after an hour", func(t *testing.T) {
		s.ageMail(t)
		s.requestLink(t, prefs, models.LinkErase)
		tok := s.lastLink(t, m.ID, models.LinkErase)
		form := s.get(t, "/preferences/erase?token="+url.QueryEscape(tok))
		if form.Status != http.StatusOK {
			t.Fatalf("GET: %d\n%s", form.Status, form.Body)
		}
		clock.Add(int64(time.Hour + time.Second))
		defer clock.Store(start.UnixNano())
		p := s.post(t, "/preferences/erase", url.Values{"_csrf": {csrf(t, form)}, "token": {tok}})
		if p.Status != http.StatusGone || !strings.Contains(p.Body, "This link has expired") {
			t.Errorf("%d, want 410 saying it expired:\n%s", p.Status, p.Body)
		}
		if got := s.memberByID(t, m.ID).Status; got != models.StatusActive {
			t.Errorf("status %q after an expired erase link, want active", got)
		}
	})

	t.Run("the consent link records consent from the member's mailbox", func(t *testing.T) {
		if _, err := s.db.Unsubscribe(context.Background(), m.ID, models.ConsentEvidence{}); err != nil {
			t.Fatal(err)
		}
		s.ageMail(t)
		if _, err := s.db.RequestMemberLink(context.Background(), m.ID, models.LinkConsent, "en"); err != nil {
			t.Fatal(err)
		}
		tok := s.lastLink(t, m.ID, models.LinkConsent)
		s.do(t, newClient(), http.MethodGet, "/preferences/consent?token="+url.QueryEscape(tok), nil) // a scanner
		if got := s.memberByID(t, m.ID).Consent; got != models.ConsentWithdrawn {
			t.Fatalf("consent %q after opening the link, want withdrawn", got)
		}
		p := s.useLink(t, "/preferences/consent", tok)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "You will get our offers") {
			t.Fatalf("%d:\n%s", p.Status, p.Body)
		}
		if got := s.memberByID(t, m.ID).Consent; got != models.ConsentConfirmed {
			t.Errorf("consent %q, want confirmed", got)
		}
		var source, version string
		if err := s.db.Pool.QueryRow(context.Background(), `SELECT source, text_version FROM consents
			WHERE member_id = $1 AND granted ORDER BY id DESC LIMIT 1`, m.ID).Scan(&source, &version); err != nil {
			t.Fatal(err)
		}
		if source != "email_link" || version != templates.T("en", "join.consent.version", nil) {
			t.Errorf("consent recorded with source %q, version %q; want email_link and the page's version", source, version)
		}
	})

	t.Run("an erase link asks first, then erases", func(t *testing.T) {
		s.ageMail(t)
		s.requestLink(t, prefs, models.LinkErase)
		tok := s.lastLink(t, m.ID, models.LinkErase)
		p := s.useLink(t, "/preferences/erase", tok)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "Your membership is erased") {
			t.Fatalf("%d:\n%s", p.Status, p.Body)
		}
		if after := s.memberByID(t, m.ID); after.Status != models.StatusErased || after.Name != "" {
			t.Errorf("after erasing: %+v", after)
		}
		if again := s.get(t, "/preferences?token="+url.QueryEscape(prefs)); again.Status != http.StatusGone {
			t.Errorf("the preferences link after erasing: %d, want 410", again.Status)
		}
	})
}

func TestAMemberWithoutAnEmailAddressCannotAskForALink(t *testing.T) {
	s := newSite(t, ClubOptions{})
	m := confirmed(t, s)
	if _, err := s.db.Pool.Exec(context.Background(), `UPDATE members SET email = NULL WHERE id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	tok := token(models.TokenPreferences, m.ID, time.Now().Add(time.Hour))
	if form := s.get(t, "/preferences?token="+url.QueryEscape(tok)); !strings.Contains(form.Body, "We have no email address for you") ||
		strings.Contains(form.Body, `value="export"`) {
		t.Errorf("the page offers a link it cannot send:\n%s", form.Body)
	}
	p := s.requestLink(t, tok, models.LinkExport)
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "We have no email address for you") {
		t.Errorf("%d:\n%s", p.Status, p.Body)
	}
	if n := s.queuedMail(t, m.ID, models.MailLinkExport); n != 0 {
		t.Errorf("%d mails queued without an address", n)
	}
}

// The join form and the link requests answer the same whoever is asked about, so without a cap
// anyone could flood a mailbox through them, and name+1@, name+2@ … reach one mailbox.
func TestPublicMailToOneMailboxIsCappedCountingPlusAddressesAsOne(t *testing.T) {
	s := newSite(t, ClubOptions{})
	var first page
	for i, email := range []string{"kari+1@example.com", "Kari+news@Example.com", "kari@example.com", "kari+4@example.com", "KARI+5@example.com"} {
		f := kari()
		f.Set("email", email)
		p := s.join(t, f)
		if i == 0 {
			first = p
		}
		if p.Status != first.Status || p.Header.Get("Location") != first.Header.Get("Location") {
			t.Errorf("join %d (%s): %d %q, the first %d %q: the cap must not show", i+1, email, p.Status,
				p.Header.Get("Location"), first.Status, first.Header.Get("Location"))
		}
	}
	var mails int
	if err := s.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM club_mail WHERE lower(to_addr) LIKE 'kari%@example.com'`).Scan(&mails); err != nil {
		t.Fatal(err)
	}
	if mails != models.MaxJoinMailsPerHour {
		t.Errorf("%d mails queued to one mailbox, want %d", mails, models.MaxJoinMailsPerHour)
	}

	t.Run("link requests share the cap", func(t *testing.T) {
		m := s.memberByEmail(t, "kari@example.com")
		if _, err := s.db.Pool.Exec(context.Background(), `UPDATE members SET status = 'active' WHERE id = $1`, m.ID); err != nil {
			t.Fatal(err)
		}
		p := s.requestLink(t, token(models.TokenPreferences, m.ID, time.Now().Add(time.Hour)), models.LinkExport)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "We have sent you a link") {
			t.Errorf("%d, want the same page as under the cap:\n%s", p.Status, p.Body)
		}
		if n := s.queuedMail(t, m.ID, models.MailLinkExport); n != 0 {
			t.Errorf("%d link mails queued beyond the cap", n)
		}
	})

	t.Run("another mailbox is not affected", func(t *testing.T) {
		f := kari()
		f.Set("email", "ola@example.com")
		s.join(t, f)
		if m := s.memberByEmail(t, "ola@example.com"); s.queuedMail(t, m.ID, models.MailConfirm) != 1 {
			t.Error("no confirmation mail queued for another mailbox")
		}
	})
}

func TestPageErrorsAreHTMLAndTheAPIsStayJSON(t *testing.T) {
	s := newSite(t, ClubOptions{})
	p := s.get(t, "/no-such-page", "Accept-Language", "nb")
	if p.Status != http.StatusNotFound || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") || !strings.Contains(p.Body, "Fant ikke siden") {
		t.Errorf("page 404: %d %s\n%s", p.Status, p.Header.Get("Content-Type"), p.Body)
	}
	api := s.get(t, "/api/v1/no-such-thing")
	if api.Status != http.StatusNotFound || !strings.HasPrefix(api.Header.Get("Content-Type"), "application/json") {
		t.Errorf("API 404: %d %s", api.Status, api.Header.Get("Content-Type"))
	}
}

// The handlers name some catalogue ids in Go (field errors, error pages, language names); the
// templates' own ids are checked in package templates.
func TestEveryIDTheHandlersUseExistsInEveryLanguage(t *testing.T) {
	ids := []string{"lang.name", "unsubscribed.one_click", "error.other", "join.consent.version", "error.consent_no_email",
		"link_sent.export", "link_sent.erase", "link_sent.consent",
		"link_gone.used.title", "link_gone.used.text", "link_gone.expired.title", "link_gone.expired.text"}
	for _, id := range fieldMessageIDs {
		ids = append(ids, id)
	}
	for _, id := range pageStatusIDs {
		ids = append(ids, id+".title", id+".text")
	}
	for _, lang := range templates.Languages() {
		for _, id := range ids {
			if got := templates.T(lang, id, nil); got == "["+id+"]" {
				t.Errorf("%s lacks %q", lang, id)
			}
		}
	}
}

// birthdayOf is member id's stored birthday as the API writes it ("" for none).
func (s *site) birthdayOf(t *testing.T, id int64) string {
	t.Helper()
	m, err := s.db.FindMemberByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m.Birthday.String()
}

// birthdayFieldset is the birthday's fieldset on a page, failing when there is none.
func birthdayFieldset(t *testing.T, p page) string {
	t.Helper()
	f := regexp.MustCompile(`(?s)<fieldset class="field[^"]*" id="birthday-field".*?</fieldset>`).FindString(p.Body)
	if f == "" {
		t.Fatalf("the page has no birthday field:\n%s", p.Body)
	}
	return f
}

func TestJoinTakesAnOptionalBirthday(t *testing.T) {
	s := newSite(t, ClubOptions{})

	t.Run("the form asks for day, month and an optional year in the visitor's language", func(t *testing.T) {
		for lang, month := range map[string]string{"en": ">May<", "nb": ">mai<"} {
			f := birthdayFieldset(t, s.get(t, "/join?lang="+lang))
			for _, want := range []string{`name="birthday_day"`, `name="birthday_month"`, `name="birthday_year"`, month, `<option value="31">31</option>`} {
				if !strings.Contains(f, want) {
					t.Errorf("%s: the birthday field lacks %s:\n%s", lang, want, f)
				}
			}
		}
	})

	good := []struct {
		name   string
		fields url.Values
		want   string
	}{
		{"a day and a month make a birthday without a year", url.Values{"birthday_day": {"29"}, "birthday_month": {"02"}, "birthday_year": {""}}, "--02-29"},
		{"a year makes a full date", url.Values{"birthday_day": {"17"}, "birthday_month": {"05"}, "birthday_year": {"1990"}}, "1990-05-17"},
		{"the contract's single field is taken too", url.Values{"birthday": {"--12-24"}}, "--12-24"},
		{"no birthday is fine", url.Values{"birthday_day": {""}, "birthday_month": {""}, "birthday_year": {""}}, ""},
	}
	for i, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			f := kari()
			email := fmt.Sprintf("kari.%d@example.com", i)
			f.Set("email", email)
			for k, v := range tc.fields {
				f[k] = v
			}
			if p := s.join(t, f); p.Status != http.StatusSeeOther {
				t.Fatalf("join: %d\n%s", p.Status, p.Body)
			}
			if got := s.birthdayOf(t, s.memberByEmail(t, email).ID); got != tc.want {
				t.Errorf("birthday %q, want %q", got, tc.want)
			}
		})
	}

	bad := []struct {
		name, lang, message string
		fields              url.Values
	}{
		{"30 February", "en", "Choose a day and a month that exist", url.Values{"birthday_day": {"30"}, "birthday_month": {"02"}}},
		{"a day without a month", "nb", "Velg en dag og en måned som finnes", url.Values{"birthday_day": {"17"}, "birthday_month": {""}}},
		{"a two-digit year", "en", "write all four digits", url.Values{"birthday_day": {"17"}, "birthday_month": {"05"}, "birthday_year": {"90"}}},
		{"a year in the future", "en", "not in the future", url.Values{"birthday_day": {"01"}, "birthday_month": {"01"}, "birthday_year": {fmt.Sprint(time.Now().Year() + 1)}}},
	}
	for _, tc := range bad {
		t.Run(tc.name+" is shown by the field and stores nothing", func(t *testing.T) {
			before := s.members(t)
			f := kari()
			f.Set("email", "bad.birthday@example.com")
			f.Set("lang", tc.lang)
			for k, v := range tc.fields {
				f[k] = v
			}
			p := s.join(t, f)
			if p.Status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422\n%s", p.Status, p.Body)
			}
			field := birthdayFieldset(t, p)
			if !strings.Contains(field, `class="field invalid"`) || !strings.Contains(field, `id="birthday-error"`) || !strings.Contains(field, tc.message) {
				t.Errorf("the birthday field does not show its error %q:\n%s", tc.message, field)
			}
			if !strings.Contains(p.Body, `<a href="#birthday">`) {
				t.Error("the error summary does not link to the birthday")
			}
			if day := tc.fields.Get("birthday_day"); !strings.Contains(field, `<option value="`+day+`" selected>`) {
				t.Errorf("the day chosen (%s) was lost:\n%s", day, field)
			}
			if n := s.members(t); n != before {
				t.Errorf("%d members stored after an invalid form, was %d", n, before)
			}
		})
	}
}

func TestPreferencesChangeAndClearTheBirthday(t *testing.T) {
	s := newSite(t, ClubOptions{})
	m := confirmed(t, s)
	tok := token(models.TokenPreferences, m.ID, time.Now().Add(time.Hour))
	save := func(t *testing.T, birthday url.Values) page {
		t.Helper()
		form := s.get(t, "/preferences?token="+url.QueryEscape(tok))
		f := url.Values{"_csrf": {csrf(t, form)}, "token": {tok}, "lang": {"en"}, "name": {"Kari Nordmann"}, "home_store": {"oslo-1"},
			"language": {"en"}, "marketing_consent": {"yes"}}
		for k, v := range birthday {
			f[k] = v
		}
		return s.post(t, "/preferences", f)
	}

	if f := birthdayFieldset(t, s.get(t, "/preferences?token="+url.QueryEscape(tok))); strings.Contains(f, " selected>") {
		t.Errorf("a member without a birthday sees one chosen:\n%s", f)
	}

	// The steps run in order on one member: each starts from what the one before left.
	steps := []struct {
		name   string
		fields url.Values // nil: a form without the birthday fields
		status int
		want   string   // the stored birthday afterwards
		shows  []string // what the page shows afterwards (on 422: the page answered)
	}{
		{"a day and a month are saved and shown", url.Values{"birthday_day": {"29"}, "birthday_month": {"02"}, "birthday_year": {""}}, http.StatusOK,
			"--02-29", []string{`<option value="29" selected>`, `<option value="02" selected>`, `name="birthday_year" value=""`}},
		{"a year is added and shown", url.Values{"birthday_day": {"17"}, "birthday_month": {"05"}, "birthday_year": {"1985"}}, http.StatusOK,
			"1985-05-17", []string{`<option value="17" selected>`, `<option value="05" selected>`, `name="birthday_year" value="1985"`}},
		{"an impossible date is refused by the field and changes nothing", url.Values{"birthday_day": {"31"}, "birthday_month": {"04"}, "birthday_year": {""}},
			http.StatusUnprocessableEntity, "1985-05-17", []string{`id="birthday-error"`, "Choose a day and a month that exist", `<option value="31" selected>`}},
		{"a form without the birthday fields leaves it", nil, http.StatusOK, "1985-05-17", []string{`name="birthday_year" value="1985"`}},
		{"empty fields clear it", url.Values{"birthday_day": {""}, "birthday_month": {""}, "birthday_year": {""}}, http.StatusOK,
			"", []string{`name="birthday_year" value=""`}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			p := save(t, st.fields)
			if p.Status != st.status {
				t.Fatalf("save: %d, want %d\n%s", p.Status, st.status, p.Body)
			}
			if got := s.birthdayOf(t, m.ID); got != st.want {
				t.Errorf("birthday %q, want %q", got, st.want)
			}
			if p.Status == http.StatusOK {
				p = s.get(t, "/preferences?token="+url.QueryEscape(tok))
			}
			f := birthdayFieldset(t, p)
			for _, want := range st.shows {
				if !strings.Contains(f, want) {
					t.Errorf("the birthday field lacks %s:\n%s", want, f)
				}
			}
		})
	}
}
