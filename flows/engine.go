package flows

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/models"
)

// Defaults of the Engine.
const (
	DefaultInterval   = 5 * time.Second
	DefaultStateEvery = 10 * time.Minute
	DefaultMailCap    = 3
	DefaultBatch      = 5000
	// DefaultMaxEntries bounds the members one tick enters into one flow; a trigger that
	// matches more (a win-back flow activated on a large club) enters the rest on the next
	// ticks, so no tick holds its flow for long (writing an entry costs ~0.06 ms at 1M
	// members, docs/benchmarks.md "Flows").
	DefaultMaxEntries = 10000
	// DefaultStateSlice is how many members (by id) one tick evaluates a state trigger over: a
	// pass over a club of 1M members takes twenty ticks or more (two minutes), each well under
	// the 2 s a tick may take (docs/benchmarks.md, "Flows"). A club of 5M would take ten minutes,
	// the state triggers' period.
	DefaultStateSlice = 50000
	DefaultQuietStart = "21:00"
	DefaultQuietEnd   = "08:00"
	// capWindow is the period REGULARS_MAIL_CAP counts marketing mails over.
	capWindow = 7 * 24 * time.Hour
	// maxPasses bounds how many steps a member may take in one tick (an if, then a mail: two).
	maxPasses = 2 * MaxSteps
)

// Engine enters members into active flows and moves them along their steps. Every serve
// process runs one; they share the work flow by flow through an advisory lock.
type Engine struct {
	DB  *models.DB
	Log *slog.Logger
	// Interval between ticks (DefaultInterval); StateEvery between evaluations of a state
	// trigger (DefaultStateEvery; the first comes on the first tick after activation).
	Interval, StateEvery time.Duration
	// MailCap is REGULARS_MAIL_CAP: at most this many marketing mails (campaigns and flows)
	// per member per 7 days; a capped mail step waits a day. 0 switches the cap off.
	MailCap int
	// QuietStart and QuietEnd are REGULARS_QUIET_START/END ("21:00", "08:00"): flow mail waits
	// for the end of quiet hours in the member's home store's zone. Equal: no quiet hours.
	QuietStart, QuietEnd string
	// Batch bounds the members one statement moves (DefaultBatch); MaxEntries the members one
	// tick enters into a flow (DefaultMaxEntries); StateSlice the members one tick evaluates a
	// state trigger over (DefaultStateSlice).
	Batch, MaxEntries, StateSlice int
}

func (e *Engine) log() *slog.Logger {
	if e.Log == nil {
		return slog.Default()
	}
	return e.Log
}

func (e *Engine) maxEntries() int {
	if e.MaxEntries > 0 {
		return e.MaxEntries
	}
	return DefaultMaxEntries
}

// SliceSize is how many members (by id) one tick looks at for a state trigger or a round of
// exits: StateSlice, or DefaultStateSlice.
func (e *Engine) SliceSize() int {
	if e.StateSlice > 0 {
		return e.StateSlice
	}
	return DefaultStateSlice
}

func (e *Engine) stateEvery() time.Duration {
	if e.StateEvery > 0 {
		return e.StateEvery
	}
	return DefaultStateEvery
}

