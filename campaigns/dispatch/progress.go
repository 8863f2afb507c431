package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/models"
)

// Progress is how far a campaign's latest run has gone, for lists of campaigns.
type Progress struct {
	CampaignID int64
	// Runs is how many runs the campaign has had (more than one when recurring).
	Runs int64
	// RunID, ScheduledFor and Status are the latest run's (by scheduled_for).
	RunID        int64
	ScheduledFor time.Time
	Status       string
	// Recipients are the members to mail (held-out members excluded), HeldOut those held out;
	// Sent and Failed are final, Queued are still to go (queued or being sent).
	Recipients int64
	HeldOut    int64
	Sent       int64
	Failed     int64
	Queued     int64
}

// Percent is the share of recipients that are done (sent or failed), 0 to 100.
func (p Progress) Percent() float64 {
	if p.Recipients == 0 {
		return 0
	}
	return 100 * float64(p.Sent+p.Failed) / float64(p.Recipients)
}

// FindProgress returns the progress of the latest run of every campaign that has a run, by
// campaign id.
func FindProgress(ctx context.Context, db *models.DB) (map[int64]Progress, error) {
	// latest: one row per campaign (DISTINCT ON walks the runs sorted by campaign); the counts
	// are then taken for those runs only, each a range scan of the recipients' primary key
	// (run_id, member_id).
	rows, err := db.Pool.Query(ctx, `
		WITH latest AS (
		    SELECT DISTINCT ON (campaign_id) campaign_id, id, scheduled_for, status,
		           count(*) OVER (PARTITION BY campaign_id) AS runs
		    FROM campaign_runs
		    ORDER BY campaign_id, scheduled_for DESC, id DESC)
		SELECT l.campaign_id, l.runs, l.id, l.scheduled_for, l.status,
		       count(r.member_id) FILTER (WHERE NOT r.held_out),
		       count(r.member_id) FILTER (WHERE r.held_out),
		       count(r.member_id) FILTER (WHERE r.status = 'sent'),
		       count(r.member_id) FILTER (WHERE r.status = 'failed'),
		       count(r.member_id) FILTER (WHERE r.status IN ('queued', 'sending'))
		FROM latest l LEFT JOIN campaign_recipients r ON r.run_id = l.id
		GROUP BY l.campaign_id, l.runs, l.id, l.scheduled_for, l.status`)
	if err != nil {
		return nil, fmt.Errorf("campaign progress: %w", err)
	}
	defer rows.Close()
	out := map[int64]Progress{}
	for rows.Next() {
		var p Progress
		if err := rows.Scan(&p.CampaignID, &p.Runs, &p.RunID, &p.ScheduledFor, &p.Status,
			&p.Recipients, &p.HeldOut, &p.Sent, &p.Failed, &p.Queued); err != nil {
			return nil, fmt.Errorf("campaign progress: %w", err)
		}
		out[p.CampaignID] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("campaign progress: %w", err)
	}
	return out, nil
}

// NextSend is when campaign c sends next after now: its send_at while a one-off is scheduled,
// the next cron occurrence while a recurring one is scheduled or sending; ok is false otherwise
// (draft, paused, cancelled, sent, or a schedule that no longer parses).
func NextSend(c *campaigns.Campaign, now time.Time) (at time.Time, ok bool) {
	if c.Status != campaigns.StatusScheduled && c.Status != campaigns.StatusSending {
		return time.Time{}, false
	}
	if c.Cron == nil {
		if c.SendAt == nil || c.Status != campaigns.StatusScheduled {
			return time.Time{}, false
		}
		return *c.SendAt, true
	}
	tz := ""
	if c.Timezone != nil {
		tz = *c.Timezone
	}
	p := parseCron(*c.Cron, tz, models.FieldErrors{})
	if p == nil {
		return time.Time{}, false
	}
	return p.sched.Next(now.In(p.loc)), true
}
