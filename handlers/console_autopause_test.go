package handlers

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestReportShowsAutoPause: the report of a campaign the auto-pause rule stopped says why.
func TestReportShowsAutoPause(t *testing.T) {
	cc := newConsole(t)
	ctx := context.Background()
	var id int64
	if err := cc.DB.Pool.QueryRow(ctx, `INSERT INTO campaigns (name, subject, html, status)
		VALUES ('Dec', 'Hi', '<p>Hi</p>', 'paused') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.DB.Pool.Exec(ctx, `INSERT INTO campaign_runs (campaign_id, scheduled_for, status, started_at,
		auto_paused_at, auto_pause_reason) VALUES ($1, now(), 'paused', now(), now(), 'bounce rate 5.2 % (31 of 600 mails) is above 5 %')`, id); err != nil {
		t.Fatal(err)
	}
	client, _ := cc.loginAs(t, "marketer")
	res := cc.get(t, client, "/console/campaigns/"+strconv.FormatInt(id, 10)+"/report")
	if res.Status != 200 || !strings.Contains(res.Body, "Paused automatically on") ||
		!strings.Contains(res.Body, "bounce rate 5.2 % (31 of 600 mails) is above 5 %") {
		t.Fatalf("%d: the report does not say why it paused\n%.3000s", res.Status, res.Body)
	}
}
