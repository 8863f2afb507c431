package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/models"
)

// Queue is all a Sender reads and writes of storage: the recipients of sending runs (claimed,
// leased, marked), the status of their runs and the campaigns they mail. PostgresQueue is the
// one in use; the sender's unit tests use one in memory. A Sender calls it once per claim, batch
// of sent mails, failure, renewal and status read, never once per sent mail.
//
// Leases and retry delays are durations, measured on the queue's own clock: for PostgresQueue
// the database's now(), so that every process compares leases on the same clock whatever the
// skew between their machines.
type Queue interface {
	// Claim takes up to n due recipients of sending runs (queued ones whose retry time has come,
	// and ones whose lease expired), leases them for lease and counts an attempt for each.
	// members holds what rendering needs of their members, by member id.
	Claim(ctx context.Context, n int, lease time.Duration) (recs []Claimed, members map[int64]ClaimedMember, err error)
	// MarkSent records mails the relay accepted as sent at their time, except those another
	// worker has claimed since.
	MarkSent(ctx context.Context, mails []SentMail) error
	// Record stores one recipient's outcome, status "failed" or "queued" (due again retryIn
	// from now) with cause as its error, unless another worker has claimed it since.
	Record(ctx context.Context, r Claimed, status string, cause error, retryIn time.Duration) error
	// Release puts claimed recipients back in the queue, as if never claimed.
	Release(ctx context.Context, recs []Claimed) error
	// Renew extends by lease the lease of those of recs still held under their claim, and
	// returns which ones are.
	Renew(ctx context.Context, recs []Claimed, lease time.Duration) (kept map[Key]bool, err error)
	// RunStatus reads run id's status and its campaign's id and updated_at.
	RunStatus(ctx context.Context, id int64) (RunStatus, error)
	// Campaign reads campaign id.
	Campaign(ctx context.Context, id int64) (*campaigns.Campaign, error)
	// Voucher gives the mail of run runID to memberID its voucher (campaigns.VoucherSource): for
	// reward "" the latest unused voucher flowID's voucher steps issued to the member (an error
	// outside a flow); for a reward code, one voucher of it issued to this recipient, the same
	// one however often the mail is rendered.
	Voucher(ctx context.Context, flowID *int64, runID, memberID int64, reward string) (*campaigns.VoucherData, error)
	// Extras reads member memberID's extras now (models.RecipientExtras), for a recipient whose
	// row was made without them (ClaimedMember.Extras false) when its campaign shows them.
	Extras(ctx context.Context, memberID int64) (Extras, error)
	// Tracker registers links, the campaign's template links, and returns what rewrites its
	// mails to track them (tracking.NewTracker, signing with secret for baseURL).
	Tracker(ctx context.Context, campaignID int64, secret []byte, baseURL string, links []string) (LinkTracker, error)
}

// Claimed is one recipient a worker holds: its claim is (RunID, MemberID, Attempts).
type Claimed struct {
	RunID, MemberID int64
	Email           string
	// Attempts counts this one.
	Attempts int
}

// Key identifies a recipient.
type Key struct{ Run, Member int64 }

// ClaimedMember is what rendering needs of a claimed recipient's member, and whether it may
// still be mailed (consent withdrawn, erased or suppressed since the snapshot: not mailed).
type ClaimedMember struct {
	Data     campaigns.MemberData
	Mailable bool
	// Extras tells that Data has the member's extras: the tier, discount, points and stamp
	// card (models.RecipientExtras). A run whose campaign showed none was snapshotted without
	// them.
	Extras bool
}

// Extras are a member's extras (models.RecipientExtras): the tier (nil below every threshold)
// and its discount in percent, the points balance and the stamp card's size (0: no card).
type Extras struct {
	Tier              *string
	Discount          float64
	Points, StampCost int
}

// withExtras is m with the extras x.
func (m ClaimedMember) withExtras(id int64, x Extras) ClaimedMember {
	base := models.Member{ID: id, Card: m.Data.Card, Name: m.Data.Name, HomeStore: m.Data.HomeStore, Language: m.Data.Language}
	m.Data = campaigns.NewMemberData(&base, x.Tier, x.Discount)
	campaigns.AddPoints(&m.Data, x.Points, x.StampCost)
	m.Extras = true
	return m
}

// SentMail is a mail the relay accepted at At whose outcome is not recorded yet.
type SentMail struct {
	Claimed
	At time.Time
}

