package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/mailer"
	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/models"
)

// Defaults of the Sender.
const (
	DefaultConcurrency = 4
	DefaultRate        = 50
	// DefaultBatch is a whole claim: the marks of sent mails are one statement and commit per
	// claim rather than per 10 mails (docs/benchmarks.md, "Sending speed"), and a crash may
	// repeat at most one claim per worker (issue 14's bound).
	DefaultBatch = DefaultClaim
	DefaultClaim = 50
	DefaultLease = 30 * time.Second
	DefaultPoll  = 500 * time.Millisecond
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
// claimed mail past its lease), throttled together to Rate mails a second. It sees storage only
// through Queue and mail only through Mail. Set the fields, then call Run.
type Sender struct {
	// DB is the database of the default Queue, a PostgresQueue on it.
	DB *models.DB
	// Queue is where the recipients come from and their outcomes go (nil: PostgresQueue{DB}).
	Queue Queue
	Mail  mailer.Sender
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
	// Now is the clock of the sent times, the member links' issue time and the age of a run's
	// status (nil: time.Now). Leases and retry times are measured on the Queue's clock.
	Now func() time.Time

	initOnce sync.Once
	queue    Queue
	limiter  *rate.Limiter
	mu       sync.Mutex
	runs     map[int64]*runState
	compiled map[int64]*compiledCampaign
}

// runState is a run's status as last read, and when (by Now).
type runState struct {
	RunStatus
	readAt time.Time
}

// compiledCampaign is a campaign's parsed templates and its link tracker (campaigns/tracking),
// valid while its updated_at is unchanged.
type compiledCampaign struct {
	updatedAt time.Time
	flowID    *int64 // set for a flow's mail step
	// extras tells that the templates may show a member's extras (needsExtras).
	extras   bool
	compiled *campaigns.Compiled
	tracker  LinkTracker
	err      error
}

func (s *Sender) init() {
	s.initOnce.Do(func() {
		s.queue = s.Queue
		if s.queue == nil {
			s.queue = &PostgresQueue{DB: s.DB}
		}
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

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
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
	// The queue claims the recipients and, in the same statement, what rendering needs of
	// their members (those no longer mailable are failed, not mailed).
	recs, members, err := s.queue.Claim(ctx, claimSize, s.lease())
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	// While this worker holds recipients, their lease is renewed every third of it, so that a
	// slow rate or a slow relay never lets another sender take over a mail being sent: only a
	// process that died (or lost the database) leaves leases to expire.
	h := &holding{recs: append([]Claimed(nil), recs...), lost: map[Key]bool{}} // a copy: hold rebuilds it in place
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
	var sent []SentMail
	stop := func(back []Claimed, err error) (int, error) {
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
		state, err := s.runState(ctx, pending[0].RunID)
		if err != nil || state.Status != "sending" {
			// Paused or cancelled (or the status could not be read): the rest go back.
			return stop(pending, err)
		}
		r := pending[0]
		pending = pending[1:]
		if h.isLost(r) {
			continue // another sender has it (this one stalled for longer than a lease)
		}
		ok, err := s.deliver(ctx, r, state, members[r.MemberID])
		if ok {
			sent = append(sent, SentMail{Claimed: r, At: s.now()})
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
				return stop(append([]Claimed{r}, pending...), nil)
			}
			return stop(pending, err)
		}
	}
	return stop(nil, nil)
}

// recordSent records mails the relay accepted as sent, unless another worker has claimed them
// since.
func (s *Sender) recordSent(ctx context.Context, mails []SentMail) error {
	if len(mails) == 0 {
		return nil
	}
	return s.queue.MarkSent(ctx, mails)
}

// record stores a recipient's outcome, unless another worker has claimed it since.
func (s *Sender) record(ctx context.Context, r Claimed, status string, cause error, retryIn time.Duration) error {
	if err := s.queue.Record(ctx, r, status, cause, retryIn); err != nil {
		return err
	}
	if status != "sent" {
		s.log().Warn("campaign mail not sent", "run_id", r.RunID, "member_id", r.MemberID,
			"attempt", r.Attempts, "outcome", status, "err", cause)
	}
	return nil
}

// release puts claimed but unsent recipients back in the queue, as if never claimed.
func (s *Sender) release(recs []Claimed) {
	if len(recs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.queue.Release(ctx, recs); err != nil {
		// They come back when their lease expires.
		s.log().Error("release claimed campaign recipients", "err", err)
	}
}

// holding is what a worker holds, shared with its heartbeat.
type holding struct {
	mu   sync.Mutex
	recs []Claimed
	lost map[Key]bool
}

// hold makes the sent but unrecorded mails and the pending ones what h holds (rebuilding
// h.recs in place: the heartbeat copies it under h.mu).
func (h *holding) hold(sent []SentMail, pending []Claimed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = h.recs[:0]
	for _, m := range sent {
		h.recs = append(h.recs, m.Claimed)
	}
	h.recs = append(h.recs, pending...)
}

func (h *holding) isLost(r Claimed) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost[Key{r.RunID, r.MemberID}]
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
		recs := append([]Claimed(nil), h.recs...)
		h.mu.Unlock()
		if len(recs) == 0 {
			continue
		}
		kept, err := s.queue.Renew(ctx, recs, s.lease())
		if err != nil {
			if ctx.Err() == nil {
				s.log().Error("renew campaign recipients' lease", "err", err)
			}
			continue
		}
		h.mu.Lock()
		for _, r := range recs {
			if k := (Key{r.RunID, r.MemberID}); !kept[k] {
				h.lost[k] = true
			}
		}
		h.mu.Unlock()
	}
}

// runState returns run id's status, read from the queue at most statusTTL ago.
func (s *Sender) runState(ctx context.Context, id int64) (runState, error) {
	s.mu.Lock()
	st, ok := s.runs[id]
	s.mu.Unlock()
	now := s.now()
	if ok && now.Sub(st.readAt) < statusTTL {
		return *st, nil
	}
	status, err := s.queue.RunStatus(ctx, id)
	if err != nil {
		return runState{}, err
	}
	fresh := runState{RunStatus: status, readAt: now}
	s.mu.Lock()
	s.runs[id] = &fresh
	s.mu.Unlock()
	return fresh, nil
}

// compile returns the campaign's compiled templates and tracker, built once per process and
// edit of the campaign.
func (s *Sender) compile(ctx context.Context, st runState) (*compiledCampaign, error) {
	s.mu.Lock()
	c, ok := s.compiled[st.CampaignID]
	s.mu.Unlock()
	if ok && c.updatedAt.Equal(st.UpdatedAt) {
		return c, c.err
	}
	camp, err := s.queue.Campaign(ctx, st.CampaignID)
	if err != nil {
		return nil, err
	}
	out := &compiledCampaign{updatedAt: camp.UpdatedAt, flowID: camp.FlowID, extras: needsExtras(camp)}
	out.compiled, out.err = campaigns.Compile(camp, s.DefaultFrom)
	if out.err == nil {
		// The tracked links are the template's own, seen in renders for two sample members.
		var a, b string
		if a, b, out.err = out.compiled.SampleHTML(ctx, s.BaseURL); out.err == nil {
			links := tracking.CommonLinks(s.BaseURL, a, b)
			if out.tracker, err = s.queue.Tracker(ctx, camp.ID, s.Secret, s.BaseURL, links); err != nil {
				return nil, err
			}
		}
	}
	s.mu.Lock()
	s.compiled[st.CampaignID] = out
	s.mu.Unlock()
	return out, out.err
}

// recipientVouchers is the campaigns.VoucherSource of one recipient: its queue's vouchers.
type recipientVouchers struct {
	q               Queue
	flowID          *int64
	runID, memberID int64
}

func (v recipientVouchers) Voucher(ctx context.Context, reward string) (*campaigns.VoucherData, error) {
	return v.q.Voucher(ctx, v.flowID, v.runID, v.memberID, reward)
}

// errNotMailable fails a recipient who may no longer be mailed.
var errNotMailable = errors.New("no longer mailable: consent withdrawn, erased or suppressed since the run started")

// deliver renders and sends one claimed mail. A mail the relay accepted is not recorded here:
// sent is true and the caller records it with the rest of its batch (recordSent); every other
// outcome is recorded at once. It returns an error only when an outcome could not be recorded
// or the send was interrupted by ctx.
func (s *Sender) deliver(ctx context.Context, r Claimed, st runState, m ClaimedMember) (sent bool, err error) {
	if !m.Mailable {
		return false, s.record(ctx, r, "failed", errNotMailable, 0)
	}
	c, err := s.compile(ctx, st)
	if err != nil {
		if models.ErrorCode(err) == models.EINVALID {
			return false, s.record(ctx, r, "failed", err, 0)
		}
		return false, err
	}
	if c.extras && !m.Extras {
		// The run was snapshotted without the extras and its campaign has been edited to show
		// them since (while paused): they are read now, one member at a time (a rare path).
		x, err := s.queue.Extras(ctx, r.MemberID)
		if err != nil {
			return false, err
		}
		m = m.withExtras(r.MemberID, x)
	}
	msg, err := c.compiled.Render(ctx, campaigns.Recipient{RunID: r.RunID, MemberID: r.MemberID, To: r.Email,
		Member: m.Data, Links: campaigns.MemberLinks(s.BaseURL, s.Secret, r.MemberID, s.now()),
		Vouchers: recipientVouchers{q: s.queue, flowID: c.flowID, runID: r.RunID, memberID: r.MemberID}})
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err() // shutting down: the render was stopped, not the mail's fault
		}
		// Over its budget, or a member link misused: this recipient fails, the run goes on.
		return false, s.record(ctx, r, "failed", err, 0)
	}
	// Links become signed click-tracking redirects (and the open pixel is added when the
	// campaign tracks opens); the club links in the footer stay as they are.
	msg.HTML = c.tracker.Apply(r.RunID, r.MemberID, msg.HTML)
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
	case mailer.IsTemporary(err) && r.Attempts <= len(s.retryDelays()):
		return false, s.record(ctx, r, "queued", err, s.retryDelays()[r.Attempts-1])
	default:
		return false, s.record(ctx, r, "failed", err, 0)
	}
}
