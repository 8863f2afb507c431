package flows

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/models"
)

// validationFrom stands in for a missing REGULARS_MAIL_FROM when templates are checked at save
// time (as for campaigns).
const validationFrom = "flows@example.invalid"

// lockNamespace is the first key of the per-flow advisory locks (the second is the flow id):
// the engine's tick on a flow and a change of its state exclude each other.
const lockNamespace = 0x464c4f57 // "FLOW"

const flowColumns = `id, name, trigger, steps, exit_on_purchase, reentry_days, holdout_percent::float8,
	segment_id, status, activated_at, created_at, updated_at`

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func scanFlow(row pgx.Row) (*Flow, error) {
	var f Flow
	var trigger, steps []byte
	err := row.Scan(&f.ID, &f.Name, &trigger, &steps, &f.ExitOnPurchase, &f.ReentryDays, &f.HoldoutPercent,
		&f.SegmentID, &f.Status, &f.ActivatedAt, &f.CreatedAt, &f.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(trigger, &f.Trigger); err != nil {
		return nil, fmt.Errorf("flow %d: stored trigger: %w", f.ID, err)
	}
	if err := json.Unmarshal(steps, &f.Steps); err != nil {
		return nil, fmt.Errorf("flow %d: stored steps: %w", f.ID, err)
	}
	return &f, nil
}

// Create stores a new draft flow; name, trigger and steps are required.
func Create(ctx context.Context, db *models.DB, defaultFrom string, in *Input) (*Flow, error) {
	f := &Flow{Status: StatusDraft, ExitOnPurchase: true}
	fe := models.FieldErrors{}
	if in.Name == nil {
		fe.Add("name", "is required")
	}
	if in.Trigger == nil {
		fe.Add("trigger", "is required")
	}
	if in.Steps == nil {
		fe.Add("steps", "is required")
	}
	if err := fe.Err("invalid flow"); err != nil {
		return nil, err
	}
	in.apply(f)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("create flow: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	prog, err := check(ctx, tx, f, defaultFrom)
	if err != nil {
		return nil, err
	}
	trigger, steps, err := encode(f)
	if err != nil {
		return nil, err
	}
	out, err := scanFlow(tx.QueryRow(ctx, `
		INSERT INTO flows (name, trigger, steps, exit_on_purchase, reentry_days, holdout_percent, segment_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+flowColumns,
		f.Name, trigger, steps, f.ExitOnPurchase, f.ReentryDays, f.HoldoutPercent, f.SegmentID))
	if err != nil {
		return nil, fmt.Errorf("create flow: %w", err)
	}
	if err := syncMailSteps(ctx, tx, out, prog, nil); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("create flow: %w", err)
	}
	return out, nil
}

func (in *Input) apply(f *Flow) {
	if in.Name != nil {
		f.Name = *in.Name
	}
	if in.Trigger != nil {
		f.Trigger = *in.Trigger
	}
	if in.Steps != nil {
		f.Steps = in.Steps
	}
	if in.ExitOnPurchase != nil {
		f.ExitOnPurchase = *in.ExitOnPurchase
	}
	if in.ReentrySet {
		f.ReentryDays = in.ReentryDays
	}
	if in.HoldoutPercent != nil {
		f.HoldoutPercent = *in.HoldoutPercent
	}
	if in.SegmentSet {
		f.SegmentID = in.SegmentID
	}
}

func encode(f *Flow) (trigger, steps []byte, err error) {
	if trigger, err = json.Marshal(f.Trigger); err != nil {
		return nil, nil, fmt.Errorf("encode trigger: %w", err)
	}
	if steps, err = json.Marshal(f.Steps); err != nil {
		return nil, nil, fmt.Errorf("encode steps: %w", err)
	}
	return trigger, steps, nil
}

// check validates f as it would be stored: the name, the segment's existence and every mail
// step's templates (with the campaign rules: sandbox, member links); it returns the program.
func check(ctx context.Context, q querier, f *Flow, defaultFrom string) (Program, error) {
	fe := models.FieldErrors{}
	f.Name = strings.TrimSpace(f.Name)
	switch n := utf8.RuneCountInString(f.Name); {
	case n == 0:
		fe.Add("name", "is required")
	case n > MaxNameLen:
		fe.Add("name", fmt.Sprintf("must be at most %d characters", MaxNameLen))
	}
	if f.SegmentID != nil {
		var exists bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM segments WHERE id = $1)`, *f.SegmentID).Scan(&exists); err != nil {
			return nil, fmt.Errorf("find segment %d: %w", *f.SegmentID, err)
		}
		if !exists {
			fe.Add("segment_id", "no segment "+strconv.FormatInt(*f.SegmentID, 10))
		}
	}
	prog, err := Compile(f.Steps)
	if err != nil {
		return nil, models.Errorf(models.EINVALID, "invalid flow: %v", err)
	}
	if defaultFrom == "" {
		defaultFrom = validationFrom
	}
	checkReward := func(code, path string) error {
		var active bool
		if err := q.QueryRow(ctx, `SELECT coalesce((SELECT active FROM rewards WHERE code = $1), false)`, code).Scan(&active); err != nil {
			return fmt.Errorf("find reward %s: %w", code, err)
		}
		if !active {
			fe.Add(path, "no active reward "+code+" (GET /rewards)")
		}
		return nil
	}
	if f.Trigger.Event == EventRewardAffordable && f.Trigger.Reward != "" {
		if err := checkReward(f.Trigger.Reward, "trigger.reward"); err != nil {
			return nil, err
		}
	}
	for _, op := range prog {
		if op.Kind == OpVoucher {
			if err := checkReward(op.Reward, op.Path+".voucher"); err != nil {
				return nil, err
			}
		}
		if op.Kind != OpMail {
			continue
		}
		if usesFlowVoucher(op.Mail) && !voucherBefore(prog, op) {
			fe.Add(op.Path+".mail", "shows {{.Voucher}} but no voucher step comes before it")
		}
		err := campaigns.Validate(ctx, mailCampaign(f, op), defaultFrom)
		var me *models.Error
		if errors.As(err, &me) && len(me.Fields) > 0 {
			for field, why := range me.Fields {
				fe.Add(op.Path+".mail."+field, why)
			}
		} else if err != nil {
			return nil, err
		}
	}
	return prog, fe.Err("invalid flow")
}

// flowVoucherRE finds {{.Voucher}} used without a reward code (the flow's voucher): .Voucher
// followed by a field, the end of the action or a closing parenthesis.
var flowVoucherRE = regexp.MustCompile(`\.Voucher\s*(?:\.|\}\}|\)|-\}\})`)

func usesFlowVoucher(m *Mail) bool {
	return flowVoucherRE.MatchString(m.Subject) || flowVoucherRE.MatchString(m.HTML) || flowVoucherRE.MatchString(m.Text)
}

// voucherBefore tells whether a voucher step comes before mail step op in reading order.
func voucherBefore(prog Program, op Op) bool {
	for _, o := range prog {
		if o.Path == op.Path {
			return false
		}
		if o.Kind == OpVoucher {
			return true
		}
	}
	return false
}

// mailCampaign is the campaign row of mail step op of f.
func mailCampaign(f *Flow, op Op) *campaigns.Campaign {
	name := fmt.Sprintf("%s · mail %d", f.Name, op.MailNumber)
	if utf8.RuneCountInString(name) > campaigns.MaxNameLen {
		name = fmt.Sprintf("Flow %d · mail %d", f.ID, op.MailNumber)
	}
	return &campaigns.Campaign{Name: name, Subject: op.Mail.Subject, HTML: op.Mail.HTML, Text: op.Mail.Text}
}

// syncMailSteps makes the flow's mail step campaigns what prog says: one per mail step, keyed
// by its index. When the shape changed (old is nil or differs), the old rows are retired (their
// flow_step made negative, keeping their history for the flow's report) before the new ones
// are written.
func syncMailSteps(ctx context.Context, tx pgx.Tx, f *Flow, prog, old Program) error {
	if old != nil && !SameShape(old, prog) {
		if _, err := tx.Exec(ctx, `UPDATE campaigns SET flow_step = -id WHERE flow_id = $1 AND flow_step >= 0`, f.ID); err != nil {
			return fmt.Errorf("retire mail steps of flow %d: %w", f.ID, err)
		}
	}
	for i, op := range prog {
		if op.Kind != OpMail {
			continue
		}
		c := mailCampaign(f, op)
		if _, err := tx.Exec(ctx, `
			INSERT INTO campaigns (name, subject, html, text, flow_id, flow_step)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (flow_id, flow_step) WHERE flow_id IS NOT NULL DO UPDATE
			SET name = EXCLUDED.name, subject = EXCLUDED.subject, html = EXCLUDED.html, text = EXCLUDED.text,
			    updated_at = now()
			WHERE (campaigns.name, campaigns.subject, campaigns.html, campaigns.text)
			      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.subject, EXCLUDED.html, EXCLUDED.text)`,
			c.Name, c.Subject, c.HTML, c.Text, f.ID, i); err != nil {
			return fmt.Errorf("store mail step %d of flow %d: %w", i, f.ID, err)
		}
	}
	return nil
}

// FindFlowByID returns flow id, ENOTFOUND when there is none.
func FindFlowByID(ctx context.Context, db *models.DB, id int64) (*Flow, error) {
	return findFlow(ctx, db.Pool, id, "")
}

func findFlow(ctx context.Context, q querier, id int64, lock string) (*Flow, error) {
	f, err := scanFlow(q.QueryRow(ctx, `SELECT `+flowColumns+` FROM flows WHERE id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, models.Errorf(models.ENOTFOUND, "no flow %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("find flow %d: %w", id, err)
	}
	return f, nil
}

// FindFlows returns every flow, newest first.
func FindFlows(ctx context.Context, db *models.DB) ([]Flow, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+flowColumns+` FROM flows ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("find flows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Flow, error) {
		f, err := scanFlow(row)
		if err != nil {
			return Flow{}, err
		}
		return *f, nil
	})
	if err != nil {
		return nil, fmt.Errorf("find flows: %w", err)
	}
	return out, nil
}

// Update changes flow id; fields not given stay. The trigger may change only while no member
// is in the flow (it decides who they are); the steps may change in any state as long as the
// shape stays (SameShape: mail texts, waits and conditions), and freely while no member is in
// the flow. ECONFLICT otherwise.
func Update(ctx context.Context, db *models.DB, defaultFrom string, id int64, in *Input) (*Flow, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("update flow %d: %w", id, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::int, $2::int)`, lockNamespace, id); err != nil {
		return nil, fmt.Errorf("update flow %d: %w", id, err)
	}
	f, err := findFlow(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	oldProg, err := Compile(f.Steps)
	if err != nil {
		return nil, fmt.Errorf("flow %d: stored steps: %w", id, err)
	}
	oldTrigger, _ := json.Marshal(f.Trigger)
	in.apply(f)
	prog, err := check(ctx, tx, f, defaultFrom)
	if err != nil {
		return nil, err
	}
	var inFlow bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM flow_entries WHERE flow_id = $1 AND status = 'active')`, id).Scan(&inFlow); err != nil {
		return nil, fmt.Errorf("update flow %d: %w", id, err)
	}
	if inFlow && !SameShape(oldProg, prog) {
		return nil, models.Errorf(models.ECONFLICT, "flow %d has members on its way: its steps may be edited (texts, waits, conditions) but not added, removed or moved until none is left; make a new flow instead", id)
	}
	trigger, steps, err := encode(f)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(oldTrigger, trigger) && f.Status == StatusActive {
		return nil, models.Errorf(models.ECONFLICT, "flow %d is active: pause it before changing its trigger", id)
	}
	out, err := scanFlow(tx.QueryRow(ctx, `
		UPDATE flows SET name = $2, trigger = $3, steps = $4, exit_on_purchase = $5, reentry_days = $6,
			holdout_percent = $7, segment_id = $8, updated_at = now()
		WHERE id = $1 RETURNING `+flowColumns,
		id, f.Name, trigger, steps, f.ExitOnPurchase, f.ReentryDays, f.HoldoutPercent, f.SegmentID))
	if err != nil {
		return nil, fmt.Errorf("update flow %d: %w", id, err)
	}
	if err := syncMailSteps(ctx, tx, out, prog, oldProg); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("update flow %d: %w", id, err)
	}
	return out, nil
}

// Activate starts flow id (or resumes it: members go on where they were). Event triggers see
// events from now on; state triggers are checked on the engine's next tick.
func Activate(ctx context.Context, db *models.DB, id int64) (*Flow, error) {
	return setStatus(ctx, db, id, StatusActive, `
		UPDATE flows SET status = 'active', activated_at = now(), events_checked_until = now(),
			states_checked_at = NULL, state_cursor = NULL, updated_at = now()
		WHERE id = $1 AND status <> 'active'`, `
		UPDATE campaign_runs r SET status = 'sending'
		FROM campaigns c WHERE c.id = r.campaign_id AND c.flow_id = $1 AND r.status = 'paused'`)
}

// Pause stops flow id: nobody enters, members stay at their step, and mails already queued
// wait (their runs are paused) until it is activated again.
func Pause(ctx context.Context, db *models.DB, id int64) (*Flow, error) {
	return setStatus(ctx, db, id, StatusPaused, `
		UPDATE flows SET status = 'paused', updated_at = now() WHERE id = $1 AND status = 'active'`, `
		UPDATE campaign_runs r SET status = 'paused'
		FROM campaigns c WHERE c.id = r.campaign_id AND c.flow_id = $1 AND r.status = 'sending'`)
}

// setStatus runs the two statements under the flow's lock, waiting for an engine tick on it to
// end, so a tick never works on a flow that is being paused.
func setStatus(ctx context.Context, db *models.DB, id int64, want, flowSQL, runsSQL string) (*Flow, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("flow %d: %w", id, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::int, $2::int)`, lockNamespace, id); err != nil {
		return nil, fmt.Errorf("flow %d: %w", id, err)
	}
	f, err := findFlow(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	if f.Status == want {
		return f, nil // already so: repeating the call changes nothing
	}
	if want == StatusPaused && f.Status == StatusDraft {
		return nil, models.Errorf(models.ECONFLICT, "flow %d is a draft: there is nothing to pause", id)
	}
	if _, err := tx.Exec(ctx, flowSQL, id); err != nil {
		return nil, fmt.Errorf("flow %d: %w", id, err)
	}
	if _, err := tx.Exec(ctx, runsSQL, id); err != nil {
		return nil, fmt.Errorf("flow %d: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("flow %d: %w", id, err)
	}
	return FindFlowByID(ctx, db, id)
}
