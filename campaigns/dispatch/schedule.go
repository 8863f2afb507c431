package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/models"
	"github.com/robfig/cron/v3"
)

// MaxScheduleAhead is how far ahead a one-off send_at may lie.
const MaxScheduleAhead = 366 * 24 * time.Hour

// ScheduleInput schedules a campaign: either SendAt (one run at that instant) or Cron in
// Timezone (one run per occurrence, e.g. "0 9 * * 1" in "Europe/Oslo": Mondays at 09:00 there,
// whatever the daylight saving time).
type ScheduleInput struct {
	SendAt   *time.Time `json:"send_at"`
	Cron     *string    `json:"cron"`
	Timezone *string    `json:"timezone"`
}

// cronParser is robfig/cron's standard five-field parser (minute hour day-of-month month
// day-of-week, plus descriptors such as @daily).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parsedSchedule is a validated recurring schedule.
type parsedSchedule struct {
	sched cron.Schedule
	loc   *time.Location
}

// parseCron validates a cron expression and its time zone; the errors name the field.
func parseCron(expr, tz string, fe models.FieldErrors) *parsedSchedule {
	var out parsedSchedule
	sched, err := cronParser.Parse(expr)
	if t := strings.TrimSpace(expr); strings.HasPrefix(t, "TZ=") || strings.HasPrefix(t, "CRON_TZ=") {
		fe.Add("cron", "must not name a time zone: give it in timezone")
	} else if err != nil {
		fe.Add("cron", "must be a five-field cron expression such as \"0 9 * * 1\": "+err.Error())
	}
	switch {
	case tz == "":
		fe.Add("timezone", "is required with cron: an IANA time zone such as Europe/Oslo")
	case tz == "Local":
		fe.Add("timezone", "must name an IANA time zone such as Europe/Oslo, not Local")
	default:
		loc, err := time.LoadLocation(tz)
		if err != nil {
			fe.Add("timezone", "must be an IANA time zone such as Europe/Oslo")
		}
		out.loc = loc
	}
	if len(fe) > 0 {
		return nil
	}
	out.sched = sched
	return &out
}

// check validates in against now.
func (in ScheduleInput) check(now time.Time) error {
	fe := models.FieldErrors{}
	hasCron := in.Cron != nil || in.Timezone != nil
	switch {
	case in.SendAt != nil && hasCron:
		fe.Add("send_at", "give either send_at or cron and timezone, not both")
	case in.SendAt != nil:
		switch {
		case !in.SendAt.After(now):
			fe.Add("send_at", "must be in the future")
		case in.SendAt.Sub(now) > MaxScheduleAhead:
			fe.Add("send_at", "must be at most a year ahead")
		}
	case hasCron:
		expr, tz := "", ""
		if in.Cron != nil {
			expr = *in.Cron
		}
		if in.Timezone != nil {
			tz = *in.Timezone
		}
		if in.Cron == nil {
			fe.Add("cron", "is required with timezone")
		} else {
			parseCron(expr, tz, fe)
		}
	default:
		fe.Add("send_at", "give send_at (RFC 3339) or cron and timezone")
	}
	return fe.Err("invalid schedule")
}

// lockCampaign reads campaign id's status and audience inside tx, locking its row.
func lockCampaign(ctx context.Context, tx pgx.Tx, id int64) (status string, segmentID *int64, err error) {
	err = tx.QueryRow(ctx, `SELECT status, segment_id FROM campaigns WHERE id = $1 AND flow_id IS NULL FOR UPDATE`, id).Scan(&status, &segmentID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, models.Errorf(models.ENOTFOUND, "no campaign %d", id)
	}
	if err != nil {
		return "", nil, fmt.Errorf("lock campaign %d: %w", id, err)
	}
	return status, segmentID, nil
}

