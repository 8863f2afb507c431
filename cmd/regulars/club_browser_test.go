package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/handlers/browsertest"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models/dbtest"
)

// The club as a customer meets it, in a real headless Chromium against the real binary: fill the
// join form (first wrongly, then rightly), read the confirmation mail from an SMTP server, open
// its link and press its button, see the welcome page with the card, leave in one click from the
// welcome mail, come back with a consent link asked for on the preferences page, and erase the
// membership with another.
//
// Screenshots of the form, its error state and the welcome page go to a temporary folder, or to
// docs/screenshots/ with REGULARS_UPDATE_SCREENSHOTS=1 (how the README's pictures are made).

// waitForMail waits for the next message to addr after the first skip ones.
func waitForMail(t *testing.T, smtp *smtptest.Server, addr string, skip int) smtptest.Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var seen int
		for _, m := range smtp.Messages() {
			for _, to := range m.To {
				if strings.EqualFold(to, addr) {
					if seen == skip {
						return m
					}
					seen++
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail #%d to %s within 30s (%d messages in all)", skip+1, addr, smtp.Count())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// textPart returns the decoded text/plain part of a message.
func textPart(t *testing.T, m smtptest.Message) string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("parse mail: %v", err)
	}
	text, ok := findPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, "text/plain")
	if !ok {
		t.Fatalf("mail has no text/plain part:\n%s", m.Data)
	}
	return text
}

func findPart(contentType, encoding string, body io.Reader, want string) (string, bool) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", false
	}
	if strings.HasPrefix(mt, "multipart/") {
		r := multipart.NewReader(body, params["boundary"])
		for {
			p, err := r.NextRawPart()
			if err != nil {
				return "", false
			}
			if s, ok := findPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, want); ok {
				return s, true
			}
		}
	}
	if mt != want {
		return "", false
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(body)
	return string(b), err == nil
}

var linkTo = func(path string) *regexp.Regexp {
	return regexp.MustCompile(`https?://[^\s"<>]+` + regexp.QuoteMeta(path) + `\?token=[A-Za-z0-9._~%-]+`)
}

