package clubmail

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/mailer/smtptest"
	"github.com/regulars/regulars/models"
	"github.com/regulars/regulars/models/dbtest"
	"github.com/regulars/regulars/templates"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var secret = []byte("test secret for club mail, 32 bytes or more")

const baseURL = "https://club.example"

// newSender returns a Sender delivering to srv. The mailer tries once per Send, so that the
// queue's own retries are what the tests see.
func newSender(t *testing.T, db *models.DB, srv *smtptest.Server) *Sender {
	t.Helper()
	m, err := mailer.New(srv.URL(), "", mailer.WithRetry(1, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &Sender{DB: db, Mail: m, From: "Regulars club <club@shop.example>", BaseURL: baseURL, Secret: secret,
		Log: slog.New(slog.DiscardHandler), Templates: loadTemplates(t)}
}

// loadTemplates parses the templates as the server does at start-up.
func loadTemplates(t *testing.T) *templates.Engine {
	t.Helper()
	e, err := templates.Load()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// join signs up email through the web form's model call and returns the member id.
func join(t *testing.T, db *models.DB, email, lang string) int64 {
	t.Helper()
	res, err := db.Join(context.Background(), models.JoinInput{
		Name: "Kari Nordmann", Email: email, Language: lang, MarketingConsent: true, ConsentTextVersion: "v1",
	}, models.ConsentEvidence{IP: "192.0.2.1", UserAgent: "test"})
	if err != nil {
		t.Fatalf("join %s: %v", email, err)
	}
	return res.MemberID
}

func drain(t *testing.T, s *Sender) int {
	t.Helper()
	n, err := s.Drain(context.Background())
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	return n
}

// received is one delivered message taken apart.
type received struct {
	header mail.Header
	text   string
	html   string
	inline []inlinePart
}

type inlinePart struct {
	contentID   string
	contentType string
	data        []byte
}

func parse(t *testing.T, m smtptest.Message) received {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	r := received{header: msg.Header}
	walk(t, &r, textproto(msg.Header), msg.Body)
	return r
}

// textproto adapts a mail.Header to what walk needs.
func textproto(h mail.Header) map[string]string {
	return map[string]string{
		"Content-Type":              h.Get("Content-Type"),
		"Content-Transfer-Encoding": h.Get("Content-Transfer-Encoding"),
		"Content-Id":                h.Get("Content-Id"),
	}
}

func walk(t *testing.T, r *received, h map[string]string, body io.Reader) {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(h["Content-Type"])
	if err != nil {
		t.Fatalf("content type %q: %v", h["Content-Type"], err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			walk(t, r, map[string]string{
				"Content-Type":              p.Header.Get("Content-Type"),
				"Content-Transfer-Encoding": p.Header.Get("Content-Transfer-Encoding"),
				"Content-Id":                p.Header.Get("Content-Id"),
			}, p)
		}
	}
	switch strings.ToLower(h["Content-Transfer-Encoding"]) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case mediaType == "text/plain":
		r.text = string(data)
	case mediaType == "text/html" && h["Content-Id"] == "":
		r.html = string(data)
	default:
		r.inline = append(r.inline, inlinePart{contentID: h["Content-Id"], contentType: mediaType, data: data})
	}
}

// token finds the token of the first link to page in s.
func token(t *testing.T, s, page string) string {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(baseURL+"/"+page+"?token=") + `([^\s"<>&]+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s link in:\n%s", page, s)
	}
	tok, err := url.QueryUnescape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// byRecipient returns the messages delivered to addr.
func byRecipient(srv *smtptest.Server, addr string) []smtptest.Message {
	var out []smtptest.Message
	for _, m := range srv.Messages() {
		if len(m.To) == 1 && m.To[0] == addr {
			out = append(out, m)
		}
	}
	return out
}

func TestConfirmationMail(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	srv := smtptest.New(t)
	s := newSender(t, db, srv)
	id := join(t, db, "kari@example.com", "en")

	if n := drain(t, s); n != 1 {
		t.Fatalf("sent %d mails, want 1", n)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "kari@example.com" {
		t.Fatalf("delivered %+v, want one mail to kari@example.com", msgs)
	}
	r := parse(t, msgs[0])

	t.Run("it is written in English with both parts", func(t *testing.T) {
		if got, want := r.header.Get("Subject"), "Confirm your membership of Regulars club"; got != want {
			t.Errorf("subject %q, want %q", got, want)
		}
		if !strings.Contains(r.text, "Hi Kari Nordmann,") || !strings.Contains(r.text, "confirm your email address") {
			t.Errorf("text part lacks the greeting or the request:\n%s", r.text)
		}
		if !strings.Contains(r.html, "Confirm my email address") || !strings.Contains(r.html, "max-width:600px") {
			t.Errorf("HTML part lacks the button or the layout:\n%s", r.html)
		}
		if !strings.Contains(r.text, "Did you not ask to join?") {
			t.Errorf("text part does not say what happens if you did not ask for it:\n%s", r.text)
		}
	})

	t.Run("the confirmation link names the member and expires", func(t *testing.T) {
		for part, body := range map[string]string{"text": r.text, "html": r.html} {
			tok := token(t, body, "confirm")
			got, err := models.VerifyToken(secret, models.TokenConfirm, tok, time.Now())
			if err != nil || got != id {
				t.Errorf("%s part: confirm token gives member %d, %v; want %d", part, got, err, id)
			}
			if _, err := models.VerifyToken(secret, models.TokenConfirm, tok, time.Now().Add(DefaultConfirmTTL+time.Hour)); !errors.Is(err, models.ErrTokenExpired) {
				t.Errorf("%s part: confirm token after its TTL gives %v, want expired", part, err)
			}
		}
	})

	t.Run("the footer links to preferences and unsubscribe", func(t *testing.T) {
		for part, body := range map[string]string{"text": r.text, "html": r.html} {
			if got, err := models.VerifyToken(secret, models.TokenPreferences, token(t, body, "preferences"), time.Now()); err != nil || got != id {
				t.Errorf("%s part: preferences token gives %d, %v", part, got, err)
			}
			unsub := token(t, body, "unsubscribe")
			if got, err := models.VerifyToken(secret, models.TokenUnsubscribe, unsub, time.Now().AddDate(10, 0, 0)); err != nil || got != id {
				t.Errorf("%s part: unsubscribe token ten years on gives %d, %v; want it never to expire", part, got, err)
			}
		}
	})

	t.Run("it carries one-click unsubscribe headers", func(t *testing.T) {
		lu := r.header.Get("List-Unsubscribe")
		if !strings.Contains(lu, "<"+baseURL+"/unsubscribe?token=") || !strings.Contains(lu, "<mailto:club@shop.example?subject=unsubscribe>") {
			t.Errorf("List-Unsubscribe = %q, want the unsubscribe URL and a mailto", lu)
		}
		if got := r.header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
			t.Errorf("List-Unsubscribe-Post = %q", got)
		}
		tok := token(t, strings.NewReplacer("<", " ", ">", " ").Replace(lu), "unsubscribe")
		if got, err := models.VerifyToken(secret, models.TokenUnsubscribe, tok, time.Now()); err != nil || got != id {
			t.Errorf("header's unsubscribe token gives %d, %v", got, err)
		}
	})

	t.Run("it is sent once", func(t *testing.T) {
		if n := drain(t, s); n != 0 || srv.Count() != 1 {
			t.Errorf("a second drain sent %d, %d delivered in all; want 0 and 1", n, srv.Count())
		}
	})
}

func TestMailIsInTheMembersLanguage(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	srv := smtptest.New(t)
	s := newSender(t, db, srv)
	join(t, db, "ola@example.no", "nb")
	drain(t, s)
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("delivered %d mails, want 1", len(msgs))
	}
	r := parse(t, msgs[0])
	if got, err := new(mime.WordDecoder).DecodeHeader(r.header.Get("Subject")); err != nil || got != "Bekreft medlemskapet ditt i Regulars-klubben" {
		t.Errorf("subject %q (%v), want the Norwegian one", got, err)
	}
	for _, want := range []string{"Hei Kari Nordmann,", "Bekreft e-postadressen", "Meld deg av tilbud på e-post"} {
		if !strings.Contains(r.text, want) || !strings.Contains(r.html, want) {
			t.Errorf("mail lacks %q:\n%s", want, r.text)
		}
	}
}

func TestWelcomeMail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		lang     string
		tiers    []models.TierInput
		wantText string
	}{
		{"without tiers it speaks of collecting purchases, not of 0 %", "en", nil,
			"Show your card at the till to collect purchases towards the club's tiers."},
		{"with a tier it gives the discount", "en",
			[]models.TierInput{{Name: "Bronze", MinSpend: models.Int{Value: 0, Present: true}, DiscountPercent: ptr(7.5)}},
			"As a Bronze member you get 7.5% off."},
		{"in Norwegian the number is written the Norwegian way", "nb",
			[]models.TierInput{{Name: "Bronse", MinSpend: models.Int{Value: 0, Present: true}, DiscountPercent: ptr(7.5)}},
			"Som Bronse-medlem får du 7,5 % rabatt."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := dbtest.New(t)
			srv := smtptest.New(t)
			s := newSender(t, db, srv)
			if tc.tiers != nil {
				if _, err := db.ReplaceTiers(ctx, tc.tiers); err != nil {
					t.Fatal(err)
				}
			}
			id := join(t, db, "kari@example.com", tc.lang)
			m, _, err := db.ConfirmMember(ctx, id, models.ConsentEvidence{IP: "192.0.2.1", UserAgent: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if n := drain(t, s); n != 2 {
				t.Fatalf("sent %d mails, want the confirmation and the welcome", n)
			}
			var welcome *received
			for _, msg := range srv.Messages() {
				r := parse(t, msg)
				if len(r.inline) > 0 {
					welcome = &r
				}
			}
			if welcome == nil {
				t.Fatal("no mail with an inline image was delivered")
			}
			if len(welcome.inline) != 1 {
				t.Fatalf("welcome has %d inline parts, want 1", len(welcome.inline))
			}
			img := welcome.inline[0]
			cid := strings.Trim(img.contentID, "<>")
			if img.contentType != "image/png" || cid == "" {
				t.Errorf("inline part is %q with id %q, want a PNG with a content id", img.contentType, img.contentID)
			}
			if _, err := png.Decode(bytes.NewReader(img.data)); err != nil {
				t.Errorf("inline barcode is not a PNG: %v", err)
			}
			if want := fmt.Sprintf(`src="cid:%s"`, cid); !strings.Contains(welcome.html, want) {
				t.Errorf("HTML does not show the image (%s):\n%s", want, welcome.html)
			}
			if want := fmt.Sprintf(`alt="%s"`, m.Card); !strings.Contains(welcome.html, want) {
				t.Errorf("image alt text is not the card number %s", m.Card)
			}
			if !strings.Contains(welcome.text, m.Card) {
				t.Errorf("text part lacks the card number %s", m.Card)
			}
			if !strings.Contains(welcome.text, tc.wantText) || !strings.Contains(welcome.html, htmlEscape(tc.wantText)) {
				t.Errorf("welcome lacks %q:\n%s", tc.wantText, welcome.text)
			}
		})
	}
}

func TestAlreadyMemberMail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	srv := smtptest.New(t)
	s := newSender(t, db, srv)
	id := join(t, db, "kari@example.com", "en")
	m, _, err := db.ConfirmMember(ctx, id, models.ConsentEvidence{})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	join(t, db, "kari@example.com", "en")
	if n := drain(t, s); n != 1 {
		t.Fatalf("sent %d, want the already-member mail", n)
	}
	msgs := srv.Messages()
	r := parse(t, msgs[len(msgs)-1])
	if got := r.header.Get("Subject"); got != "You are already a member of Regulars club" {
		t.Errorf("subject %q", got)
	}
	if !strings.Contains(r.text, "Your card number is "+m.Card+".") {
		t.Errorf("text lacks the card number:\n%s", r.text)
	}
	if got, err := models.VerifyToken(secret, models.TokenPreferences, token(t, r.html, "preferences"), time.Now()); err != nil || got != id {
		t.Errorf("preferences link gives %d, %v", got, err)
	}
}

// The links for exporting, erasing and granting consent go only to the member's own address, and
// name a single-use request that works for an hour (models/member_links.go).
func TestRequestedLinkMail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	srv := smtptest.New(t)
	s := newSender(t, db, srv)
	id := join(t, db, "kari@example.com", "nb")
	if _, _, err := db.ConfirmMember(ctx, id, models.ConsentEvidence{}); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	for _, c := range []struct{ action, subject string }{
		{models.LinkExport, "Lenken din for å laste ned dataene dine fra Regulars-klubben"},
		{models.LinkErase, "Lenken din for å slette medlemskapet i Regulars-klubben"},
	} {
		t.Run(c.action, func(t *testing.T) {
			req, err := db.RequestMemberLink(ctx, id, c.action, "nb")
			if err != nil || !req.Queued {
				t.Fatalf("request: %+v, %v", req, err)
			}
			if n := drain(t, s); n != 1 {
				t.Fatalf("sent %d, want the link mail", n)
			}
			msgs := byRecipient(srv, "kari@example.com")
			r := parse(t, msgs[len(msgs)-1])
			if got, err := new(mime.WordDecoder).DecodeHeader(r.header.Get("Subject")); err != nil || got != c.subject {
				t.Errorf("subject %q, want %q", got, c.subject)
			}
			for part, body := range map[string]string{"text": r.text, "html": r.html} {
				tok := token(t, body, "preferences/"+c.action)
				got, err := models.VerifyToken(secret, models.LinkTokenPurpose(c.action), tok, time.Now())
				if err != nil || got != req.LinkID {
					t.Errorf("%s part: link token gives %d, %v; want link %d", part, got, err, req.LinkID)
				}
				if _, err := models.VerifyToken(secret, models.TokenPreferences, tok, time.Now()); err == nil {
					t.Errorf("%s part: the link token works as a preferences token", part)
				}
				if _, err := models.VerifyToken(secret, models.LinkTokenPurpose(c.action), tok, time.Now().Add(models.MemberLinkTTL+time.Minute)); !errors.Is(err, models.ErrTokenExpired) {
					t.Errorf("%s part: link token after an hour gives %v, want expired", part, err)
				}
			}
			if !strings.Contains(r.text, "én time") {
				t.Errorf("text does not say the link works for an hour:\n%s", r.text)
			}
		})
	}

	t.Run("a link that expired in the queue is not sent", func(t *testing.T) {
		if _, err := db.Pool.Exec(ctx, `UPDATE club_mail SET created_at = created_at - interval '2 hours'`); err != nil {
			t.Fatal(err) // out of the hourly cap
		}
		if _, err := db.RequestMemberLink(ctx, id, models.LinkConsent, "nb"); err != nil {
			t.Fatal(err)
		}
		before := srv.Count()
		late := newSender(t, db, srv)
		late.Now = func() time.Time { return time.Now().Add(models.MemberLinkTTL + time.Minute) }
		if n := drain(t, late); n != 0 || srv.Count() != before {
			t.Errorf("sent %d mails with an expired link", n)
		}
		var givenUp bool
		if err := db.Pool.QueryRow(ctx, `SELECT given_up_at IS NOT NULL FROM club_mail WHERE kind = 'link_consent'`).Scan(&givenUp); err != nil {
			t.Fatal(err)
		}
		if !givenUp {
			t.Error("the mail with an expired link is still queued")
		}
	})
}

// queueRow is the state of member id's queued mail.
func queueRow(t *testing.T, db *models.DB, memberID int64) (attempts int, sent, givenUp bool, lastError string, due bool) {
	t.Helper()
	err := db.Pool.QueryRow(context.Background(), `
		SELECT attempts, sent_at IS NOT NULL, given_up_at IS NOT NULL, last_error, next_attempt_at <= now()
		FROM club_mail WHERE member_id = $1`, memberID).Scan(&attempts, &sent, &givenUp, &lastError, &due)
	if err != nil {
		t.Fatal(err)
	}
	return
}

// makeDue stands in for the retry delay passing.
func makeDue(t *testing.T, db *models.DB) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), `UPDATE club_mail SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
}

func TestTemporaryFailureIsRetriedAndDeliveredOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		fail func(*smtptest.Server)
	}{
		{"a 451 to RCPT", func(s *smtptest.Server) { s.FailRcpt(1, 451) }},
		{"a 452 after DATA", func(s *smtptest.Server) { s.FailData(1, 452) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := dbtest.New(t)
			srv := smtptest.New(t)
			s := newSender(t, db, srv)
			id := join(t, db, "kari@example.com", "en")
			tc.fail(srv)

			if n, err := s.RunOnce(ctx); n != 0 || err != nil {
				t.Fatalf("RunOnce = %d, %v; want 0 sent and no error", n, err)
			}
			attempts, sent, givenUp, lastErr, due := queueRow(t, db, id)
			if attempts != 1 || sent || givenUp || lastErr == "" || due {
				t.Fatalf("after a temporary failure: attempts %d sent %v given up %v error %q due now %v; want it waiting for a retry",
					attempts, sent, givenUp, lastErr, due)
			}
			if n := drain(t, s); n != 0 {
				t.Errorf("sent %d before the retry was due", n)
			}

			makeDue(t, db)
			if n, err := s.RunOnce(ctx); n != 1 || err != nil {
				t.Fatalf("retry: RunOnce = %d, %v; want 1", n, err)
			}
			makeDue(t, db)
			drain(t, s)
			if got := len(byRecipient(srv, "kari@example.com")); got != 1 {
				t.Errorf("delivered %d times, want once", got)
			}
		})
	}
}

