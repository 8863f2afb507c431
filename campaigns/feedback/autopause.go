package feedback

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/campaigns/dispatch"
	"github.com/regulars/regulars/flows"
	"github.com/regulars/regulars/models"
)

// The auto-pause rule: once MinMails of a campaign's run (or of a flow since its activation)
// have been sent, a bounce rate above 5 % or a complaint rate above 0.1 % pauses it. These are
// the rates above which mailbox providers and the mail providers themselves start refusing a
// sender's mail, so going on would harm every later mail of the shop.
const (
	MinMails = 500
	// The limits in integers, so that nothing is rounded at them: bounced*100 > 5*sent,
	// complained*1000 > 1*sent.
	bounceLimitPercent    = 5
	complaintLimitPerMill = 1
)

// AutoPause says when and why the rule paused a campaign or flow.
type AutoPause struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// mayPass reports whether bounced or complained mails could pass a limit, knowing that at
// least sentSeen mails were sent: sent only grows, so a rate is at most count / max(sentSeen,
// MinMails), and while that bound is within the limits the recipients need not be counted.
func mayPass(bounced, complained, sentSeen int64) bool {
	base := max(sentSeen, MinMails)
	return bounced*100 > bounceLimitPercent*base || complained*1000 > complaintLimitPerMill*base
}

// verdict is why the rates pass a limit after sent mails, or "" when they do not.
func verdict(bounced, complained, sent int64) string {
	switch {
	case sent < MinMails:
		return ""
	case bounced*100 > bounceLimitPercent*sent:
		return fmt.Sprintf("bounce rate %.1f %% (%d of %d mails) is above %d %%",
			100*float64(bounced)/float64(sent), bounced, sent, bounceLimitPercent)
	case complained*1000 > complaintLimitPerMill*sent:
		return fmt.Sprintf("complaint rate %.2f %% (%d of %d mails) is above 0.1 %%",
			100*float64(complained)/float64(sent), complained, sent)
	}
	return ""
}

// CheckRun applies the rule to the campaign of run runID, or to its flow when the campaign is
// a flow's mail step, and returns the pause it made (nil: none). The run's counters
// (tracking's markMail) decide whether the sent mails must be counted at all; they are
// counted only when a limit may have been passed, in one statement.
func CheckRun(ctx context.Context, db *models.DB, runID int64) (*AutoPause, error) {
	var campaignID, bounced, complained, sentSeen int64
	var flowID *int64
	var paused bool
	err := db.Pool.QueryRow(ctx, `
		SELECT r.campaign_id, r.bounced, r.complained, r.sent_seen, r.auto_paused_at IS NOT NULL, c.flow_id
		FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id WHERE r.id = $1`, runID).
		Scan(&campaignID, &bounced, &complained, &sentSeen, &paused, &flowID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auto-pause check of run %d: %w", runID, err)
	}
	if flowID != nil {
		return checkFlow(ctx, db, *flowID)
	}
	// A run is paused by the rule once: after a marketer resumes it, they have decided.
	if paused || !mayPass(bounced, complained, sentSeen) {
		return nil, nil
	}
	var sent int64
	if err := db.Pool.QueryRow(ctx, `
		UPDATE campaign_runs SET sent_seen = (SELECT count(*) FROM campaign_recipients WHERE run_id = $1 AND status = 'sent')
		WHERE id = $1 RETURNING sent_seen, bounced, complained`, runID).Scan(&sent, &bounced, &complained); err != nil {
		return nil, fmt.Errorf("auto-pause check of run %d: %w", runID, err)
	}
	reason := verdict(bounced, complained, sent)
	if reason == "" {
		return nil, nil
	}
	if _, err := dispatch.Pause(ctx, db, campaignID); models.ErrorCode(err) == models.ECONFLICT {
		return nil, nil // not scheduled or sending any more (paused, sent, cancelled): nothing to stop
	} else if err != nil {
		return nil, err
	}
	p := &AutoPause{At: db.Now(), Reason: reason}
	if _, err := db.Pool.Exec(ctx, `UPDATE campaign_runs SET auto_paused_at = $2, auto_pause_reason = $3
		WHERE id = $1 AND auto_paused_at IS NULL`, runID, p.At, p.Reason); err != nil {
		return nil, fmt.Errorf("auto-pause of campaign %d: %w", campaignID, err)
	}
	return p, nil
}

