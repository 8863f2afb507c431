package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/time/rate"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/models"
)

// Defaults of the Sender.
const (
	DefaultConcurrency = 4
	DefaultRate        = 50
	DefaultBatch       = 10
	DefaultClaim       = 50
	DefaultLease       = 30 * time.Second
	DefaultPoll        = 500 * time.Millisecond
	// statusTTL is how long a worker trusts the status of a run it read: pause and cancel are
	// seen within this long (plus one mail).
	statusTTL = 500 * time.Millisecond
)

// DefaultRetryDelays are the waits after the 1st, 2nd, ... temporary failure of a mail; after
// the last one the recipient fails (MaxAttempts in all).
var DefaultRetryDelays = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute}

// Sender mails the recipients of sending runs: Concurrency workers, each with its own SMTP
// connection (give Mail a pool of at least Concurrency, see mailer.WithPoolSize, and no retries
// of its own, see mailer.WithRetry: retries are rescheduled here, so a slow relay never holds a
// claimed mail past its lease), throttled together to Rate mails a second. Set the fields, then
// call Run.
type Sender struct {
	DB   *models.DB
	Mail mailer.Sender
	// BaseURL is the public address the preferences and unsubscribe links point at; Secret
	// signs their tokens (the club pages verify them with it).
	BaseURL string
	Secret  []byte
	// DefaultFrom is the author of campaigns without their own (REGULARS_MAIL_FROM).
	DefaultFrom string
	Log         *slog.Logger

	// Concurrency is the number of workers (0: DefaultConcurrency). Rate is the most mails a
	// second this Sender sends (0: unlimited). Batch is how many mails the relay accepted a
	// worker records at once (0: DefaultBatch): the most that a crash of the process may send
	// twice per worker. Claim is how many recipients a worker claims at once (0: DefaultClaim,
	// and never fewer than Batch); Lease how long a claim holds (0: DefaultLease); Poll how
	// long an idle worker waits before looking again (0: DefaultPoll).
	Concurrency int
	Rate        float64
	Batch       int
	Claim       int
	Lease       time.Duration
	Poll        time.Duration
	// RetryDelays are the waits after temporary failures (nil: DefaultRetryDelays); a mail is
	// tried len(RetryDelays)+1 times.
	RetryDelays []time.Duration

	initOnce sync.Once
	limiter  *rate.Limiter
	mu       sync.Mutex
	runs     map[int64]*runState
	compiled map[int64]*compiledCampaign
}

// runState is a run's status as last read.
type runState struct {
	status     string
	campaignID int64
	updatedAt  time.Time // the campaign's, to notice an edit made while paused
	readAt     time.Time
}

// compiledCampaign is a campaign's parsed templates and its link tracker (campaigns/tracking),
// valid while its updated_at is unchanged.
type compiledCampaign struct {
	updatedAt time.Time
	compiled  *campaigns.Compiled
	tracker   *tracking.Tracker
	err       error
}

func (s *Sender) init() {
	s.initOnce.Do(func() {
		if s.Rate > 0 {
			s.limiter = rate.NewLimiter(rate.Limit(s.Rate), 1)
		} else {
			s.limiter = rate.NewLimiter(rate.Inf, 0)
		}
		s.runs = map[int64]*runState{}
		s.compiled = map[int64]*compiledCampaign{}
	})
}

func (s *Sender) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Sender) lease() time.Duration {
	if s.Lease > 0 {
		return s.Lease
	}
	return DefaultLease
}

func (s *Sender) retryDelays() []time.Duration {
	if s.RetryDelays != nil {
		return s.RetryDelays
	}
	return DefaultRetryDelays
}

// Run sends until ctx ends, then returns once every worker has stopped; mails claimed but not
// sent go back to the queue.
func (s *Sender) Run(ctx context.Context) {
	s.init()
	n := s.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { s.worker(ctx) })
	}
	wg.Wait()
}