// inTx runs fn in a transaction on campaign id and returns the campaign as it is afterwards.
func inTx(ctx context.Context, db *models.DB, id int64, fn func(tx pgx.Tx, status string, segmentID *int64) error) (*campaigns.Campaign, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("campaign %d: %w", id, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	status, segmentID, err := lockCampaign(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := fn(tx, status, segmentID); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("campaign %d: %w", id, err)
	}
	return campaigns.Get(ctx, db, id)
}

// Schedule sets campaign id's schedule and makes it scheduled: the dispatcher creates its runs
// when they are due. Only a draft, or a paused campaign that has not started sending any run,
// may be scheduled (ECONFLICT otherwise); a campaign needs a segment (EINVALID on segment_id).
// Rescheduling a paused campaign drops its runs that never started.
func Schedule(ctx context.Context, db *models.DB, id int64, in ScheduleInput) (*campaigns.Campaign, error) {
	now := db.Now()
	if err := in.check(now); err != nil {
		return nil, err
	}
	return setSchedule(ctx, db, id, in, now)
}

// SendNow makes campaign id a one-off sent now: Schedule with send_at the current time (which
// Schedule itself refuses as not in the future), under the same state rules, so the dispatcher
// starts its run at its next tick, within about DefaultInterval. A recurring campaign's cron is
// dropped: it becomes a one-off.
func SendNow(ctx context.Context, db *models.DB, id int64) (*campaigns.Campaign, error) {
	now := db.Now()
	return setSchedule(ctx, db, id, ScheduleInput{SendAt: &now}, now)
}

// setSchedule stores a checked schedule under Schedule's state rules.
func setSchedule(ctx context.Context, db *models.DB, id int64, in ScheduleInput, now time.Time) (*campaigns.Campaign, error) {
	return inTx(ctx, db, id, func(tx pgx.Tx, status string, segmentID *int64) error {
		switch status {
		case campaigns.StatusDraft:
		case campaigns.StatusPaused:
			var started bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM campaign_runs WHERE campaign_id = $1 AND started_at IS NOT NULL)`,
				id).Scan(&started); err != nil {
				return fmt.Errorf("schedule campaign %d: %w", id, err)
			}
			if started {
				return models.Errorf(models.ECONFLICT,
					"campaign %d has already started sending: resume or cancel it instead", id)
			}
		default:
			return models.Errorf(models.ECONFLICT,
				"campaign %d is %s: only a draft or a paused campaign that has not started may be scheduled", id, status)
		}
		if segmentID == nil {
			return &models.Error{Code: models.EINVALID, Message: "invalid schedule",
				Fields: map[string]string{"segment_id": "the campaign needs a segment before it can be scheduled"}}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM campaign_runs WHERE campaign_id = $1 AND started_at IS NULL`, id); err != nil {
			return fmt.Errorf("schedule campaign %d: %w", id, err)
		}
		// updated_at is also where recurring occurrences start counting: an occurrence before
		// the campaign was scheduled is not sent.
		if _, err := tx.Exec(ctx, `
			UPDATE campaigns SET status = 'scheduled', send_at = $2, cron = $3, timezone = $4, updated_at = $5
			WHERE id = $1`, id, in.SendAt, in.Cron, in.Timezone, now); err != nil {
			return fmt.Errorf("schedule campaign %d: %w", id, err)
		}
		return nil
	})
}

// Pause stops a scheduled or sending campaign: no new run starts, and the run being sent stops
// within a couple of seconds (mails already claimed but not sent go back to the queue).
// ECONFLICT in any other state.
func Pause(ctx context.Context, db *models.DB, id int64) (*campaigns.Campaign, error) {
	return inTx(ctx, db, id, func(tx pgx.Tx, status string, _ *int64) error {
		if status != campaigns.StatusScheduled && status != campaigns.StatusSending {
			return models.Errorf(models.ECONFLICT, "campaign %d is %s: only a scheduled or sending campaign may be paused", id, status)
		}
		if _, err := tx.Exec(ctx, `UPDATE campaign_runs SET status = 'paused'
			WHERE campaign_id = $1 AND status IN ('pending', 'sending')`, id); err != nil {
			return fmt.Errorf("pause campaign %d: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = 'paused', updated_at = $2 WHERE id = $1`, id, db.Now()); err != nil {
			return fmt.Errorf("pause campaign %d: %w", id, err)
		}
		return nil
	})
}

// Resume continues a paused campaign: its paused run carries on where it stopped (status
// sending), or, when none had started, the campaign is scheduled again. A recurring campaign's
// occurrences that fell within the pause are not sent. ECONFLICT unless the campaign is paused.
func Resume(ctx context.Context, db *models.DB, id int64) (*campaigns.Campaign, error) {
	return inTx(ctx, db, id, func(tx pgx.Tx, status string, _ *int64) error {
		if status != campaigns.StatusPaused {
			return models.Errorf(models.ECONFLICT, "campaign %d is %s: only a paused campaign may be resumed", id, status)
		}
		var started int64
		if err := tx.QueryRow(ctx, `
			WITH resumed AS (
				UPDATE campaign_runs
				SET status = CASE WHEN started_at IS NULL THEN 'pending' ELSE 'sending' END
				WHERE campaign_id = $1 AND status = 'paused'
				RETURNING started_at
			)
			SELECT count(*) FILTER (WHERE started_at IS NOT NULL) FROM resumed`, id).Scan(&started); err != nil {
			return fmt.Errorf("resume campaign %d: %w", id, err)
		}
		next := campaigns.StatusScheduled
		if started > 0 {
			next = campaigns.StatusSending
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = $2, updated_at = $3 WHERE id = $1`, id, next, db.Now()); err != nil {
			return fmt.Errorf("resume campaign %d: %w", id, err)
		}
		return nil
	})
}

// Cancel ends a campaign in any state but sent (ECONFLICT then, and when already cancelled):
// no run starts any more and the run being sent stops within a couple of seconds. Its
// recipients not yet mailed stay queued and are never sent; stats count them as cancelled.
func Cancel(ctx context.Context, db *models.DB, id int64) (*campaigns.Campaign, error) {
	return inTx(ctx, db, id, func(tx pgx.Tx, status string, _ *int64) error {
		if status == campaigns.StatusSent || status == campaigns.StatusCancelled {
			return models.Errorf(models.ECONFLICT, "campaign %d is %s and cannot be cancelled", id, status)
		}
		if _, err := tx.Exec(ctx, `UPDATE campaign_runs SET status = 'cancelled', finished_at = now()
			WHERE campaign_id = $1 AND status IN ('pending', 'sending', 'paused')`, id); err != nil {
			return fmt.Errorf("cancel campaign %d: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = 'cancelled', updated_at = $2 WHERE id = $1`, id, db.Now()); err != nil {
			return fmt.Errorf("cancel campaign %d: %w", id, err)
		}
		return nil
	})
}
