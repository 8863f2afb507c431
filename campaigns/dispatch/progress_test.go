package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns"
)

func TestFindProgressReportsTheLatestRunOfEachCampaign(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	ids := e.addMembers(t, 5, "p", "example.com", "active", "confirmed")
	withRuns := e.campaign(t, 0)
	without := e.campaign(t, 0)
	run := func(at time.Time, status string) int64 {
		t.Helper()
		var id int64
		if err := e.db.Pool.QueryRow(ctx, `INSERT INTO campaign_runs (campaign_id, scheduled_for, status, started_at)
			VALUES ($1, $2, $3, $2) RETURNING id`, withRuns, at, status).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	recipient := func(runID, member int64, heldOut bool, status string) {
		t.Helper()
		if _, err := e.db.Pool.Exec(ctx, `INSERT INTO campaign_recipients (run_id, member_id, email, held_out, status)
			VALUES ($1, $2, 'x@example.com', $3, $4)`, runID, member, heldOut, status); err != nil {
			t.Fatal(err)
		}
	}
	old := run(e.base.Add(-48*time.Hour), "sent")
	recipient(old, ids[0], false, "sent")
	latest := run(e.base.Add(-time.Hour), "sending")
	recipient(latest, ids[0], false, "sent")
	recipient(latest, ids[1], false, "sent")
	recipient(latest, ids[2], false, "failed")
	recipient(latest, ids[3], false, "queued")
	recipient(latest, ids[4], true, "held_out")

	got, err := FindProgress(ctx, e.db)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[without]; ok {
		t.Errorf("a campaign without runs has progress %+v", got[without])
	}
	want := Progress{CampaignID: withRuns, Runs: 2, RunID: latest, Status: "sending",
		Recipients: 4, HeldOut: 1, Sent: 2, Failed: 1, Queued: 1}
	p := got[withRuns]
	p.ScheduledFor = time.Time{}
	if p != want {
		t.Errorf("progress %+v, want %+v", p, want)
	}
	if pct := got[withRuns].Percent(); pct != 75 {
		t.Errorf("percent %v, want 75", pct)
	}
}

func TestNextSend(t *testing.T) {
	now := time.Date(2026, 11, 18, 12, 0, 0, 0, time.UTC) // a Wednesday
	at := now.Add(time.Hour)
	cron, oslo := "0 9 * * 1", "Europe/Oslo"
	cases := []struct {
		name string
		c    campaigns.Campaign
		want time.Time
		ok   bool
	}{
		{"a scheduled one-off sends at its send_at", campaigns.Campaign{Status: "scheduled", SendAt: &at}, at, true},
		{"a sending one-off has no next send", campaigns.Campaign{Status: "sending", SendAt: &at}, time.Time{}, false},
		{"a draft has none", campaigns.Campaign{Status: "draft"}, time.Time{}, false},
		{"a paused recurring campaign has none", campaigns.Campaign{Status: "paused", Cron: &cron, Timezone: &oslo}, time.Time{}, false},
		{"a recurring campaign sends at the next occurrence in its zone", campaigns.Campaign{Status: "scheduled", Cron: &cron, Timezone: &oslo},
			time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := NextSend(&tc.c, now)
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Errorf("NextSend = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