func (s *Sender) worker(ctx context.Context) {
	poll := s.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	for ctx.Err() == nil {
		n, err := s.round(ctx)
		if err != nil && ctx.Err() == nil {
			s.log().Error("campaign sender", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(poll):
		}
	}
}

// claimed is one recipient a worker holds.
type claimed struct {
	runID, memberID int64
	email           string
	attempts        int
}

// claim takes up to n due recipients of sending runs — queued ones whose retry time has come,
// and ones whose lease expired (in flight when their process died) — and, in the same
// statement, what rendering needs of their members: the member, its home store and its tier
// now, and whether it is still mailable (consent withdrawn, erased or suppressed since the
// snapshot: not mailed).
func (s *Sender) claim(ctx context.Context, n int) ([]claimed, map[int64]memberInfo, error) {
	rows, err := s.DB.Pool.Query(ctx, `
		WITH picked AS MATERIALIZED (
			SELECT cr.run_id, cr.member_id
			FROM campaign_runs r JOIN campaign_recipients cr ON cr.run_id = r.id
			WHERE r.status = 'sending'
			  AND cr.status IN ('queued', 'sending')
			  AND ((cr.status = 'queued' AND (cr.next_attempt_at IS NULL OR cr.next_attempt_at <= now()))
			    OR (cr.status = 'sending' AND cr.lease_until < now()))
			LIMIT $1
			FOR UPDATE OF cr SKIP LOCKED
		), got AS (
			UPDATE campaign_recipients cr
			SET status = 'sending', lease_until = now() + $2::interval, attempts = cr.attempts + 1
			FROM picked p
			WHERE cr.run_id = p.run_id AND cr.member_id = p.member_id
			RETURNING cr.run_id, cr.member_id, cr.email, cr.attempts
		)
		SELECT got.run_id, got.member_id, got.email, got.attempts,
			coalesce(m.card, ''), coalesce(m.name, ''), coalesce(st.code, ''), coalesce(m.language, ''),
			t.name, coalesce(t.discount, 0),
			coalesce(`+segments.Mailable+` AND NOT EXISTS (SELECT 1 FROM email_suppressions es
				WHERE es.email = lower(m.email) AND es.suppressed_at IS NOT NULL), false)
		FROM got
		LEFT JOIN members m ON m.id = got.member_id
		LEFT JOIN stores st ON st.id = m.home_store_id
		LEFT JOIN LATERAL (
			SELECT t.name, t.discount_percent::float8 AS discount
			FROM (SELECT coalesce(sum(CASE WHEN kind = 'sale' THEN amount_minor ELSE -amount_minor END), 0) AS net
			      FROM transactions WHERE member_id = m.id AND occurred_at > now() - make_interval(days => $3)) spend
			JOIN tiers t ON t.min_spend_minor <= spend.net
			ORDER BY t.min_spend_minor DESC LIMIT 1
		) t ON true`, n, s.lease(), models.TierWindowDays)
	if err != nil {
		return nil, nil, fmt.Errorf("claim recipients: %w", err)
	}
	defer rows.Close()
	var out []claimed
	members := map[int64]memberInfo{}
	for rows.Next() {
		var c claimed
		var m models.Member
		var tier *string
		var discount float64
		var mailable bool
		if err := rows.Scan(&c.runID, &c.memberID, &c.email, &c.attempts,
			&m.Card, &m.Name, &m.HomeStore, &m.Language, &tier, &discount, &mailable); err != nil {
			return nil, nil, fmt.Errorf("claim recipients: %w", err)
		}
		m.ID = c.memberID
		out = append(out, c)
		members[m.ID] = memberInfo{data: campaigns.NewMemberData(&m, tier, discount), mailable: mailable}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("claim recipients: %w", err)
	}
	return out, members, nil
}

// round claims recipients and sends them; it returns how many recipients it claimed.
func (s *Sender) round(ctx context.Context) (int, error) {
	batch := s.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	claimSize := s.Claim
	if claimSize <= 0 {
		claimSize = DefaultClaim
	}
	claimSize = max(claimSize, batch)
	// Wait for the first token before claiming, so that a slow rate does not keep claimed
	// recipients waiting (and leased) for long.
	if err := s.limiter.Wait(ctx); err != nil {
		return 0, nil
	}
	recs, members, err := s.claim(ctx, claimSize)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	// While this worker holds recipients, their lease is renewed every third of it, so that a
	// slow rate or a slow relay never lets another sender take over a mail being sent: only a
	// process that died (or lost the database) leaves leases to expire.
	h := &holding{recs: append([]claimed(nil), recs...), lost: map[key]bool{}} // a copy: hold rebuilds it in place
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	var hb sync.WaitGroup
	hb.Go(func() { s.heartbeat(hbCtx, h) })
	defer func() {
		stopHeartbeat()
		hb.Wait()
	}()

	// Mails the relay accepted are recorded together, Batch at a time and when the round ends
	// (one statement and one commit per batch rather than per mail); until then they stay held,
	// their lease renewed.
	var sent []sentMail
	stop := func(back []claimed, err error) (int, error) {
		if ferr := s.recordSent(context.WithoutCancel(ctx), sent); ferr != nil && err == nil {
			err = ferr
		}
		s.release(back)
		return len(recs), err
	}
	pending := recs
	for first := true; len(pending) > 0; first = false {
		if !first {
			if err := s.limiter.Wait(ctx); err != nil {
				return stop(pending, nil)
			}
		}
		state, err := s.runState(ctx, pending[0].runID)
		if err != nil || state.status != "sending" {
			// Paused or cancelled (or the status could not be read): the rest go back.
			return stop(pending, err)
		}
		r := pending[0]
		pending = pending[1:]
		if h.isLost(r) {
			continue // another sender has it (this one stalled for longer than a lease)
		}
		ok, err := s.deliver(ctx, r, state, members[r.memberID])
		if ok {
			sent = append(sent, sentMail{claimed: r, at: time.Now()})
			if len(sent) >= batch && err == nil {
				if rerr := s.recordSent(context.WithoutCancel(ctx), sent); rerr != nil {
					// They stay leased until the lease ends, then count as in flight.
					sent = nil
					return stop(pending, rerr)
				}
				sent = sent[:0]
			}
		}
		h.hold(sent, pending)
		if err != nil {
			if ctx.Err() != nil {
				return stop(append([]claimed{r}, pending...), nil)
			}
			return stop(pending, err)
		}
	}
	return stop(nil, nil)
}

// sentMail is a mail the relay accepted whose outcome is not recorded yet.
type sentMail struct {
	claimed
	at time.Time
}

// asyncCommit, queued before a statement in a pgx.Batch, makes that statement commit without
// waiting for the WAL flush: a batch runs as one implicit transaction, so SET LOCAL holds for it
// alone. The marks of sent mails use it (waiting for a flush per batch of 10 mails held each
// worker's connection idle; docs/benchmarks.md, "Campaign sending"). Only a crash of PostgreSQL
// or of its machine can lose such a commit (the last few hundred milliseconds of them); see the
// package documentation for what that may repeat. Claims commit normally, so a claim is never
// lost while its worker goes on sending.
const asyncCommit = `SET LOCAL synchronous_commit = off`

// recordSent records mails the relay accepted as sent, unless another worker has claimed them
// since, with three tries like record.
func (s *Sender) recordSent(ctx context.Context, mails []sentMail) error {
	if len(mails) == 0 {
		return nil
	}
	recs := make([]claimed, len(mails))
	at := make([]time.Time, len(mails))
	for i, m := range mails {
		recs[i], at[i] = m.claimed, m.at
	}
	runs, members, attempts := columns(recs)
	var err error
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
		b := &pgx.Batch{}
		b.Queue(asyncCommit)
		b.Queue(`
			UPDATE campaign_recipients cr SET status = 'sent', error = NULL, lease_until = NULL,
				sent_at = u.sent_at, next_attempt_at = NULL
			FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::timestamptz[]) AS u(run_id, member_id, attempts, sent_at)
			WHERE cr.run_id = u.run_id AND cr.member_id = u.member_id AND cr.attempts = u.attempts
			  AND `+stillSending, runs, members, attempts, at)
		if err = s.DB.Pool.SendBatch(ctx, b).Close(); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		// Sent mails whose outcome is lost are claimed again after their lease: they count
		// as in flight (see the package documentation).
		return fmt.Errorf("record %d sent campaign mails: %w", len(mails), err)
	}
	return nil
}

