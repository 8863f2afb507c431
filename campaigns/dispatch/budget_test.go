package dispatch

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRendersOverBudgetFailTheirRecipientOnly sends a campaign that passes the save-time check
// with its sample member but, for one member, runs without end and, for another, puts the
// member's preferences link in an <img>. Those two recipients fail with a clear error and get no
// mail; the run goes on and everyone else gets theirs, with their own link where the template
// has it as a whole link.
func TestRendersOverBudgetFailTheirRecipientOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addMembers(t, 4, "ok", "example.com", "active", "confirmed")
	bomb := e.addMembers(t, 1, "bomb", "example.com", "active", "confirmed")[0]
	leak := e.addMembers(t, 1, "leak", "example.com", "active", "confirmed")[0]
	html := `{{if eq .Member.Name "Kari bomb1"}}{{range 1000000}}{{range 1000000}}{{end}}{{end}}{{end}}` +
		`{{if eq .Member.Name "Kari leak1"}}<img src="https://elsewhere.example/?p={{.Links.Preferences}}">{{end}}` +
		`<p><a href="{{.Links.Preferences}}">Preferences</a></p>`
	id := e.htmlCampaign(t, "Traps", html)
	start(t, []*Dispatcher{e.dispatcher()}, []*Sender{e.sender(t, 2, 0)})
	waitFor(t, "the campaign to be sent", time.Minute, func() bool { return e.campaignStatus(t, id) == "sent" })

	want := map[string]bool{}
	for _, a := range addresses("ok", "example.com", 4) {
		want[a] = true
	}
	exactlyOnce(t, e.received(), want)
	for member, why := range map[int64]string{bomb: "uses more than 1 s of computing", leak: "may only be used as a whole link"} {
		var status, msg string
		if err := e.db.Pool.QueryRow(ctx, `SELECT cr.status, coalesce(cr.error, '') FROM campaign_recipients cr
			JOIN campaign_runs r ON r.id = cr.run_id WHERE r.campaign_id = $1 AND cr.member_id = $2`, id, member).
			Scan(&status, &msg); err != nil {
			t.Fatal(err)
		}
		if status != "failed" || !strings.Contains(msg, why) {
			t.Errorf("member %d: %s (%q), want failed with %q", member, status, msg, why)
		}
	}
	for _, m := range e.smtp.Messages() {
		body := strings.ReplaceAll(string(m.Data), "=\r\n", "")
		body = strings.ReplaceAll(body, "=3D", "=")
		if strings.Contains(body, "elsewhere.example") || strings.Contains(body, "member-link.invalid") {
			t.Errorf("the mail to %s has a placeholder or the other site:\n%s", m.To[0], body)
		}
		if n := strings.Count(body, `<a href="https://club.example/preferences?token=`); n != 2 {
			t.Errorf("the mail to %s has %d preferences links, want 2 (the template's and the footer's):\n%s", m.To[0], n, body)
		}
	}
}