func TestPermanentFailureGivesUp(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	srv := smtptest.New(t)
	s := newSender(t, db, srv)
	id := join(t, db, "nobody@example.com", "en")
	srv.FailRcpt(1, 550)
	if n := drain(t, s); n != 0 {
		t.Fatalf("sent %d", n)
	}
	if _, sent, givenUp, lastErr, _ := queueRow(t, db, id); sent || !givenUp || !strings.Contains(lastErr, "550") {
		t.Errorf("after a 550: sent %v given up %v error %q; want given up with the reply", sent, givenUp, lastErr)
	}
	makeDue(t, db)
	if n := drain(t, s); n != 0 || srv.Count() != 0 {
		t.Errorf("a given-up mail was sent later (%d, %d delivered)", n, srv.Count())
	}
}

func TestRepeatedTemporaryFailuresGiveUp(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	srv := smtptest.New(t)
	s := newSender(t, db, srv)
	id := join(t, db, "kari@example.com", "en")
	srv.FailRcpt(MaxAttempts, 451)
	for i := range MaxAttempts {
		makeDue(t, db)
		if n := drain(t, s); n != 0 {
			t.Fatalf("attempt %d sent %d", i+1, n)
		}
	}
	attempts, _, givenUp, _, _ := queueRow(t, db, id)
	if attempts != MaxAttempts || !givenUp {
		t.Errorf("after %d temporary failures: attempts %d, given up %v", MaxAttempts, attempts, givenUp)
	}
}