// key identifies a recipient.
type key struct{ run, member int64 }

// holding is what a worker holds, shared with its heartbeat.
type holding struct {
	mu   sync.Mutex
	recs []claimed
	lost map[key]bool
}

// hold makes the sent but unrecorded mails and the pending ones what h holds (rebuilding
// h.recs in place: the heartbeat copies it under h.mu).
func (h *holding) hold(sent []sentMail, pending []claimed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = h.recs[:0]
	for _, m := range sent {
		h.recs = append(h.recs, m.claimed)
	}
	h.recs = append(h.recs, pending...)
}

func (h *holding) isLost(r claimed) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost[key{r.runID, r.memberID}]
}

// heartbeat renews the lease of what h holds every third of the lease until ctx ends.
func (s *Sender) heartbeat(ctx context.Context, h *holding) {
	ticker := time.NewTicker(s.lease() / 3)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		h.mu.Lock()
		recs := append([]claimed(nil), h.recs...)
		h.mu.Unlock()
		if len(recs) == 0 {
			continue
		}
		kept, err := s.renew(ctx, recs)
		if err != nil {
			if ctx.Err() == nil {
				s.log().Error("renew campaign recipients' lease", "err", err)
			}
			continue
		}
		h.mu.Lock()
		for _, r := range recs {
			if k := (key{r.runID, r.memberID}); !kept[k] {
				h.lost[k] = true
			}
		}
		h.mu.Unlock()
	}
}