// RunStatus is a run's status ("sending", "paused", ...) with its campaign's id and updated_at
// (to notice an edit made while paused).
type RunStatus struct {
	Status     string
	CampaignID int64
	UpdatedAt  time.Time
}

// LinkTracker rewrites the HTML of the mail of run runID to memberID for click (and open)
// tracking; *tracking.Tracker is one.
type LinkTracker interface {
	Apply(runID, memberID int64, html string) string
}

// PostgresQueue is the Queue in campaign_runs and campaign_recipients. A Sender without a Queue
// uses one on its DB.
//
// A claimed recipient stays 'queued' with its lease in lease_until (rows claimed before
// migration 00025 may still be 'sending'; they are claimed again the same way when their lease
// ends). Claims, renewals, releases and outcomes change only columns no index covers (since
// migration 00029: no index names status or sent_at), so PostgreSQL updates the rows in place
// (HOT) where their page has room (fillfactor 45); only a temporary failure, which sets
// next_attempt_at (the predicate of campaign_recipients_retry), and the outcome after it touch
// the indexes.
type PostgresQueue struct {
	DB *models.DB

	// after is the highest seq this queue has claimed; next is where its next claim starts
	// looking, at or after it, moved by each claim so that concurrent claims start apart (see
	// Claim); lastSweep is when it last looked behind after (UnixNano).
	after, next atomic.Int64
	lastSweep   atomic.Int64
}

// sweepEvery is how often a queue looks behind the recipients it has claimed: for leases that
// expired (their process died), retries that came due, releases after a pause, and rows a
// flow added to a run after others were claimed.
const sweepEvery = 5 * time.Second

// Claim takes up to n due recipients of sending runs with what rendering needs of them, copied
// into their rows when they were made (models.RecipientSnapshot), and whether their members may
// still be mailed (consent withdrawn, erased or suppressed since the snapshot: not mailed), read
// for these n members only.
//
// The recipients are numbered (seq) as they are made, and a queue remembers the highest number it
// has claimed: its claims start there, so that they walk each run's open rows once instead of
// scanning, at every claim, past the rows being sent (a run's first rows, leased by the workers,
// and the index entries of those already sent). Each claim moves the start on by n first, so
// that the workers' concurrent claims start n apart and do not skip each other's locked rows one
// by one (a run's numbers are mostly consecutive: one snapshot statement). What is behind that
// point — leases that expired,
// retries that came due, rows released after a pause, rows another process skipped — is picked
// up by a claim from the start (a sweep) when nothing is left ahead, and every sweepEvery
// meanwhile. Both are the same statement: FOR UPDATE SKIP LOCKED over one table, leasing only a
// row no claim holds (checked again on the row's latest version), so no recipient is ever held
// by two claims; the point is only where to look first.
func (q *PostgresQueue) Claim(ctx context.Context, n int, lease time.Duration) ([]Claimed, map[int64]ClaimedMember, error) {
	now := time.Now().UnixNano()
	if last := q.lastSweep.Load(); now-last >= int64(sweepEvery) && q.lastSweep.CompareAndSwap(last, now) {
		recs, members, err := q.claim(ctx, n, lease, 0)
		if err != nil || len(recs) > 0 {
			return recs, members, err
		}
	}
	if start := q.reserve(n); start > 0 {
		recs, members, err := q.claim(ctx, n, lease, start)
		if err != nil || len(recs) > 0 {
			return recs, members, err
		}
		// Nothing ahead of this claim's start: later claims start from what was claimed.
		q.next.Store(q.after.Load())
		q.lastSweep.Store(now)
	}
	return q.claim(ctx, n, lease, 0)
}

// reserve returns where a claim of n starts looking (0: from the start), and moves next past
// it: the greater of next and after.
func (q *PostgresQueue) reserve(n int) int64 {
	for {
		cur := q.next.Load()
		start := max(cur, q.after.Load())
		if start == 0 {
			return 0
		}
		if q.next.CompareAndSwap(cur, start+int64(n)) {
			return start
		}
	}
}

// claimable is a recipient no claim holds that is due: queued without a lease, or with one
// that expired, and past its retry time; or left 'sending' (claimed before migration 00025) by
// a process that died.
const claimable = `((cr.status = 'queued' AND (cr.lease_until IS NULL OR cr.lease_until < now())
	  AND (cr.next_attempt_at IS NULL OR cr.next_attempt_at <= now()))
	OR (cr.status = 'sending' AND cr.lease_until < now()))`

