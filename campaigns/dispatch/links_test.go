package dispatch

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns/tracking"
)

// TestOnlyTheTemplatesLinksAreTracked sends a campaign whose HTML has a fixed link and one built
// from member data. The fixed link is tracked; the member's own URL reaches that member untouched
// and is never stored, so the stats a marketer reads list no per-recipient URL.
func TestOnlyTheTemplatesLinksAreTracked(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addMembers(t, 5, "ok", "example.com", "active", "confirmed")
	html := `<p><a href="https://shop.example/records">Records</a>
<a href="https://shop.example/me?card={{.Member.Card}}">Your card</a></p>`
	id := e.htmlCampaign(t, "Cards", html)
	start(t, []*Dispatcher{e.dispatcher()}, []*Sender{e.sender(t, 2, 0)})
	waitFor(t, "the campaign to be sent", 30*time.Second, func() bool { return e.campaignStatus(t, id) == "sent" })

	if n := e.count(t, `SELECT count(*) FROM campaign_links WHERE campaign_id = $1`, id); n != 1 {
		t.Errorf("%d links stored, want 1 (the template's own)", n)
	}
	msgs := e.smtp.Messages()
	if len(msgs) != 5 {
		t.Fatalf("%d mails, want 5", len(msgs))
	}
	for _, m := range msgs {
		body := strings.ReplaceAll(string(m.Data), "=\r\n", "")
		body = strings.ReplaceAll(body, "=3D", "=")
		if !strings.Contains(body, "https://club.example/c/") || strings.Contains(body, `"https://shop.example/records"`) {
			t.Errorf("the fixed link was not tracked in the mail to %s", m.To[0])
		}
		if !strings.Contains(body, `href="https://shop.example/me?card=`) {
			t.Errorf("the member's own link was not left as it is in the mail to %s:\n%s", m.To[0], body)
		}
	}
	st, err := tracking.FindCampaignStats(ctx, e.db, id, tracking.StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(st)
	if strings.Contains(string(raw), "card=") {
		t.Errorf("the stats show a per-recipient URL: %s", raw)
	}
}