// memberInfo is what rendering needs of a member, and whether it may still be mailed.
type memberInfo struct {
	data     campaigns.MemberData
	mailable bool
}

// runState returns run id's status, read from the database at most statusTTL ago.
func (s *Sender) runState(ctx context.Context, id int64) (runState, error) {
	s.mu.Lock()
	st, ok := s.runs[id]
	s.mu.Unlock()
	if ok && time.Since(st.readAt) < statusTTL {
		return *st, nil
	}
	var fresh runState
	err := s.DB.Pool.QueryRow(ctx, `
		SELECT r.status, r.campaign_id, c.updated_at
		FROM campaign_runs r JOIN campaigns c ON c.id = r.campaign_id WHERE r.id = $1`, id).
		Scan(&fresh.status, &fresh.campaignID, &fresh.updatedAt)
	if err != nil {
		return runState{}, fmt.Errorf("read status of run %d: %w", id, err)
	}
	fresh.readAt = time.Now()
	s.mu.Lock()
	s.runs[id] = &fresh
	s.mu.Unlock()
	return fresh, nil
}

// compile returns the campaign's compiled templates and tracker, built once per process and
// edit of the campaign.
func (s *Sender) compile(ctx context.Context, st runState) (*compiledCampaign, error) {
	s.mu.Lock()
	c, ok := s.compiled[st.campaignID]
	s.mu.Unlock()
	if ok && c.updatedAt.Equal(st.updatedAt) {
		return c, c.err
	}
	camp, err := campaigns.Get(ctx, s.DB, st.campaignID)
	if err != nil {
		return nil, err
	}
	out := &compiledCampaign{updatedAt: camp.UpdatedAt}
	out.compiled, out.err = campaigns.Compile(camp, s.DefaultFrom)
	if out.err == nil {
		// The tracked links are the template's own, seen in renders for two sample members.
		var a, b string
		if a, b, out.err = out.compiled.SampleHTML(ctx, s.BaseURL); out.err == nil {
			links := tracking.CommonLinks(s.BaseURL, a, b)
			if out.tracker, err = tracking.NewTracker(ctx, s.DB, s.Secret, s.BaseURL, camp.ID, links); err != nil {
				return nil, err
			}
		}
	}
	s.mu.Lock()
	s.compiled[st.campaignID] = out
	s.mu.Unlock()
	return out, out.err
}

// errNotMailable fails a recipient who may no longer be mailed.
var errNotMailable = errors.New("no longer mailable: consent withdrawn, erased or suppressed since the run started")

// deliver renders and sends one claimed mail. A mail the relay accepted is not recorded here:
// sent is true and the caller records it with the rest of its batch (recordSent); every other
// outcome is recorded at once. It returns an error only when an outcome could not be recorded
// or the send was interrupted by ctx.
func (s *Sender) deliver(ctx context.Context, r claimed, st runState, m memberInfo) (sent bool, err error) {
	if !m.mailable {
		return false, s.record(ctx, r, "failed", errNotMailable, 0)
	}
	c, err := s.compile(ctx, st)
	if err != nil {
		if models.ErrorCode(err) == models.EINVALID {
			return false, s.record(ctx, r, "failed", err, 0)
		}
		return false, err
	}
	msg, err := c.compiled.Render(ctx, campaigns.Recipient{RunID: r.runID, MemberID: r.memberID, To: r.email,
		Member: m.data, Links: campaigns.MemberLinks(s.BaseURL, s.Secret, r.memberID, time.Now())})
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err() // shutting down: the render was stopped, not the mail's fault
		}
		// Over its budget, or a member link misused: this recipient fails, the run goes on.
		return false, s.record(ctx, r, "failed", err, 0)
	}
	// Links become signed click-tracking redirects (and the open pixel is added when the
	// campaign tracks opens); the club links in the footer stay as they are.
	msg.HTML = c.tracker.Apply(r.runID, r.memberID, msg.HTML)
	err = s.Mail.Send(ctx, msg)
	switch {
	case err == nil:
		// Recorded by the caller even when ctx ended meanwhile: the mail is out.
		return true, nil
	case mailer.IsPermanent(err):
		return false, s.record(context.WithoutCancel(ctx), r, "failed", err, 0)
	case ctx.Err() != nil:
		// Shutting down: the mailer gave up waiting, nothing went out; the caller releases it.
		return false, ctx.Err()
	case mailer.IsTemporary(err) && r.attempts <= len(s.retryDelays()):
		return false, s.record(ctx, r, "queued", err, s.retryDelays()[r.attempts-1])
	default:
		return false, s.record(ctx, r, "failed", err, 0)
	}
}

