// Package dispatch sends campaigns: Schedule, Pause, Resume and Cancel change a campaign's
// state (schedule.go); the Dispatcher turns due schedules into runs and snapshots each run's
// recipients (dispatcher.go); Senders mail the recipients (sender.go), claiming them from a
// Queue (queue.go: PostgresQueue holds the sender's SQL). Every `regulars serve` process runs
// one Dispatcher and one Sender on the same database; they coordinate through PostgreSQL only.
//
// Runs. A one-off campaign has one run, for its send_at. A recurring campaign has one run per
// cron occurrence, computed in the campaign's time zone (so "0 9 * * *" in Europe/Oslo is 09:00
// there in winter and in summer). A run is created when due, with INSERT ... ON CONFLICT
// (campaign_id, scheduled_for) DO NOTHING, so any number of dispatchers create it once. A
// recurring occurrence found more than MaxLate (1 hour) after its time (every server was down)
// is skipped, not sent late, and so is one that fell before the campaign was scheduled or
// resumed (occurrences count from the campaign's updated_at, which Schedule, Pause, Resume and
// Cancel set). A one-off campaign is sent however late it is found due (its send_at passed while
// every server was down, or while it was paused).
//
// Recipients. A pending run is claimed with FOR UPDATE SKIP LOCKED and its audience — the
// segment's rules as of now AND segments.Mailable (active, confirmed consent, an address) AND
// not suppressed by bounces — is copied into campaign_recipients by one INSERT ... SELECT,
// never through Go, each row with what its mail needs of the member (models.RecipientSnapshot:
// name, card, home store, language, and tier and points when the campaign shows them) and a
// number (seq). A deterministic share
// (holdout_percent) of them, chosen by a hash of (run, member), is held out: it gets a row with
// status held_out and no mail.
//
// Sending and the crash rule. A Sender's workers claim recipients in chunks (Claim, 50), in seq
// order (PostgresQueue.Claim), each row given a short lease (30 s, renewed every 10 s while the
// worker holds them) and read with its snapshot, its member checked again for being still
// mailable in the same statement; and they send them one by one. A refusal
// or a temporary failure is recorded at once; the mails the relay accepted are recorded together,
// Batch (50, a whole claim) at a time and when the worker stops early, in one statement — a
// commit per mail cost more than the mail itself (docs/benchmarks.md, "Campaign sending" and
// "Sending speed"); so the bound below is one claim per worker, the bound issue 14 sets. A
// recipient still leased after its lease expired was held by a process that died (or lost the
// database for longer than the lease); it is claimed again. Of those, only the mails each worker had handed to
// the relay since its last recorded batch went out before the crash, so only those — at most one
// Batch per worker of the dead process (Concurrency × Batch), plus any whose outcome could not be
// written after three tries — may be mailed twice. Nothing else is ever mailed twice, and nothing
// is skipped: every queued recipient is eventually sent, failed, or left queued by a cancel. The
// Message-ID derives from (run, member), so a receiving system can tell such a repeat from a new
// mail (a test counts repeats as Message-IDs the SMTP sink saw twice).
//
// The marks of sent mails commit with synchronous_commit = off (for their own transactions
// only): their commit does not wait for the WAL flush. A crash of the sending process, or of
// several, is unaffected — PostgreSQL keeps every commit it acknowledged, so the bound above
// holds. A crash of PostgreSQL itself or of its machine (not a clean shutdown) may lose the
// commits of its last moments: at most 3 × wal_writer_delay, 600 ms by default. Marks lost that
// way leave their recipients under their (durable) claim, so they are claimed again when the
// lease runs out and sent once more: the mails marked sent in the last ~600 ms before a
// PostgreSQL crash may go twice, on top of the bound above. None is skipped (a mark is written
// only after the relay accepted its mail, and failures and claims commit normally), and none
// goes to a member who may no longer be mailed (that is checked again at every claim).
//
// Pause and cancel: workers read their run's status at most 500 ms old before every mail and
// stop at once when it is no longer sending, putting what they hold back in the queue; so no
// mail leaves more than about a second after a pause or cancel.
package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
)

// Defaults of the Dispatcher.
const (
	// DefaultInterval is how often Run ticks: a due run starts within about this long.
	DefaultInterval = 2 * time.Second
	// DefaultMaxLate is how late a recurring occurrence may still be sent.
	DefaultMaxLate = time.Hour
)

// Dispatcher creates due runs, snapshots their recipients and finishes them. Set the fields,
// then call Run (or Tick).
type Dispatcher struct {
	DB  *models.DB
	Log *slog.Logger
	// Now is the clock that decides what is due (nil: DB.Now).
	Now func() time.Time
	// Interval is the time between ticks (0: DefaultInterval); MaxLate how late a recurring
	// occurrence may still be sent (0: DefaultMaxLate).
	Interval time.Duration
	MaxLate  time.Duration
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	if d.DB.Now != nil {
		return d.DB.Now()
	}
	return time.Now()
}

