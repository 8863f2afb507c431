package dispatch

import (
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

// TestCampaignMailShowsTheMembersPoints sends, through the real sender to the SMTP test server,
// a campaign that prints each member's balance and stamp card under a stamp program (1 point a
// visit, the cheapest reward 10 points): each member gets their own figures, a full card is
// capped at its size.
func TestCampaignMailShowsTheMembersPoints(t *testing.T) {
	e := stampProgram(t)
	id := e.htmlCampaign(t, "Points", pointsHTML)
	start(t, []*Dispatcher{e.dispatcher()}, []*Sender{e.sender(t, 2, 0)})
	waitFor(t, "the campaign to be sent", 30*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })
	checkPoints(t, e)
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE points IS NULL`); n != 0 {
		t.Errorf("%d recipient rows made without the extras, for a campaign that shows them", n)
	}
}

// TestExtrasAreReadWhenAnEditComesToShowThem snapshots a campaign that shows no extras (its
// rows are made without them, the cheaper snapshot), then edits it to show the points, as a
// marketer may while it is paused: every mail still shows the member's own figures, read by the
// sender.
func TestExtrasAreReadWhenAnEditComesToShowThem(t *testing.T) {
	e := stampProgram(t)
	ctx := context.Background()
	id := e.htmlCampaign(t, "Points", `<p>New records are in, {{.Member.FirstName}}.</p>`)
	if err := e.dispatcher().Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, `SELECT count(*) FROM campaign_recipients WHERE points IS NULL AND tier IS NULL`); n != 3 {
		t.Errorf("%d of 3 recipient rows made without the extras, for a campaign that shows none", n)
	}
	if _, err := e.db.Pool.Exec(ctx, `UPDATE campaigns SET html = $2, updated_at = updated_at + interval '1 second' WHERE id = $1`,
		id, pointsHTML); err != nil {
		t.Fatal(err)
	}
	start(t, []*Dispatcher{e.dispatcher()}, []*Sender{e.sender(t, 2, 0)})
	waitFor(t, "the campaign to be sent", 30*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })
	checkPoints(t, e)
}

// pointsHTML shows each member's balance and stamp card.
const pointsHTML = `<p>You have {{.Member.Points}} points: {{.StampCard}}</p>` +
	`<p>{{if .Member.StampsNeeded}}{{.Member.Stamps}} of {{.Member.StampsNeeded}} stamps{{end}}</p>`

// stampProgram is an env with three members, a stamp program (1 point a visit, the cheapest
// reward 10 points) and 3, 12 and 0 visits.
func stampProgram(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	e.addMembers(t, 3, "ok", "example.com", "active", "confirmed")
	zero := 0.0
	if _, err := e.db.SetRewardProgram(ctx, models.RewardProgramInput{PointsPerVisit: models.Int{Present: true, Value: 1},
		PointsPerMajorUnit: &zero}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		code string
		cost int64
	}{{"coffee", 10}, {"cake", 25}} {
		code, name := r.code, "Free "+r.code
		if _, err := e.db.CreateReward(ctx, models.RewardInput{Code: &code, Name: &name,
			CostPoints: models.Int{Present: true, Value: r.cost}, DiscountMinor: models.Int{Present: true, Value: 3500}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.db.CreateStore(ctx, models.StoreInput{Code: "oslo-1", Name: "Oslo", Timezone: "Europe/Oslo", Currency: "NOK"}); err != nil {
		t.Fatal(err)
	}
	token, err := e.db.CreateAPIKey(ctx, models.RoleRegister, "oslo-1", "till-1")
	if err != nil {
		t.Fatal(err)
	}
	till, err := e.db.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	visits := map[string]int{"ok1@example.com": 3, "ok2@example.com": 12, "ok3@example.com": 0}
	for email, n := range visits {
		for i := range n {
			in := models.TransactionInput{ID: fmt.Sprintf("%s-%d", email, i), Store: "oslo-1", Register: "till-1", Kind: "sale",
				OccurredAt: e.base.Add(-time.Hour).Format(time.RFC3339), Amount: models.Int{Present: true, Value: 4500},
				Currency: "NOK", Member: &models.MemberRef{Email: email}}
			if _, _, err := e.db.RecordTransaction(ctx, till, in); err != nil {
				t.Fatal(err)
			}
		}
	}
	return e
}

// checkPoints checks that each of stampProgram's members got a mail with their own figures
// (pointsHTML), a full card capped at its size.
func checkPoints(t *testing.T, e *env) {
	t.Helper()
	want := map[string][]string{
		"ok1@example.com": {"You have 3 points", `<span aria-hidden="true">●●●○○○○○○○</span> 3/10`, "3 of 10 stamps"},
		"ok2@example.com": {"You have 12 points", `<span aria-hidden="true">●●●●●●●●●●</span> 10/10`, "10 of 10 stamps"},
		"ok3@example.com": {"You have 0 points", `<span aria-hidden="true">○○○○○○○○○○</span> 0/10`, "0 of 10 stamps"},
	}
	msgs := e.smtp.Messages()
	if len(msgs) != len(want) {
		t.Fatalf("%d mails, want %d", len(msgs), len(want))
	}
	for _, m := range msgs {
		body := htmlPart(t, m.Data)
		for _, w := range want[m.To[0]] {
			if !strings.Contains(body, w) {
				t.Errorf("the mail to %s lacks %q:\n%s", m.To[0], w, body)
			}
		}
	}
}

// htmlPart is the decoded text/html part of a raw mail.
func htmlPart(t *testing.T, raw []byte) string {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var find func(header map[string][]string, body io.Reader) string
	find = func(header map[string][]string, body io.Reader) string {
		h := mail.Header(header)
		mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(mediaType, "multipart/") {
			r := multipart.NewReader(body, params["boundary"])
			for {
				p, err := r.NextRawPart()
				if err == io.EOF {
					return ""
				}
				if err != nil {
					t.Fatal(err)
				}
				if s := find(p.Header, p); s != "" {
					return s
				}
			}
		}
		if mediaType != "text/html" {
			return ""
		}
		if strings.EqualFold(h.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return find(msg.Header, msg.Body)
}