// record stores a recipient's outcome, unless another worker has claimed it since.
func (s *Sender) record(ctx context.Context, r claimed, status string, cause error, retryIn time.Duration) error {
	var msg *string
	if cause != nil {
		text := cause.Error()
		if len(text) > 1000 {
			text = text[:1000]
		}
		text = strings.ToValidUTF8(text, "?")
		msg = &text
	}
	var err error
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
		if err = s.store(ctx, r, status, msg, retryIn); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		// A sent mail whose outcome is lost is claimed again after its lease: it counts as
		// in flight (see the package documentation).
		return fmt.Errorf("record outcome of run %d member %d: %w", r.runID, r.memberID, err)
	}
	if status != "sent" {
		s.log().Warn("campaign mail not sent", "run_id", r.runID, "member_id", r.memberID,
			"attempt", r.attempts, "outcome", status, "err", cause)
	}
	return nil
}

// stillSending is "the row is still claimed", written so that it does not imply the predicate
// of the partial index campaign_recipients_open (run_id) WHERE status IN ('queued', 'sending'):
// with a plain status = 'sending', PostgreSQL's generic plan for these one-row updates used that
// index with run_id alone and filtered every open row of the run for the member, which made a
// run quadratic (0.7 ms per recorded mail at 10,000 recipients, growing with the run; see
// docs/benchmarks.md, "Campaign sending"). Written this way only the primary key fits.
const stillSending = `(cr.status || '') = 'sending'`

func (s *Sender) store(ctx context.Context, r claimed, status string, msg *string, retryIn time.Duration) error {
	_, err := s.DB.Pool.Exec(ctx, `
		UPDATE campaign_recipients cr SET status = $4, error = $5, lease_until = NULL,
			sent_at = CASE WHEN $4 = 'sent' THEN now() END,
			next_attempt_at = CASE WHEN $4 = 'queued' THEN now() + $6::interval END
		WHERE run_id = $1 AND member_id = $2 AND `+stillSending+` AND attempts = $3`,
		r.runID, r.memberID, r.attempts, status, msg, retryIn)
	return err
}

// release puts claimed but unsent recipients back in the queue, as if never claimed.
func (s *Sender) release(recs []claimed) {
	if len(recs) == 0 {
		return
	}
	runs, members, attempts := columns(recs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.DB.Pool.Exec(ctx, `
		UPDATE campaign_recipients cr SET status = 'queued', lease_until = NULL, attempts = cr.attempts - 1
		FROM unnest($1::bigint[], $2::bigint[], $3::int[]) AS u(run_id, member_id, attempts)
		WHERE cr.run_id = u.run_id AND cr.member_id = u.member_id AND cr.attempts = u.attempts
		  AND `+stillSending, runs, members, attempts); err != nil {
		// They come back when their lease expires.
		s.log().Error("release claimed campaign recipients", "err", err)
	}
}

// renew extends the lease of recipients still held and returns which ones are.
func (s *Sender) renew(ctx context.Context, recs []claimed) (map[key]bool, error) {
	runs, members, attempts := columns(recs)
	rows, err := s.DB.Pool.Query(ctx, `
		UPDATE campaign_recipients cr SET lease_until = now() + $4::interval
		FROM unnest($1::bigint[], $2::bigint[], $3::int[]) AS u(run_id, member_id, attempts)
		WHERE cr.run_id = u.run_id AND cr.member_id = u.member_id AND cr.attempts = u.attempts
		  AND `+stillSending+`
		RETURNING cr.run_id, cr.member_id`, runs, members, attempts, s.lease())
	if err != nil {
		return nil, fmt.Errorf("renew lease: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowToStructByPos[key])
	if err != nil {
		return nil, fmt.Errorf("renew lease: %w", err)
	}
	kept := make(map[key]bool, len(ids))
	for _, id := range ids {
		kept[id] = true
	}
	return kept, nil
}

func columns(recs []claimed) (runs, members []int64, attempts []int32) {
	for _, r := range recs {
		runs = append(runs, r.runID)
		members = append(members, r.memberID)
		attempts = append(attempts, int32(r.attempts))
	}
	return runs, members, attempts
}