// claimAfter leases, for $2, up to $1 claimable recipients of sending runs numbered after $3,
// in each run's seq order, skipping rows other claims have locked. Its result is got: the
// claimed rows (claimedColumns). The update finds each picked row by its ctid, the version the
// lock holds (nobody else can update it meanwhile), rather than looking it up again in the
// primary key.
//
// The rows are found without an index on status (migration 00029, so that the "sent" mark is a
// HOT update): after each run's open_from (below which every row is finished or waits for a
// retry; models.AdvanceOpenFromSQL) on campaign_recipients_run_seq, finished rows after it
// filtered as they are passed (run by run, in seq order: as a plain join, the generic plan
// read the whole table for a run as large as the table); and, in a sweep ($3 = 0), the rows
// waiting for a retry on campaign_recipients_retry, first. Both arms lock what they pick (FOR
// UPDATE SKIP LOCKED); a row both find is leased once, and the claim keeps $1.
const claimAfter = `
	WITH ahead AS MATERIALIZED (
		SELECT a.row
		FROM campaign_runs r CROSS JOIN LATERAL (
			SELECT cr.ctid AS row FROM campaign_recipients cr
			WHERE cr.run_id = r.id AND cr.seq > greatest($3, r.open_from) AND ` + claimable + `
			ORDER BY cr.seq
			LIMIT $1
			FOR UPDATE OF cr SKIP LOCKED) a
		WHERE r.status = 'sending'
		LIMIT $1
	), retry AS MATERIALIZED (
		SELECT cr.ctid AS row
		FROM campaign_runs r JOIN campaign_recipients cr ON cr.run_id = r.id
		WHERE $3 = 0 AND r.status = 'sending' AND cr.next_attempt_at IS NOT NULL AND ` + claimable + `
		LIMIT $1
		FOR UPDATE OF cr SKIP LOCKED
	), picked AS (
		SELECT row FROM (SELECT row, 0 AS arm FROM retry UNION ALL SELECT row, 1 FROM ahead) p
		GROUP BY row ORDER BY min(arm) LIMIT $1
	), got AS (
		UPDATE campaign_recipients cr SET status = 'queued', lease_until = now() + $2::interval, attempts = cr.attempts + 1
		FROM picked p
		WHERE cr.ctid = p.row
		RETURNING ` + claimedColumns + `
	)`

// claimedColumns are what a claim returns of each recipient: the claim, the number and the
// snapshot.
const claimedColumns = `cr.run_id, cr.member_id, cr.email, cr.attempts, cr.seq, cr.card, cr.name, cr.home_store,
	cr.language, cr.tier, cr.discount, cr.points, cr.stamp_cost`

// claim runs claimAfter after seq after and reads, for the claimed members only, whether each
// may still be mailed (by primary key and the suppressions' key); it moves q.after past what it
// claimed.
func (q *PostgresQueue) claim(ctx context.Context, n int, lease time.Duration, after int64) ([]Claimed, map[int64]ClaimedMember, error) {
	var out []Claimed
	members := map[int64]ClaimedMember{}
	var last int64
	b := &pgx.Batch{}
	b.Queue(genericPlan)
	b.Queue(claimAfter+`
		SELECT got.*, coalesce(`+segments.Mailable+` AND NOT EXISTS (SELECT 1 FROM email_suppressions es
				WHERE es.email = lower(m.email) AND es.suppressed_at IS NOT NULL), false)
		FROM got LEFT JOIN members m ON m.id = got.member_id`, n, lease, after).Query(func(rows pgx.Rows) error {
		return scanClaimed(rows, &out, members, &last)
	})
	if err := q.DB.Pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, fmt.Errorf("claim recipients: %w", err)
	}
	for cur := q.after.Load(); last > cur && !q.after.CompareAndSwap(cur, last); cur = q.after.Load() {
	}
	return out, members, nil
}

// genericPlan, queued before a claim or a batch of marks in a pgx.Batch (one implicit
// transaction), makes PostgreSQL run the statement with its generic plan: it left them on custom
// plans, planned again at every call (about 1 to 2 ms of planning a claim in
// pg_stat_statements, more than running it; 0.1–0.5 ms for marks of 50 arrays' elements), and
// the generic plans are the same index scans (the marks': the primary key per element).
const genericPlan = `SET LOCAL plan_cache_mode = force_generic_plan`