func (d *Dispatcher) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Run ticks until ctx ends. Errors are logged; the next tick tries again.
func (d *Dispatcher) Run(ctx context.Context) {
	interval := d.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if err := d.Tick(ctx); err != nil && ctx.Err() == nil {
			d.log().Error("campaign dispatcher", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Tick creates the runs that are due, snapshots the recipients of pending runs (which makes
// them sending) and finishes the runs that have nothing left to send.
func (d *Dispatcher) Tick(ctx context.Context) error {
	now := d.now()
	if err := d.createRuns(ctx, now); err != nil {
		return err
	}
	for {
		done, err := d.startOne(ctx, now)
		if err != nil {
			return err
		}
		if done {
			break
		}
	}
	return d.finish(ctx)
}

// createRuns inserts the runs that are due at now.
func (d *Dispatcher) createRuns(ctx context.Context, now time.Time) error {
	if _, err := d.DB.Pool.Exec(ctx, `
		INSERT INTO campaign_runs (campaign_id, scheduled_for)
		SELECT id, send_at FROM campaigns
		WHERE status = 'scheduled' AND send_at IS NOT NULL AND send_at <= $1
		ON CONFLICT (campaign_id, scheduled_for) DO NOTHING`, now); err != nil {
		return fmt.Errorf("create one-off runs: %w", err)
	}
	rows, err := d.DB.Pool.Query(ctx, `
		SELECT id, cron, timezone, updated_at FROM campaigns
		WHERE status IN ('scheduled', 'sending') AND cron IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("find recurring campaigns: %w", err)
	}
	type recurring struct {
		id       int64
		cron, tz string
		since    time.Time
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (recurring, error) {
		var r recurring
		err := row.Scan(&r.id, &r.cron, &r.tz, &r.since)
		return r, err
	})
	if err != nil {
		return fmt.Errorf("find recurring campaigns: %w", err)
	}
	maxLate := d.MaxLate
	if maxLate <= 0 {
		maxLate = DefaultMaxLate
	}
	for _, r := range list {
		fe := models.FieldErrors{}
		p := parseCron(r.cron, r.tz, fe)
		if p == nil {
			d.log().Error("campaign schedule no longer parses", "campaign_id", r.id, "err", fe.Err("invalid schedule"))
			continue
		}
		at, ok := latestOccurrence(p, r.since, now, maxLate)
		if !ok {
			continue
		}
		if _, err := d.DB.Pool.Exec(ctx, `
			INSERT INTO campaign_runs (campaign_id, scheduled_for) VALUES ($1, $2)
			ON CONFLICT (campaign_id, scheduled_for) DO NOTHING`, r.id, at); err != nil {
			return fmt.Errorf("create run of campaign %d: %w", r.id, err)
		}
	}
	return nil
}

// latestOccurrence is the schedule's last occurrence at or before now that is after since (the
// moment the campaign was scheduled or resumed) and no more than maxLate before now.
func latestOccurrence(p *parsedSchedule, since, now time.Time, maxLate time.Duration) (time.Time, bool) {
	from := now.Add(-maxLate)
	if since.After(from) {
		from = since
	}
	// Next is strictly after its argument and keeps the location of its argument.
	var last time.Time
	for t := p.sched.Next(from.In(p.loc)); !t.IsZero() && !t.After(now); t = p.sched.Next(t) {
		last = t
	}
	return last, !last.IsZero()
}

// startOne claims one pending run and snapshots its recipients; done tells that none was left.
// It locks the run and its campaign without waiting (SKIP LOCKED): Pause, Resume and Cancel lock
// the campaign and then its runs, so a run whose campaign is being changed is left for the next
// tick rather than deadlocking with the change.
func (d *Dispatcher) startOne(ctx context.Context, now time.Time) (done bool, err error) {
	tx, err := d.DB.Pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("start run: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var runID, campaignID int64
	var holdout float64
	var rules []byte
	var camp campaigns.Campaign
	err = tx.QueryRow(ctx, `
		SELECT r.id, r.campaign_id, c.holdout_percent::float8, s.rules, c.subject, c.html, c.text
		FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id LEFT JOIN segments s ON s.id = c.segment_id
		WHERE r.status = 'pending'
		ORDER BY r.scheduled_for, r.id
		LIMIT 1
		FOR UPDATE OF r, c SKIP LOCKED`).Scan(&runID, &campaignID, &holdout, &rules, &camp.Subject, &camp.HTML, &camp.Text)
	if err == pgx.ErrNoRows {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim pending run: %w", err)
	}
	log := d.log().With("run_id", runID, "campaign_id", campaignID)
	where, args, cerr := d.audience(rules, now)
	if cerr != nil {
		// A stored segment that no longer compiles cannot be sent; retrying every tick would
		// not help. The run ends cancelled, loudly.
		log.Error("campaign run cancelled: its segment cannot be evaluated", "err", cerr)
		if _, err := tx.Exec(ctx, `UPDATE campaign_runs SET status = 'cancelled', finished_at = now() WHERE id = $1`, runID); err != nil {
			return false, fmt.Errorf("cancel run %d: %w", runID, err)
		}
		return false, tx.Commit(ctx)
	}
	basisPoints := int64(math.Round(holdout * 100))
	var recipients, heldOut int64
	// Each recipient row gets what its mail needs of the member (models.RecipientSnapshot), so
	// that the senders' claims read this one table; the extras (tier, points, stamp card) only
	// when the campaign's templates may show them, since looking them up costs several times
	// the rest of the row (the sender looks them up should an edit come to show them).
	args = append([]any{runID, basisPoints}, args...)
	snapColumns, snapValues := models.RecipientBase()
	snapJoins := ""
	if needsExtras(&camp) {
		args = append(args, d.DB.ZoneName())
		snapColumns, snapValues, snapJoins = models.RecipientSnapshot(fmt.Sprintf("$%d", len(args)))
	}
	err = tx.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO campaign_recipients (run_id, member_id, email, held_out, status, `+snapColumns+`)
			SELECT $1::bigint, m.id, m.email, h.held, CASE WHEN h.held THEN 'held_out' ELSE 'queued' END, `+snapValues+`
			FROM members m
			CROSS JOIN LATERAL (
				-- No hash a member when nobody is held out (most campaigns).
				SELECT $2::bigint > 0 AND (('x' || substr(md5($1::bigint::text || ':' || m.id::text), 1, 8))::bit(32)::bigint % 10000) < $2::bigint AS held
			) h
			`+snapJoins+`
			WHERE `+segments.Mailable+` AND (`+where+`)
			  AND NOT EXISTS (SELECT 1 FROM email_suppressions es
			                  WHERE es.email = lower(m.email) AND es.suppressed_at IS NOT NULL)
			ON CONFLICT (run_id, member_id) DO NOTHING
			RETURNING held_out
		)
		SELECT count(*) FILTER (WHERE NOT held_out), count(*) FILTER (WHERE held_out) FROM ins`,
		args...).Scan(&recipients, &heldOut)
	if err != nil {
		return false, fmt.Errorf("snapshot recipients of run %d: %w", runID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE campaign_runs
		SET status = 'sending', recipients = $2, held_out = $3, started_at = now() WHERE id = $1`,
		runID, recipients, heldOut); err != nil {
		return false, fmt.Errorf("start run %d: %w", runID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE campaigns SET status = 'sending' WHERE id = $1 AND status = 'scheduled'`, campaignID); err != nil {
		return false, fmt.Errorf("start run %d: %w", runID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("start run %d: %w", runID, err)
	}
	log.Info("campaign run started", "recipients", recipients, "held_out", heldOut)
	return false, nil
}

// audience compiles a run's segment rules as of now (in the shop's time zone) into a WHERE
// fragment whose placeholders start at $3.
func (d *Dispatcher) audience(rules []byte, now time.Time) (string, []any, error) {
	if rules == nil {
		return "", nil, fmt.Errorf("the campaign has no segment")
	}
	tree, err := segments.Parse(rules)
	if err != nil {
		return "", nil, err
	}
	tz := d.DB.Timezone
	if tz == nil {
		tz = time.UTC
	}
	where, args, err := segments.Compile(tree, now.In(tz), 2)
	if err != nil {
		return "", nil, err
	}
	if strings.TrimSpace(where) == "" {
		where = "true"
	}
	return where, args, nil
}

// finish moves on the open_from of every sending run, flows' included (where the claims and
// this look for recipients left: models.AdvanceOpenFromSQL), marks sending runs with nothing
// queued or in flight as sent, then moves their campaigns on: a one-off campaign is sent, a
// recurring one scheduled for its next occurrence. The runs of flow mail steps are the flow
// engine's: it adds recipients to them all day (flows.Engine closes them).
func (d *Dispatcher) finish(ctx context.Context) error {
	if _, err := d.DB.Pool.Exec(ctx, models.AdvanceOpenFromSQL); err != nil {
		return fmt.Errorf("move the runs' open_from: %w", err)
	}
	tag, err := d.DB.Pool.Exec(ctx, `
		UPDATE campaign_runs r SET status = 'sent', finished_at = now()
		WHERE r.status = 'sending'
		  AND NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.id = r.campaign_id AND c.flow_id IS NOT NULL)
		  AND NOT `+models.RecipientsLeftSQL("r"))
	if err != nil {
		return fmt.Errorf("finish runs: %w", err)
	}
	if tag.RowsAffected() > 0 {
		d.log().Info("campaign runs finished", "runs", tag.RowsAffected())
	}
	if _, err := d.DB.Pool.Exec(ctx, `
		UPDATE campaigns c SET status = CASE WHEN c.cron IS NULL THEN 'sent' ELSE 'scheduled' END
		WHERE NOT EXISTS (SELECT 1 FROM campaign_runs r
		                  WHERE r.campaign_id = c.id AND r.status IN ('pending', 'sending', 'paused'))
		  AND ((c.cron IS NULL AND c.status IN ('scheduled', 'sending')
		        AND EXISTS (SELECT 1 FROM campaign_runs r WHERE r.campaign_id = c.id AND r.status = 'sent'))
		    OR (c.cron IS NOT NULL AND c.status = 'sending'))`); err != nil {
		return fmt.Errorf("finish campaigns: %w", err)
	}
	return nil
}