func TestClubInABrowser(t *testing.T) {
	t.Parallel()
	browsertest.ChromiumPath(t) // fail or skip before starting anything
	smtp := smtptest.New(t)
	dbURL := dbtest.URL(t)
	addr := freeAddr(t)
	base := "http://" + addr
	env := []string{
		"REGULARS_DATABASE_URL=" + dbURL,
		"REGULARS_DATA_DIR=" + t.TempDir(),
		"REGULARS_SMTP_URL=" + smtp.URL(),
		"REGULARS_BASE_URL=" + base,
		"REGULARS_MAIL_FROM=Platebutikken <klubb@platebutikken.example>",
	}
	srv := startServeAt(t, env, addr)
	admin := newAPIClient(srv.base, createKey(t, env, "--role", "admin", "--name", "browser admin"))
	admin.mustDo(t, http.MethodPost, "/api/v1/stores",
		map[string]string{"code": "oslo-1", "name": "Platebutikken Grünerløkka", "timezone": "Europe/Oslo", "currency": "NOK"},
		http.StatusCreated)
	admin.mustDo(t, http.MethodPost, "/api/v1/stores",
		map[string]string{"code": "bergen-1", "name": "Platebutikken Bergen", "timezone": "Europe/Oslo", "currency": "NOK"},
		http.StatusCreated)
	admin.mustDo(t, http.MethodPut, "/api/v1/tiers", map[string]any{"tiers": []map[string]any{
		{"name": "Member", "min_spend": 0, "discount_percent": 5},
		{"name": "Regular", "min_spend": 500000, "discount_percent": 10},
	}}, http.StatusOK)
	ctx := browsertest.New(t, 412, 915, "en")
	const email = "kari.nordmann@example.com"

	t.Run("the form shows its fields with the consent box unticked", func(t *testing.T) {
		var consentChecked bool
		var consentText string
		err := chromedp.Run(ctx,
			chromedp.Navigate(base+"/join?store=bergen-1"),
			chromedp.WaitVisible(`input[name="email"]`, chromedp.ByQuery),
			chromedp.Evaluate(`document.querySelector('input[name="marketing_consent"]').checked`, &consentChecked),
			chromedp.Text(`label[for="marketing_consent"]`, &consentText, chromedp.ByQuery),
		)
		if err != nil {
			t.Fatal(err)
		}
		if consentChecked {
			t.Error("the marketing consent box is ticked before the visitor ticks it")
		}
		if len(strings.TrimSpace(consentText)) < 20 {
			t.Errorf("consent label %q does not show the consent text", consentText)
		}
		var store string
		if err := chromedp.Run(ctx, chromedp.Value(`select[name="home_store"]`, &store, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		if store != "bergen-1" {
			t.Errorf("home store preselected %q, want bergen-1 from ?store=", store)
		}
		browsertest.Screenshot(t, ctx, "join.png")
	})

	t.Run("a wrong email is shown next to the email field", func(t *testing.T) {
		var errText string
		err := chromedp.Run(ctx,
			chromedp.SendKeys(`input[name="name"]`, "Kari Nordmann", chromedp.ByQuery),
			chromedp.SendKeys(`input[name="email"]`, "kari.nordmann@", chromedp.ByQuery),
			// Submit past the browser's own check of type=email: the server's answer is under test.
			chromedp.Evaluate(`document.querySelector('input[name="email"]').closest('form').noValidate = true`, nil),
			chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
			chromedp.WaitVisible(`#email-error`, chromedp.ByQuery),
			chromedp.Text(`#email-error`, &errText, chromedp.ByQuery),
		)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(errText) == "" {
			t.Error("the email error is empty")
		}
		var describedBy, invalid string
		if err := chromedp.Run(ctx,
			chromedp.AttributeValue(`input[name="email"]`, "aria-describedby", &describedBy, nil, chromedp.ByQuery),
			chromedp.AttributeValue(`input[name="email"]`, "aria-invalid", &invalid, nil, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(describedBy, "email-error") || invalid != "true" {
			t.Errorf("email field aria-describedby %q aria-invalid %q: the error is not tied to its field", describedBy, invalid)
		}
		var name string
		if err := chromedp.Run(ctx, chromedp.Value(`input[name="name"]`, &name, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		if name != "Kari Nordmann" {
			t.Errorf("the name typed was lost: %q", name)
		}
		browsertest.Screenshot(t, ctx, "join-error.png")
	})

	t.Run("a right form sends a confirmation mail", func(t *testing.T) {
		var page string
		err := chromedp.Run(ctx,
			chromedp.SetValue(`input[name="email"]`, email, chromedp.ByQuery),
			chromedp.Click(`input[name="marketing_consent"]`, chromedp.ByQuery),
			chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
			chromedp.WaitNotPresent(`input[name="email"]`, chromedp.ByQuery),
			chromedp.Text(`main`, &page, chromedp.ByQuery),
		)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.ToLower(page), "inbox") {
			t.Errorf("after joining the page says %q, want a check-your-inbox message", page)
		}
	})

	var confirmLink string
	t.Run("the confirmation mail links to /confirm", func(t *testing.T) {
		m := waitForMail(t, smtp, email, 0)
		if links := linkTo("/confirm").FindAllString(textPart(t, m), -1); len(links) > 0 {
			confirmLink = links[0]
		}
		if !strings.HasPrefix(confirmLink, base+"/confirm?token=") {
			t.Fatalf("confirmation mail has no confirm link on %s:\n%s", base, textPart(t, m))
		}
	})
	if confirmLink == "" {
		t.FailNow()
	}

	t.Run("the link shows one button and changes nothing", func(t *testing.T) {
		if err := chromedp.Run(ctx,
			chromedp.Navigate(confirmLink),
			chromedp.WaitVisible(`form[action="/confirm"] button[type="submit"]`, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		if got := consentOf(t, dbURL, email); got != "pending" {
			t.Errorf("opening the confirmation link changed consent to %q before the click", got)
		}
	})

	var card string
	t.Run("the button shows the welcome page with the card", func(t *testing.T) {
		var page string
		var barcodeWidth int
		err := chromedp.Run(ctx,
			chromedp.Click(`form[action="/confirm"] button[type="submit"]`, chromedp.ByQuery),
			chromedp.WaitVisible(`img`, chromedp.ByQuery),
			chromedp.Text(`main`, &page, chromedp.ByQuery),
			// The barcode's width once it has loaded (0 if it fails): awaited, not read at once.
			chromedp.Evaluate(`new Promise(resolve => {
				const img = document.querySelector('main img');
				if (img.complete) { resolve(img.naturalWidth); return; }
				img.addEventListener('load', () => resolve(img.naturalWidth));
				img.addEventListener('error', () => resolve(0));
			})`, &barcodeWidth, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
		)
		if err != nil {
			t.Fatal(err)
		}
		card = regexp.MustCompile(`\b\d{13}\b`).FindString(strings.ReplaceAll(page, " ", ""))
		if card == "" {
			t.Fatalf("welcome page shows no 13-digit card number: %q", page)
		}
		if barcodeWidth == 0 {
			t.Error("the barcode image did not load")
		}
		if !strings.Contains(page, "5") || !strings.Contains(page, "%") {
			t.Errorf("welcome page does not show the 5%% discount: %q", page)
		}
		browsertest.Screenshot(t, ctx, "welcome.png")
	})

	t.Run("the member is active with confirmed consent", func(t *testing.T) {
		till := newAPIClient(srv.base, createKey(t, env, "--role", "register", "--store", "oslo-1", "--name", "till"))
		body := till.mustDo(t, http.MethodGet, "/api/v1/members/lookup?email="+email, nil, http.StatusOK)
		if !strings.Contains(string(body), `"card":"`+card+`"`) || !strings.Contains(string(body), `"status":"active"`) {
			t.Errorf("lookup after confirming: %s, want active member with card %s", body, card)
		}
		status := consentOf(t, dbURL, email)
		if status != "confirmed" {
			t.Errorf("marketing consent %q after confirming, want confirmed", status)
		}
	})

	t.Run("one click in the welcome mail unsubscribes", func(t *testing.T) {
		m := waitForMail(t, smtp, email, 1)
		if !strings.Contains(textPart(t, m), card) {
			t.Errorf("welcome mail does not carry the card number %s", card)
		}
		// List-Unsubscribe-Post (RFC 8058) is only allowed with an https target; this server's base
		// URL is plain http on loopback, so only List-Unsubscribe is checked here.
		if lu := m.Header.Get("List-Unsubscribe"); !strings.Contains(lu, base+"/unsubscribe?token=") {
			t.Errorf("welcome mail List-Unsubscribe %q does not name %s/unsubscribe", lu, base)
		}
		link := linkTo("/unsubscribe").FindString(textPart(t, m))
		if link == "" {
			t.Fatalf("welcome mail has no unsubscribe link:\n%s", textPart(t, m))
		}
		if err := chromedp.Run(ctx,
			chromedp.Navigate(link),
			chromedp.WaitVisible(`form button[type="submit"]`, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		if got := consentOf(t, dbURL, email); got != "confirmed" {
			t.Fatalf("opening the unsubscribe page changed consent to %q before the click", got)
		}
		var page string
		if err := chromedp.Run(ctx,
			chromedp.Click(`form button[type="submit"]`, chromedp.ByQuery),
			chromedp.WaitNotPresent(`form[action*="unsubscribe"] button[type="submit"]`, chromedp.ByQuery),
			chromedp.Text(`main`, &page, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		if got := consentOf(t, dbURL, email); got != "withdrawn" {
			t.Errorf("marketing consent %q after one click, want withdrawn", got)
		}
		browsertest.Screenshot(t, ctx, "unsubscribed.png")
	})

	// The preferences link is in every campaign mail, so it cannot grant consent or erase: those
	// take a link mailed to the member on request, whose page has one button.
	var prefsLink string
	t.Run("ticking the box again mails a consent link; its button subscribes", func(t *testing.T) {
		prefsLink = linkTo("/preferences").FindString(textPart(t, waitForMail(t, smtp, email, 1)))
		if prefsLink == "" {
			t.Fatal("welcome mail has no preferences link")
		}
		var page string
		if err := chromedp.Run(ctx,
			chromedp.Navigate(prefsLink),
			chromedp.WaitVisible(`#marketing_consent`, chromedp.ByQuery),
			chromedp.Click(`#marketing_consent`, chromedp.ByQuery),
			chromedp.Click(`form[action="/preferences"] button[type="submit"]`, chromedp.ByQuery),
			chromedp.WaitNotPresent(`#marketing_consent`, chromedp.ByQuery),
			chromedp.Text(`main`, &page, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(page, "We have sent you a link") {
			t.Errorf("after saving the page says %q, want that a link was sent", page)
		}
		if got := consentOf(t, dbURL, email); got != "withdrawn" {
			t.Fatalf("consent %q after ticking the box with the preferences link, want still withdrawn", got)
		}
		link := linkTo("/preferences/consent").FindString(textPart(t, waitForMail(t, smtp, email, 2)))
		if link == "" {
			t.Fatal("no consent link mailed")
		}
		if err := chromedp.Run(ctx,
			chromedp.Navigate(link),
			chromedp.WaitVisible(`form[action="/preferences/consent"] button[type="submit"]`, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		if got := consentOf(t, dbURL, email); got != "withdrawn" {
			t.Fatalf("opening the consent link changed consent to %q before the click", got)
		}
		if err := chromedp.Run(ctx,
			chromedp.Click(`form[action="/preferences/consent"] button[type="submit"]`, chromedp.ByQuery),
			chromedp.WaitNotPresent(`form[action="/preferences/consent"]`, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		if got := consentOf(t, dbURL, email); got != "confirmed" {
			t.Errorf("consent %q after the consent link's button, want confirmed", got)
		}
	})

	t.Run("erasing takes a mailed link and a button", func(t *testing.T) {
		if prefsLink == "" {
			t.Skip("no preferences link")
		}
		var page string
		if err := chromedp.Run(ctx,
			chromedp.Navigate(prefsLink),
			chromedp.WaitVisible(`button[value="erase"]`, chromedp.ByQuery),
			chromedp.Click(`button[value="erase"]`, chromedp.ByQuery),
			chromedp.WaitNotPresent(`button[value="erase"]`, chromedp.ByQuery),
			chromedp.Text(`main`, &page, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(page, "We have sent you a link to erase your membership") {
			t.Errorf("after asking the page says %q", page)
		}
		link := linkTo("/preferences/erase").FindString(textPart(t, waitForMail(t, smtp, email, 3)))
		if link == "" {
			t.Fatal("no erase link mailed")
		}
		if err := chromedp.Run(ctx,
			chromedp.Navigate(link),
			chromedp.WaitVisible(`form[action="/preferences/erase"] button[type="submit"]`, chromedp.ByQuery),
			chromedp.Click(`form[action="/preferences/erase"] button[type="submit"]`, chromedp.ByQuery),
			chromedp.WaitNotPresent(`form[action="/preferences/erase"]`, chromedp.ByQuery),
			chromedp.Text(`main`, &page, chromedp.ByQuery),
		); err != nil {
			t.Fatal(err)
		}
		var erased int
		if err := queryRow(dbURL, `SELECT count(*) FROM members WHERE status = 'erased' AND email IS NULL`, nil, &erased); err != nil {
			t.Fatal(err)
		}
		if erased != 1 || !strings.Contains(page, "erased") {
			t.Errorf("%d erased members, page %q; want the member erased", erased, page)
		}
	})

	t.Run("the form speaks Norwegian to a Norwegian browser", func(t *testing.T) {
		nb := browsertest.New(t, 412, 915, "nb-NO,nb;q=0.9")
		var htmlLang, label string
		err := chromedp.Run(nb,
			chromedp.Navigate(base+"/join"),
			chromedp.WaitVisible(`input[name="email"]`, chromedp.ByQuery),
			chromedp.AttributeValue(`html`, "lang", &htmlLang, nil, chromedp.ByQuery),
			chromedp.Text(`label[for="name"]`, &label, chromedp.ByQuery),
		)
		if err != nil {
			t.Fatal(err)
		}
		if htmlLang != "nb" || !strings.Contains(strings.ToLower(label), "navn") {
			t.Errorf("html lang %q, name label %q: want nb and \"Navn\"", htmlLang, label)
		}
		browsertest.Screenshot(t, nb, "join-nb.png")
	})
}

// consentOf reads a member's marketing consent state straight from the database.
func consentOf(t *testing.T, dbURL, email string) string {
	t.Helper()
	var state string
	err := queryRow(dbURL, `SELECT marketing_consent FROM members WHERE lower(email) = lower($1)`, []any{email}, &state)
	if err != nil {
		t.Fatalf("consent of %s: %v", email, err)
	}
	return state
}

func queryRow(dbURL, sql string, args []any, dest ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