// flowRuns are the runs of flow $1's mail steps made since its activation $2: the mails the
// rule looks at (a flow that was paused and activated again starts afresh).
const flowRuns = `SELECT r.id, r.bounced, r.complained, r.sent_seen FROM campaign_runs r
	JOIN campaigns c ON c.id = r.campaign_id WHERE c.flow_id = $1 AND r.created_at >= $2`

// checkFlow is CheckRun for a flow: its runs' counters summed.
func checkFlow(ctx context.Context, db *models.DB, flowID int64) (*AutoPause, error) {
	var status string
	var since time.Time
	err := db.Pool.QueryRow(ctx, `SELECT status, coalesce(activated_at, '-infinity') FROM flows WHERE id = $1`, flowID).
		Scan(&status, &since)
	if err != nil {
		return nil, fmt.Errorf("auto-pause check of flow %d: %w", flowID, err)
	}
	if status != flows.StatusActive {
		return nil, nil
	}
	var bounced, complained, sentSeen int64
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(sum(bounced), 0), coalesce(sum(complained), 0), coalesce(sum(sent_seen), 0)
		FROM (`+flowRuns+`) f`, flowID, since).Scan(&bounced, &complained, &sentSeen); err != nil {
		return nil, fmt.Errorf("auto-pause check of flow %d: %w", flowID, err)
	}
	if !mayPass(bounced, complained, sentSeen) {
		return nil, nil
	}
	var sent int64
	if err := db.Pool.QueryRow(ctx, `
		WITH runs AS (`+flowRuns+`),
		counted AS (
		    UPDATE campaign_runs r SET sent_seen = n.sent
		    FROM (SELECT runs.id, (SELECT count(*) FROM campaign_recipients WHERE run_id = runs.id AND status = 'sent') AS sent
		          FROM runs) n
		    WHERE r.id = n.id RETURNING n.sent)
		SELECT coalesce(sum(sent), 0) FROM counted`, flowID, since).Scan(&sent); err != nil {
		return nil, fmt.Errorf("auto-pause check of flow %d: %w", flowID, err)
	}
	reason := verdict(bounced, complained, sent)
	if reason == "" {
		return nil, nil
	}
	if _, err := flows.Pause(ctx, db, flowID); err != nil {
		return nil, err
	}
	p := &AutoPause{At: db.Now(), Reason: reason}
	if _, err := db.Pool.Exec(ctx, `UPDATE flows SET auto_paused_at = $2, auto_pause_reason = $3 WHERE id = $1`,
		flowID, p.At, p.Reason); err != nil {
		return nil, fmt.Errorf("auto-pause of flow %d: %w", flowID, err)
	}
	return p, nil
}

// CampaignAutoPause is why the rule paused campaign id, while it is paused (nil otherwise).
func CampaignAutoPause(ctx context.Context, db *models.DB, id int64) (*AutoPause, error) {
	return findAutoPause(ctx, db, `
		SELECT r.auto_paused_at, r.auto_pause_reason FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id
		WHERE r.campaign_id = $1 AND c.status = 'paused' AND r.auto_paused_at IS NOT NULL
		ORDER BY r.auto_paused_at DESC LIMIT 1`, id)
}

// FlowAutoPause is why the rule paused flow id, while it is paused since then (nil otherwise).
func FlowAutoPause(ctx context.Context, db *models.DB, id int64) (*AutoPause, error) {
	return findAutoPause(ctx, db, `
		SELECT auto_paused_at, auto_pause_reason FROM flows
		WHERE id = $1 AND status = 'paused' AND auto_paused_at >= coalesce(activated_at, '-infinity')`, id)
}

func findAutoPause(ctx context.Context, db *models.DB, query string, id int64) (*AutoPause, error) {
	var p AutoPause
	err := db.Pool.QueryRow(ctx, query, id).Scan(&p.At, &p.Reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auto-pause of %d: %w", id, err)
	}
	return &p, nil
}