// scanClaimed appends the claimed recipients of rows to out and their members to members, and
// raises *last to the highest seq among them.
func scanClaimed(rows pgx.Rows, out *[]Claimed, members map[int64]ClaimedMember, last *int64) error {
	for rows.Next() {
		var c Claimed
		var card, name, store, language, tier *string
		var discount *float64
		var balance, stampCost *int32
		var mailable bool
		var seq *int64
		if err := rows.Scan(&c.RunID, &c.MemberID, &c.Email, &c.Attempts, &seq,
			&card, &name, &store, &language, &tier, &discount, &balance, &stampCost, &mailable); err != nil {
			return err
		}
		*last = max(*last, deref(seq))
		*out = append(*out, c)
		m := ClaimedMember{Data: campaigns.MemberData{Card: deref(card), Name: deref(name), HomeStore: deref(store),
			Language: deref(language)}, Mailable: mailable}
		// A row made without the extras has no points (never NULL once looked up).
		m = m.withExtras(c.MemberID, Extras{Tier: tier, Discount: deref(discount), Points: int(deref(balance)), StampCost: int(deref(stampCost))})
		m.Extras = balance != nil
		members[c.MemberID] = m
	}
	return rows.Err()
}

// deref is *p, or the zero value for nil (a snapshot column the row was made without).
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// asyncCommit, queued before a statement in a pgx.Batch, makes that statement commit without
// waiting for the WAL flush: a batch runs as one implicit transaction, so SET LOCAL holds for it
// alone. The marks of sent mails use it (waiting for a flush per batch of 10 mails held each
// worker's connection idle; docs/benchmarks.md, "Campaign sending"). Only a crash of PostgreSQL
// or of its machine can lose such a commit (the last few hundred milliseconds of them); see the
// package documentation for what that may repeat. Claims commit normally, so a claim is never
// lost while its worker goes on sending.
const asyncCommit = `SET LOCAL synchronous_commit = off`

// stillHeld is "the row is still held by the claim", with the claim's attempts: a lease is set
// only by a claim and cleared by every outcome and release. It does not name status: with a
// status test, PostgreSQL's generic plan for these updates used the partial index of open rows
// there was before migration 00029 with run_id alone and filtered
// every open row of the run for the member, which made a run quadratic (0.7 ms per recorded mail
// at 10,000 recipients; see docs/benchmarks.md, "Campaign sending"). Only the primary key fits.
const stillHeld = `cr.lease_until IS NOT NULL`

// MarkSent writes the marks in one statement, committed asynchronously, with three tries.
func (q *PostgresQueue) MarkSent(ctx context.Context, mails []SentMail) error {
	if len(mails) == 0 {
		return nil
	}
	runs := make([]int64, len(mails))
	members := make([]int64, len(mails))
	attempts := make([]int32, len(mails))
	at := make([]time.Time, len(mails))
	for i, m := range mails {
		runs[i], members[i], attempts[i], at[i] = m.RunID, m.MemberID, int32(m.Attempts), m.At
	}
	err := tryThrice(ctx, func() error {
		b := &pgx.Batch{}
		b.Queue(asyncCommit)
		b.Queue(genericPlan)
		b.Queue(`
			UPDATE campaign_recipients cr SET status = 'sent', error = NULL, lease_until = NULL,
				sent_at = u.sent_at, next_attempt_at = NULL
			FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::timestamptz[]) AS u(run_id, member_id, attempts, sent_at)
			WHERE cr.run_id = u.run_id AND cr.member_id = u.member_id AND cr.attempts = u.attempts
			  AND `+stillHeld, runs, members, attempts, at)
		return q.DB.Pool.SendBatch(ctx, b).Close()
	})
	if err != nil {
		// Sent mails whose outcome is lost are claimed again after their lease: they count
		// as in flight (see the package documentation).
		return fmt.Errorf("record %d sent campaign mails: %w", len(mails), err)
	}
	return nil
}