func TestTwoSendersDeliverEachMailOnce(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	srv := smtptest.New(t)
	const members = 30
	for i := range members {
		join(t, db, fmt.Sprintf("m%d@example.com", i), "en")
	}
	senders := []*Sender{newSender(t, db, srv), newSender(t, db, srv)}
	for _, s := range senders {
		s.Batch = 3 // small batches, so both take turns at the queue
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(senders))
	for _, s := range senders {
		wg.Go(func() {
			if _, err := s.Drain(context.Background()); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, m := range srv.Messages() {
		seen[m.To[0]]++
	}
	for i := range members {
		if addr := fmt.Sprintf("m%d@example.com", i); seen[addr] != 1 {
			t.Errorf("%s got %d mails, want 1", addr, seen[addr])
		}
	}
	if srv.Count() != members {
		t.Errorf("delivered %d mails, want %d", srv.Count(), members)
	}
}

func TestMailOfAnErasedMemberIsNotSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	srv := smtptest.New(t)
	s := newSender(t, db, srv)
	id := join(t, db, "kari@example.com", "en")
	if err := db.EraseMember(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := drain(t, s); n != 0 || srv.Count() != 0 {
		t.Errorf("sent %d mails to an erased member", srv.Count())
	}
}

func TestKickWakesTheSender(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	srv := smtptest.New(t)
	s := newSender(t, db, srv)
	s.Poll = time.Hour // only the first look and the kick can send
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	join(t, db, "kari@example.com", "en")
	s.Kick()
	s.Kick() // never blocks, even with a kick pending
	for srv.Count() == 0 {
		select {
		case <-done:
			t.Fatal("Run returned early")
		case <-time.After(10 * time.Millisecond):
		}
		// The first look may have run before the join; kick until the mail is out.
		s.Kick()
	}
	cancel()
	<-done
	if srv.Count() != 1 {
		t.Errorf("delivered %d, want 1", srv.Count())
	}
}

func TestPurgeDeletesOnlyOldUnconfirmedSignUps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	pending := join(t, db, "pending@example.com", "en")
	confirmed := join(t, db, "confirmed@example.com", "en")
	if _, _, err := db.ConfirmMember(ctx, confirmed, models.ConsentEvidence{}); err != nil {
		t.Fatal(err)
	}
	week := 7 * 24 * time.Hour

	if err := (Purge{DB: db, TTL: week}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindMemberByID(ctx, pending); err != nil {
		t.Errorf("a fresh sign-up was purged: %v", err)
	}

	later := func() time.Time { return time.Now().Add(week + time.Hour) }
	if err := (Purge{DB: db, TTL: week, Now: later}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindMemberByID(ctx, pending); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("an unconfirmed sign-up older than the TTL is still there: %v", err)
	}
	if _, err := db.FindMemberByID(ctx, confirmed); err != nil {
		t.Errorf("a confirmed member was purged: %v", err)
	}
}

func TestPurgeDeletesMemberLinksADayAfterTheyExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	id := join(t, db, "kari@example.com", "en")
	if _, _, err := db.ConfirmMember(ctx, id, models.ConsentEvidence{}); err != nil {
		t.Fatal(err)
	}
	req, err := db.RequestMemberLink(ctx, id, models.LinkExport, "en")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		after time.Duration
		kept  bool
	}{{models.MemberLinkTTL + time.Hour, true}, {models.MemberLinkTTL + 25*time.Hour, false}} {
		later := func() time.Time { return time.Now().Add(c.after) }
		if err := (Purge{DB: db, Now: later}).Run(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := db.FindMemberLink(ctx, req.LinkID)
		if kept := err == nil; kept != c.kept {
			t.Errorf("%v after the request: kept %v (%v), want %v", c.after, kept, err, c.kept)
		}
	}
	if _, err := db.FindMemberByID(ctx, id); err != nil {
		t.Errorf("the member went with the link: %v", err)
	}
}

// TestEveryMailRendersInEveryLanguage catches a catalogue id missing in one language (shown as
// [id]) and a template that does not parse.
func TestEveryMailRendersInEveryLanguage(t *testing.T) {
	t.Parallel()
	data := mailData{Name: "Kari", Card: "2000000000008", ConfirmURL: baseURL + "/confirm?token=c", LinkURL: baseURL + "/preferences/export?token=l",
		ExpiresOn: "1 Jan 2027", PreferencesURL: baseURL + "/preferences?token=p",
		UnsubscribeURL: baseURL + "/unsubscribe?token=u", BarcodeCID: barcodeCID, Tier: "Gold", Discount: "10", HasDiscount: true}
	engine := loadTemplates(t)
	for _, lang := range templates.Languages() {
		for _, kind := range []string{models.MailConfirm, models.MailConsentConfirm, models.MailAlreadyMember, models.MailWelcome,
			models.MailLinkExport, models.MailLinkErase, models.MailLinkConsent} {
			t.Run(lang+" "+kind, func(t *testing.T) {
				m, err := engine.Mail(kind, lang, data)
				if err != nil {
					t.Fatal(err)
				}
				for part, body := range map[string]string{"subject": m.Subject, "text": m.Text, "html": m.HTML} {
					if strings.Contains(body, "[mail.") || strings.Contains(body, "<no value>") {
						t.Errorf("%s has a missing string:\n%s", part, body)
					}
				}
				for _, link := range []string{data.PreferencesURL, data.UnsubscribeURL} {
					if !strings.Contains(m.Text, link) || !strings.Contains(m.HTML, htmlEscape(link)) {
						t.Errorf("footer link %s missing", link)
					}
				}
				if m.Subject == "" {
					t.Error("empty subject")
				}
			})
		}
	}
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&#39;", `"`, "&#34;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func ptr[T any](v T) *T { return &v }