// Run ticks until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	interval := e.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	for {
		if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log().Error("flow tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Tick works once on every active flow that no other process is working on.
func (e *Engine) Tick(ctx context.Context) error {
	rows, err := e.DB.Pool.Query(ctx, `SELECT id FROM flows WHERE status = 'active' ORDER BY id`)
	if err != nil {
		return fmt.Errorf("find active flows: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("find active flows: %w", err)
	}
	var firstErr error
	for _, id := range ids {
		if err := e.tickFlow(ctx, id); err != nil {
			e.log().Error("flow tick", "flow_id", id, "err", err)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// tickFlow enters and moves the members of flow id in one transaction, under the flow's lock
// (skipped when another process holds it).
func (e *Engine) tickFlow(ctx context.Context, id int64) error {
	tx, err := e.DB.Pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var mine bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1::int, $2::int)`, lockNamespace, id).Scan(&mine); err != nil {
		return err
	}
	// The tick's statements are planned afresh each time and run once: compiling them with
	// JIT cost 0.4–2.3 s a statement at 1M members (docs/benchmarks.md, "Flows").
	if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
		return err
	}
	if !mine {
		return nil
	}
	f, err := findFlow(ctx, tx, id, "")
	if err != nil {
		return err
	}
	if f.Status != StatusActive {
		return nil // paused since the list was read
	}
	prog, err := Compile(f.Steps)
	if err != nil {
		return err
	}
	entered, err := e.enter(ctx, tx, f)
	if err != nil {
		return err
	}
	exited, err := e.exit(ctx, tx, f)
	if err != nil {
		return err
	}
	moved, err := e.advance(ctx, tx, f, prog)
	if err != nil {
		return err
	}
	if err := closeRuns(ctx, tx, f.ID); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if entered+exited+moved > 0 {
		e.log().Info("flow tick", "flow_id", id, "entered", entered, "exited", exited, "moved", moved)
	}
	return nil
}

// enter runs the trigger: event triggers over the events since the watermark, state triggers
// when they are due, over the next slice of members (by id) of the pass under way. One
// INSERT … SELECT: the trigger's candidates who are mailable (and not suppressed), in the flow's
// segment, not in the flow now and not entered within reentry_days. The holdout is a hash of
// flow and member, the same on every entry.
func (e *Engine) enter(ctx context.Context, tx pgx.Tx, f *Flow) (int64, error) {
	state := f.Trigger.IsState()
	// Event triggers look at every member; a state trigger at the members with ids in (lo, hi].
	lo, hi, last := int64(0), int64(math.MaxInt64), true
	var cursor *int64 // where the pass under way is; nil: a pass starts now
	if state {
		var due bool
		if err := tx.QueryRow(ctx, `SELECT state_cursor IS NOT NULL OR states_checked_at IS NULL
				OR states_checked_at <= now() - $2::interval, state_cursor
			FROM flows WHERE id = $1`, f.ID, e.stateEvery()).Scan(&due, &cursor); err != nil {
			return 0, err
		}
		if !due {
			return 0, nil
		}
		var err error
		if lo, hi, last, err = e.nextSlice(ctx, tx, cursor); err != nil {
			return 0, err
		}
	}
	cand, own, err := candidates(f.Trigger)
	if err != nil {
		return 0, err
	}
	var from time.Time
	if err := tx.QueryRow(ctx, `SELECT greatest(activated_at, coalesce(events_checked_until, activated_at) - $2::interval)
		FROM flows WHERE id = $1`, f.ID, eventOverlap).Scan(&from); err != nil {
		return 0, err
	}
	zone := e.DB.ZoneName()
	// $1 flow, $2 from, $3 zone, $4 and $5 the slice, then the trigger's own, then holdout,
	// reentry and the cap, then the segment's.
	args := append([]any{f.ID, from, zone, lo, hi}, own...)
	holdoutAt := len(args) + 1
	args = append(args, int64(math.Round(f.HoldoutPercent*100)), f.ReentryDays, e.maxEntries())
	segment := "true"
	if f.SegmentID != nil {
		where, segArgs, err := e.segment(ctx, tx, *f.SegmentID, len(args))
		if err != nil {
			return 0, err
		}
		segment, args = where, append(args, segArgs...)
	}
	query := `
		INSERT INTO flow_entries (flow_id, member_id, event_key, held_out)
		SELECT DISTINCT ON (c.member_id) $1::bigint, c.member_id, c.event_key,
			(('x' || substr(md5('flow:' || $1::bigint || ':' || c.member_id), 1, 8))::bit(32)::bigint % 10000) < ` + placeholder(holdoutAt) + `::bigint
		FROM (` + cand + `) c
		JOIN members m ON m.id = c.member_id
		WHERE ` + segments.Mailable + `
		  AND c.member_id > $4::bigint AND c.member_id <= $5::bigint AND m.id > $4::bigint AND m.id <= $5::bigint
		  AND NOT EXISTS (SELECT 1 FROM email_suppressions es WHERE es.email = lower(m.email) AND es.suppressed_at IS NOT NULL)
		  AND (` + segment + `)
		  -- OFFSET 0: a key lookup per candidate (flow_entries_member). As an anti-join the
		  -- planner, trusting statistics that lag behind a flow entering thousands a tick, took
		  -- the flow's entries for one row and compared every candidate with all of them
		  -- (5–15 s a tick at 1M members, docs/benchmarks.md "Flows").
		  AND NOT EXISTS (SELECT 1 FROM flow_entries e WHERE e.flow_id = $1 AND e.member_id = c.member_id
		                  AND (e.status = 'active' OR ` + placeholder(holdoutAt+1) + `::int IS NULL
		                       OR e.entered_at > now() - make_interval(days => ` + placeholder(holdoutAt+1) + `::int)) OFFSET 0)
		  AND ($2::timestamptz, $3::text) IS NOT NULL -- typed even where the trigger does not use them
		ORDER BY c.member_id, c.event_key
		LIMIT ` + placeholder(holdoutAt+2) + `::int
		ON CONFLICT (flow_id, member_id, event_key) DO NOTHING`
	tag, err := tx.Exec(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("trigger %s of flow %d: %w", f.Trigger.Event, f.ID, err)
	}
	// Many new rows would leave flow_entries' statistics saying it is (nearly) empty, and the
	// step statements would plan for that (minutes a tick): they are refreshed when this tick
	// adds a tenth or more to what they say (not on every large tick: 0.2–0.4 s each at 1M).
	if n := tag.RowsAffected(); n > 1000 {
		if _, err := tx.Exec(ctx, `DO $$ BEGIN
				IF (SELECT reltuples FROM pg_class WHERE oid = 'flow_entries'::regclass) < `+fmt.Sprint(10*n)+` THEN
					ANALYZE flow_entries;
				END IF;
			END $$`); err != nil {
			return 0, err
		}
	}
	if tag.RowsAffected() >= int64(e.maxEntries()) {
		// More to enter: the watermark and the slice stay, so the next tick goes on (the
		// entries' unique key skips those entered now).
		return tag.RowsAffected(), nil
	}
	mark, markArgs := `events_checked_until = now()`, []any{f.ID}
	if state {
		// states_checked_at is when the last pass started, so that a member is looked at
		// every StateEvery however long a pass over a large club takes.
		mark, markArgs = `state_cursor = $2`, append(markArgs, hi)
		if last {
			mark, markArgs = `state_cursor = NULL`, markArgs[:1]
		}
		if cursor == nil {
			mark += `, states_checked_at = now()`
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE flows SET `+mark+` WHERE id = $1`, markArgs...); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// nextSlice is the slice of member ids (lo, hi] after cursor (nil: from the first member): hi is
// the SliceSize-th member after lo (the members' key index, read only that far); last when there
// are no more members than that (hi is then the largest id there can be).
func (e *Engine) nextSlice(ctx context.Context, tx pgx.Tx, cursor *int64) (lo, hi int64, last bool, err error) {
	if cursor != nil {
		lo = *cursor
	}
	err = tx.QueryRow(ctx, `SELECT id FROM members WHERE id > $1 ORDER BY id OFFSET $2 - 1 LIMIT 1`, lo, e.SliceSize()).Scan(&hi)
	if err == pgx.ErrNoRows {
		return lo, math.MaxInt64, true, nil
	}
	return lo, hi, false, err
}

// segment compiles saved segment id as of now into a WHERE over members m, placeholders from
// offset+1.
func (e *Engine) segment(ctx context.Context, tx pgx.Tx, id int64, offset int) (string, []any, error) {
	var rules []byte
	if err := tx.QueryRow(ctx, `SELECT rules FROM segments WHERE id = $1`, id).Scan(&rules); err != nil {
		return "", nil, fmt.Errorf("segment %d: %w", id, err)
	}
	tree, err := segments.Parse(rules)
	if err != nil {
		return "", nil, err
	}
	return compileRules(tree, e.DB, offset)
}

// compileRules compiles a rule tree as of now in the shop's zone.
func compileRules(tree *segments.Node, db *models.DB, offset int) (string, []any, error) {
	tz := db.Timezone
	if tz == nil {
		tz = time.UTC
	}
	where, args, err := segments.Compile(tree, time.Now().In(tz), offset)
	if err != nil {
		return "", nil, err
	}
	if strings.TrimSpace(where) == "" {
		where = "true"
	}
	return where, args, nil
}

// exit ends the entries of members who bought since entering (when the flow exits on
// purchase: a sale received after the entry, so never the one that started it: a till's sale,
// an offline one uploaded late included (it shows the member was not gone), or an imported one
// that happened after the entry; history imported later does not end anybody's flow), withdrew
// consent, were erased or had their address suppressed: set-based, for the flow, before anyone
// moves, so a purchase during a wait ends the flow before its next mail.
//
// Members due now are checked on every tick (that is what keeps a mail from going to a member
// who has just bought); everyone on the way in rounds, a round every StateEvery, one slice of
// members a tick like the state triggers (checking all 336,000 members on the way of a flow at
// 1M members in one statement took 31 s, docs/benchmarks.md "Flows").
func (e *Engine) exit(ctx context.Context, tx pgx.Tx, f *Flow) (int64, error) {
	var round bool
	var cursor *int64
	var checked, since time.Time
	if err := tx.QueryRow(ctx, `SELECT exits_cursor IS NOT NULL OR exits_checked_at IS NULL OR exits_checked_at <= now() - $2::interval,
			exits_cursor, coalesce(exits_checked_at, activated_at, 'epoch'), coalesce(exits_since, exits_checked_at, activated_at, 'epoch')
		FROM flows WHERE id = $1`, f.ID, e.stateEvery()).Scan(&round, &cursor, &checked, &since); err != nil {
		return 0, err
	}
	if round && cursor == nil {
		// A round starts: every entry was looked at in full since the last round began.
		since = checked
	}
	lo, hi, last := int64(0), int64(0), true
	if round {
		var err error
		if lo, hi, last, err = e.nextSlice(ctx, tx, cursor); err != nil {
			return 0, err
		}
	}
	// A sale made after the entry is found by the member's sales index (transactions_member,
	// occurred_at after the entry); one made before it and received after (an offline till
	// uploading late) only among the live sales received since every entry was last looked at
	// in full: the start of the last round (less the overlap of event triggers, for a sale
	// committed late), a few minutes of sales. Looking at every sale of each member on the way
	// instead cost 10 heap reads a member. The due members and the round's slice are two
	// statements: each reads its own index (flow_entries_due; the entries' key and members' by
	// id range), where one statement with an OR read every entry of the flow and every member.
	reason := `CASE
		WHEN m.status = 'erased' THEN 'erased'
		WHEN NOT ` + segments.Mailable + ` THEN 'consent'
		WHEN EXISTS (SELECT 1 FROM email_suppressions es WHERE es.email = lower(m.email) AND es.suppressed_at IS NOT NULL) THEN 'suppressed'
		WHEN $2 AND (l.received_at > e.entered_at
		             OR EXISTS (SELECT 1 FROM transactions t WHERE t.member_id = e.member_id AND t.occurred_at > e.entered_at
		                        AND t.kind = 'sale' AND t.received_at > e.entered_at)) THEN 'purchase'
	END`
	exits := func(which string, args ...any) (int64, error) {
		tag, err := tx.Exec(ctx, `
			WITH late AS MATERIALIZED (
				SELECT t.member_id, max(t.received_at) AS received_at FROM transactions t
				WHERE $2 AND t.live AND t.member_id IS NOT NULL AND t.kind = 'sale' AND t.received_at >= $3::timestamptz - $4::interval
				GROUP BY t.member_id
			)
			UPDATE flow_entries e SET status = 'exited', finished_at = now(), exit_reason = `+reason+`
			FROM members m LEFT JOIN late l ON l.member_id = m.id
			WHERE e.flow_id = $1 AND e.status = 'active' AND m.id = e.member_id AND `+which+`
			  -- Not the entries of this tick (entered_at is the transaction's now()): the entry
			  -- statement has just checked the same things (20,000 probes for nothing took 1–5 s
			  -- at 1M members, docs/benchmarks.md "Flows"); a sale since is seen on the next tick.
			  AND e.entered_at < now()
			  AND (`+reason+`) IS NOT NULL`, append([]any{f.ID, f.ExitOnPurchase, since, eventOverlap}, args...)...)
		if err != nil {
			return 0, fmt.Errorf("exits of flow %d: %w", f.ID, err)
		}
		return tag.RowsAffected(), nil
	}
	n, err := exits(`e.next_at <= now()`)
	if err != nil || !round {
		return n, err
	}
	m, err := exits(`e.member_id > $5 AND e.member_id <= $6 AND m.id > $5 AND m.id <= $6`, lo, hi)
	if err != nil {
		return 0, err
	}
	next := any(hi)
	if last {
		next = nil
	}
	mark, args := `exits_cursor = $2`, []any{f.ID, next}
	if cursor == nil {
		mark, args = mark+`, exits_checked_at = now(), exits_since = $3`, append(args, since)
	}
	if _, err := tx.Exec(ctx, `UPDATE flows SET `+mark+` WHERE id = $1`, args...); err != nil {
		return 0, err
	}
	return n + m, nil
}

// advance moves due members step by step, one statement per instruction and pass, until no one
// due is left to move (or maxPasses).
func (e *Engine) advance(ctx context.Context, tx pgx.Tx, f *Flow, prog Program) (int64, error) {
	var total int64
	for range maxPasses {
		var moved int64
		for i, op := range prog {
			n, err := e.step(ctx, tx, f, i, op)
			if err != nil {
				return total, fmt.Errorf("flow %d %s: %w", f.ID, op.Path, err)
			}
			moved += n
		}
		tag, err := tx.Exec(ctx, `UPDATE flow_entries SET status = 'done', finished_at = now()
			WHERE flow_id = $1 AND status = 'active' AND step >= $2`, f.ID, len(prog))
		if err != nil {
			return total, err
		}
		moved += tag.RowsAffected()
		total += moved
		if moved == 0 {
			break
		}
	}
	return total, nil
}

// due is the CTE of the entries due at step $2 of flow $1, at most $3 of them.
const due = `due AS (
	SELECT e.id, e.member_id, e.held_out FROM flow_entries e
	WHERE e.flow_id = $1 AND e.status = 'active' AND e.step = $2 AND e.next_at <= now()
	ORDER BY e.next_at LIMIT $3)`

func (e *Engine) batch() int {
	if e.Batch > 0 {
		return e.Batch
	}
	return DefaultBatch
}

// step runs instruction i for the members due at it.
func (e *Engine) step(ctx context.Context, tx pgx.Tx, f *Flow, i int, op Op) (int64, error) {
	switch op.Kind {
	case OpWait:
		tag, err := tx.Exec(ctx, `WITH `+due+`
			UPDATE flow_entries e SET step = $4, next_at = now() + $5::interval FROM due WHERE e.id = due.id`,
			f.ID, i, e.batch(), op.Next, op.Wait)
		return tag.RowsAffected(), err
	case OpIf:
		where, args, err := compileRules(op.Rules, e.DB, 5)
		if err != nil {
			return 0, err
		}
		tag, err := tx.Exec(ctx, `WITH `+due+`
			UPDATE flow_entries e SET next_at = now(), step = CASE
				WHEN EXISTS (SELECT 1 FROM members m WHERE m.id = e.member_id AND (`+where+`)) THEN $4::int ELSE $5::int END
			FROM due WHERE e.id = due.id`,
			append([]any{f.ID, i, e.batch(), op.Then, op.Else}, args...)...)
		return tag.RowsAffected(), err
	case OpMail:
		return e.mail(ctx, tx, f, i, op)
	case OpVoucher:
		// A voucher for each member walking the flow (held-out members get none), keyed by
		// entry and step so it is issued once; a member whose random code clashed with an
		// existing one stays and gets another on the next tick.
		tag, err := tx.Exec(ctx, `WITH `+due+`,
			issued AS (
				INSERT INTO vouchers (code, member_id, reward_code, expires_at, issued_by, source_key)
				SELECT new_voucher_code(), due.member_id, $5, now() + $6::interval, 'flow',
				       'flow:' || $1::bigint || ':' || due.id || ':' || $2::int
				FROM due WHERE NOT due.held_out
				ON CONFLICT DO NOTHING
				RETURNING source_key)
			UPDATE flow_entries e SET step = $4, next_at = now() FROM due
			WHERE e.id = due.id
			  AND (due.held_out OR 'flow:' || $1::bigint || ':' || due.id || ':' || $2::int IN (SELECT source_key FROM issued))`,
			f.ID, i, e.batch(), op.Next, op.Reward, op.Life)
		return tag.RowsAffected(), err
	}
	return 0, fmt.Errorf("unknown instruction %q", op.Kind)
}

// mail queues mail step i for the members due at it, in today's run of the step's campaign:
// held-out members as held out (never mailed), the others queued for the campaign sender,
// unless quiet hours in their home store's zone hold them (they wait for the end) or they had
// REGULARS_MAIL_CAP marketing mails in 7 days (they wait a day).
func (e *Engine) mail(ctx context.Context, tx pgx.Tx, f *Flow, i int, op Op) (int64, error) {
	// Most ticks find nobody at a mail step: then no day's run is made (an empty run a day per
	// step would only clutter the report) and nothing more is asked.
	var anyDue bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM flow_entries
		WHERE flow_id = $1 AND status = 'active' AND step = $2 AND next_at <= now())`, f.ID, i).Scan(&anyDue); err != nil {
		return 0, err
	}
	if !anyDue {
		return 0, nil
	}
	var runID int64
	err := tx.QueryRow(ctx, `
		WITH c AS (SELECT id FROM campaigns WHERE flow_id = $1 AND flow_step = $2),
		ins AS (
			INSERT INTO campaign_runs (campaign_id, scheduled_for, status, started_at, recipients, held_out)
			SELECT c.id, date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 'sending', now(), 0, 0 FROM c
			ON CONFLICT (campaign_id, scheduled_for) DO NOTHING
			RETURNING id)
		SELECT id FROM ins
		UNION ALL
		SELECT r.id FROM campaign_runs r JOIN c ON r.campaign_id = c.id
		WHERE r.scheduled_for = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`, f.ID, i).Scan(&runID)
	if err != nil {
		return 0, fmt.Errorf("today's run of mail step %d: %w", i, err)
	}
	quietStart, quietEnd := e.QuietStart, e.QuietEnd
	if quietStart == "" && quietEnd == "" {
		quietStart, quietEnd = DefaultQuietStart, DefaultQuietEnd
	}
	mailCap := e.MailCap
	if mailCap <= 0 {
		mailCap = math.MaxInt32
	}
	// The recipient rows carry what the mail needs of the member (models.RecipientSnapshot).
	snapColumns, snapValues, snapJoins := models.RecipientSnapshot("$5")
	tag, err := tx.Exec(ctx, `WITH `+due+`,
		judged AS (
			SELECT due.id, due.member_id, due.held_out, m.email,
				quiet_until(now(), coalesce(s.timezone, $5), $6::time, $7::time) AS quiet,
				`+mailsInWindow("due.member_id", "$8")+` >= $9 AS capped
			FROM due JOIN members m ON m.id = due.member_id LEFT JOIN stores s ON s.id = m.home_store_id),
		go AS (
			SELECT * FROM judged WHERE held_out OR (quiet IS NULL AND NOT capped)),
		ins AS (
			INSERT INTO campaign_recipients (run_id, member_id, email, held_out, status, `+snapColumns+`)
			SELECT $10::bigint, go.member_id, go.email, go.held_out, CASE WHEN go.held_out THEN 'held_out' ELSE 'queued' END, `+snapValues+`
			FROM go JOIN members m ON m.id = go.member_id `+snapJoins+`
			ON CONFLICT (run_id, member_id) DO NOTHING
			RETURNING held_out),
		counted AS (
			UPDATE campaign_runs SET recipients = recipients + (SELECT count(*) FROM ins WHERE NOT held_out),
				held_out = held_out + (SELECT count(*) FROM ins WHERE held_out)
			WHERE id = $10)
		UPDATE flow_entries e SET
			step = CASE WHEN j.held_out OR (j.quiet IS NULL AND NOT j.capped) THEN $4::int ELSE e.step END,
			next_at = CASE WHEN j.held_out OR (j.quiet IS NULL AND NOT j.capped) THEN now()
			               WHEN j.capped THEN now() + interval '1 day'
			               ELSE j.quiet END
		FROM judged j WHERE e.id = j.id AND (j.held_out OR (j.quiet IS NULL AND NOT j.capped))`,
		f.ID, i, e.batch(), op.Next, e.DB.ZoneName(), quietStart, quietEnd, capWindow, mailCap, runID)
	if err != nil {
		return 0, err
	}
	// Members held back by quiet hours or the cap get their new time without counting as moved.
	if _, err := tx.Exec(ctx, `WITH `+due+`
		UPDATE flow_entries e SET next_at = CASE
			WHEN `+mailsInWindow("e.member_id", "$7")+` >= $8 THEN now() + interval '1 day'
			ELSE coalesce(quiet_until(now(), coalesce(s.timezone, $4), $5::time, $6::time), now()) END
		FROM due JOIN members m ON m.id = due.member_id LEFT JOIN stores s ON s.id = m.home_store_id
		WHERE e.id = due.id AND NOT due.held_out`,
		f.ID, i, e.batch(), e.DB.ZoneName(), quietStart, quietEnd, capWindow, mailCap); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// mailsInWindow counts the marketing mails (campaigns and flows) member has had within window, or
// has waiting in a run being sent: what REGULARS_MAIL_CAP limits.
func mailsInWindow(member, window string) string {
	return `(SELECT count(*) FROM campaign_recipients cr JOIN campaign_runs r ON r.id = cr.run_id
		WHERE cr.member_id = ` + member + ` AND NOT cr.held_out
		  AND ((cr.status = 'sent' AND cr.sent_at > now() - ` + window + `::interval)
		    OR (cr.status IN ('queued', 'sending') AND r.status = 'sending')))`
}

// closeRuns marks the flow's runs of earlier days sent once nothing in them is queued or in
// flight (today's run stays open for the members who reach a mail step later today).
func closeRuns(ctx context.Context, tx pgx.Tx, flowID int64) error {
	_, err := tx.Exec(ctx, `
		UPDATE campaign_runs r SET status = 'sent', finished_at = now()
		FROM campaigns c
		WHERE c.id = r.campaign_id AND c.flow_id = $1 AND r.status = 'sending'
		  AND r.scheduled_for < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
		  AND NOT `+models.RecipientsLeftSQL("r"), flowID)
	return err
}