// Record writes the outcome, its cause cut to 1,000 bytes of valid UTF-8, with three tries.
func (q *PostgresQueue) Record(ctx context.Context, r Claimed, status string, cause error, retryIn time.Duration) error {
	var msg *string
	if cause != nil {
		text := cause.Error()
		if len(text) > 1000 {
			text = text[:1000]
		}
		text = strings.ToValidUTF8(text, "?")
		msg = &text
	}
	err := tryThrice(ctx, func() error {
		_, err := q.DB.Pool.Exec(ctx, `
			UPDATE campaign_recipients cr SET status = $4, error = $5, lease_until = NULL,
				sent_at = CASE WHEN $4 = 'sent' THEN now() END,
				next_attempt_at = CASE WHEN $4 = 'queued' THEN now() + $6::interval END
			WHERE run_id = $1 AND member_id = $2 AND `+stillHeld+` AND attempts = $3`,
			r.RunID, r.MemberID, r.Attempts, status, msg, retryIn)
		return err
	})
	if err != nil {
		// A sent mail whose outcome is lost is claimed again after its lease: it counts as
		// in flight (see the package documentation).
		return fmt.Errorf("record outcome of run %d member %d: %w", r.RunID, r.MemberID, err)
	}
	return nil
}

// tryThrice calls write up to three times, 200 ms and then 400 ms apart, until it succeeds or
// ctx ends, so that a short outage of the database does not lose an outcome.
func tryThrice(ctx context.Context, write func() error) error {
	var err error
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
		if err = write(); err == nil || ctx.Err() != nil {
			break
		}
	}
	return err
}

// Release undoes the claims: the recipients are queued again with the attempt uncounted.
func (q *PostgresQueue) Release(ctx context.Context, recs []Claimed) error {
	if len(recs) == 0 {
		return nil
	}
	runs, members, attempts := columns(recs)
	if _, err := q.DB.Pool.Exec(ctx, `
		UPDATE campaign_recipients cr SET status = 'queued', lease_until = NULL, attempts = cr.attempts - 1
		FROM unnest($1::bigint[], $2::bigint[], $3::int[]) AS u(run_id, member_id, attempts)
		WHERE cr.run_id = u.run_id AND cr.member_id = u.member_id AND cr.attempts = u.attempts
		  AND `+stillHeld, runs, members, attempts); err != nil {
		return fmt.Errorf("release %d claimed campaign recipients: %w", len(recs), err)
	}
	return nil
}

// Renew extends the leases in one statement.
func (q *PostgresQueue) Renew(ctx context.Context, recs []Claimed, lease time.Duration) (map[Key]bool, error) {
	runs, members, attempts := columns(recs)
	rows, err := q.DB.Pool.Query(ctx, `
		UPDATE campaign_recipients cr SET lease_until = now() + $4::interval
		FROM unnest($1::bigint[], $2::bigint[], $3::int[]) AS u(run_id, member_id, attempts)
		WHERE cr.run_id = u.run_id AND cr.member_id = u.member_id AND cr.attempts = u.attempts
		  AND `+stillHeld+`
		RETURNING cr.run_id, cr.member_id`, runs, members, attempts, lease)
	if err != nil {
		return nil, fmt.Errorf("renew lease: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Key])
	if err != nil {
		return nil, fmt.Errorf("renew lease: %w", err)
	}
	kept := make(map[Key]bool, len(ids))
	for _, id := range ids {
		kept[id] = true
	}
	return kept, nil
}

func columns(recs []Claimed) (runs, members []int64, attempts []int32) {
	for _, r := range recs {
		runs = append(runs, r.RunID)
		members = append(members, r.MemberID)
		attempts = append(attempts, int32(r.Attempts))
	}
	return runs, members, attempts
}

// RunStatus reads the run and its campaign's updated_at.
func (q *PostgresQueue) RunStatus(ctx context.Context, id int64) (RunStatus, error) {
	var st RunStatus
	err := q.DB.Pool.QueryRow(ctx, `
		SELECT r.status, r.campaign_id, c.updated_at
		FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id WHERE r.id = $1`, id).
		Scan(&st.Status, &st.CampaignID, &st.UpdatedAt)
	if err != nil {
		return RunStatus{}, fmt.Errorf("read status of run %d: %w", id, err)
	}
	return st, nil
}

// Campaign reads the campaign or flow mail step (campaigns.GetForSending).
func (q *PostgresQueue) Campaign(ctx context.Context, id int64) (*campaigns.Campaign, error) {
	return campaigns.GetForSending(ctx, q.DB, id)
}

// campaignVoucherLife is how long a voucher a campaign mail issues is valid.
const campaignVoucherLife = 30 * 24 * time.Hour

// Voucher reads a flow's voucher or issues a recipient's: INSERT … ON CONFLICT DO NOTHING keyed
// by source_key, then the row under that key, so a retried mail shows the voucher issued the
// first time. A random code that clashes with another voucher's is tried again once.
func (q *PostgresQueue) Voucher(ctx context.Context, flowID *int64, runID, memberID int64, reward string) (*campaigns.VoucherData, error) {
	var code, name string
	var expires time.Time
	if reward == "" {
		if flowID == nil {
			return nil, errors.New(`{{.Voucher}} without a reward shows a flow's voucher; a campaign issues one with {{.Voucher "coffee"}}`)
		}
		err := q.DB.Pool.QueryRow(ctx, `
			SELECT v.code, r.name, v.expires_at FROM vouchers v JOIN rewards r ON r.code = v.reward_code
			WHERE v.member_id = $1 AND v.source_key LIKE 'flow:' || $2::bigint || ':%'
			  AND v.used_at IS NULL AND v.expires_at > now()
			ORDER BY v.created_at DESC, v.id DESC LIMIT 1`, memberID, *flowID).Scan(&code, &name, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, errors.New("the member has no unused voucher of this flow: put a voucher step before this mail")
		}
		if err != nil {
			return nil, fmt.Errorf("find the flow's voucher: %w", err)
		}
		return q.voucherData(code, name, expires), nil
	}
	issuer, key := "campaign", fmt.Sprintf("campaign:%d:%d:%s", runID, memberID, reward)
	if flowID != nil {
		issuer, key = "flow", fmt.Sprintf("flow:%d:mail:%d:%d:%s", *flowID, runID, memberID, reward)
	}
	for range 2 {
		err := q.DB.Pool.QueryRow(ctx, `
			WITH ins AS (
				INSERT INTO vouchers (code, member_id, reward_code, expires_at, issued_by, source_key)
				SELECT new_voucher_code(), $1, r.code, now() + $3::interval, $4, $5
				FROM rewards r WHERE r.code = $2 AND r.active
				ON CONFLICT DO NOTHING
				RETURNING code, reward_code, expires_at)
			SELECT ins.code, r.name, ins.expires_at FROM ins JOIN rewards r ON r.code = ins.reward_code
			UNION ALL
			SELECT v.code, r.name, v.expires_at FROM vouchers v JOIN rewards r ON r.code = v.reward_code
			WHERE v.source_key = $5
			LIMIT 1`, memberID, reward, campaignVoucherLife, issuer, key).Scan(&code, &name, &expires)
		if err == nil {
			return q.voucherData(code, name, expires), nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("issue a voucher of %s: %w", reward, err)
		}
		var active bool
		if err := q.DB.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM rewards WHERE code = $1 AND active)`, reward).Scan(&active); err != nil {
			return nil, fmt.Errorf("issue a voucher of %s: %w", reward, err)
		}
		if !active {
			return nil, fmt.Errorf("no active reward %q (GET /rewards)", reward)
		}
	}
	return nil, fmt.Errorf("issue a voucher of %s: no free code after two tries", reward)
}

// voucherData shows a voucher's last day in the shop's zone.
func (q *PostgresQueue) voucherData(code, name string, expires time.Time) *campaigns.VoucherData {
	zone := q.DB.Timezone
	if zone == nil {
		zone = time.UTC
	}
	return &campaigns.VoucherData{Code: code, Name: name, ExpiresAt: expires.In(zone).Format("2006-01-02")}
}

// Extras reads the extras as the snapshot would have copied them (models.RecipientExtras); a
// member no longer there has none (the claim found them not mailable anyway).
func (q *PostgresQueue) Extras(ctx context.Context, memberID int64) (Extras, error) {
	_, values, joins := models.RecipientExtras("$2")
	var x Extras
	var discount *float64
	var points, stampCost *int32
	err := q.DB.Pool.QueryRow(ctx, `SELECT `+values+` FROM members m `+joins+` WHERE m.id = $1`,
		memberID, q.DB.ZoneName()).Scan(&x.Tier, &discount, &points, &stampCost)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Extras{}, fmt.Errorf("read the extras of member %d: %w", memberID, err)
	}
	x.Discount, x.Points, x.StampCost = deref(discount), int(deref(points)), int(deref(stampCost))
	return x, nil
}

// Tracker builds a tracking.Tracker, which registers the links in campaign_links.
func (q *PostgresQueue) Tracker(ctx context.Context, campaignID int64, secret []byte, baseURL string, links []string) (LinkTracker, error) {
	t, err := tracking.NewTracker(ctx, q.DB, secret, baseURL, campaignID, links)
	if err != nil {
		return nil, err // not a nil *tracking.Tracker in a non-nil LinkTracker
	}
	return t, nil
}
