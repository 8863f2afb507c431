package dispatch

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regulars/regulars/campaigns"
	"github.com/regulars/regulars/campaigns/mailer"
)

// The tests in this file drive the Sender's lease and retry logic through a queue and a mailer
// in memory, on a clock that moves only when a test moves it: no database, no sleeps.

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeRecipient is a campaign_recipients row.
type fakeRecipient struct {
	Claimed     // Attempts is the row's
	status      string
	leaseUntil  time.Time
	nextAttempt time.Time
	sentAt      time.Time
	cause       string
	retries     []time.Duration
}

// fakeQueue is a Queue in memory with the rules of PostgresQueue, on a fake clock: a claim takes
// due recipients of run 1 (campaign 1) and counts an attempt; marks, outcomes, releases and
// renewals apply only to rows still held under the claim they name. Writes refuse an ended
// context, as the database does.
type fakeQueue struct {
	clock    *fakeClock
	campaign *campaigns.Campaign
	// renewed receives a value after each renewal that kept something (dropped when full).
	renewed chan struct{}

	mu        sync.Mutex
	runStatus string
	rows      []*fakeRecipient
	mailable  map[int64]bool
}

func newFakeQueue(clock *fakeClock, members int) *fakeQueue {
	q := &fakeQueue{clock: clock, renewed: make(chan struct{}, 1), runStatus: "sending", mailable: map[int64]bool{},
		campaign: &campaigns.Campaign{ID: 1, Name: "November", Subject: "Hi {{.Member.FirstName}}",
			Text: "New records are in.", HTML: `<p>New records are in.</p>`, UpdatedAt: clock.Now()}}
	for i := range members {
		id := int64(101 + i)
		q.rows = append(q.rows, &fakeRecipient{Claimed: Claimed{RunID: 1, MemberID: id,
			Email: "kari" + string(rune('a'+i)) + "@example.com"}, status: "queued"})
		q.mailable[id] = true
	}
	return q
}

func (q *fakeQueue) Claim(ctx context.Context, n int, lease time.Duration) ([]Claimed, map[int64]ClaimedMember, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	var out []Claimed
	members := map[int64]ClaimedMember{}
	for _, r := range q.rows {
		if len(out) == n || q.runStatus != "sending" {
			break
		}
		due := (r.status == "queued" && !r.nextAttempt.After(now)) || (r.status == "sending" && r.leaseUntil.Before(now))
		if !due {
			continue
		}
		r.status, r.leaseUntil, r.Attempts = "sending", now.Add(lease), r.Attempts+1
		out = append(out, r.Claimed)
		members[r.MemberID] = ClaimedMember{Data: campaigns.MemberData{FirstName: "Kari", Name: "Kari Nordmann",
			Card: "0000000000001", Language: "en"}, Mailable: q.mailable[r.MemberID]}
	}
	return out, members, nil
}

// update calls change for each claim whose row is still held under it, as PostgresQueue's
// writes do, and refuses an ended context as the database does.
func (q *fakeQueue) update(ctx context.Context, claims []Claimed, change func(i int, r *fakeRecipient)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, c := range claims {
		for _, r := range q.rows {
			if r.RunID == c.RunID && r.MemberID == c.MemberID && r.Attempts == c.Attempts && r.status == "sending" {
				change(i, r)
			}
		}
	}
	return nil
}

func (q *fakeQueue) MarkSent(ctx context.Context, mails []SentMail) error {
	claims := make([]Claimed, len(mails))
	for i, m := range mails {
		claims[i] = m.Claimed
	}
	return q.update(ctx, claims, func(i int, r *fakeRecipient) {
		r.status, r.sentAt, r.leaseUntil = "sent", mails[i].At, time.Time{}
	})
}

func (q *fakeQueue) Record(ctx context.Context, c Claimed, status string, cause error, retryIn time.Duration) error {
	return q.update(ctx, []Claimed{c}, func(_ int, r *fakeRecipient) {
		r.status, r.leaseUntil, r.cause = status, time.Time{}, cause.Error()
		if status == "queued" {
			r.nextAttempt = q.clock.Now().Add(retryIn)
			r.retries = append(r.retries, retryIn)
		}
	})
}

func (q *fakeQueue) Release(ctx context.Context, recs []Claimed) error {
	return q.update(ctx, recs, func(_ int, r *fakeRecipient) {
		r.status, r.leaseUntil, r.Attempts = "queued", time.Time{}, r.Attempts-1
	})
}

func (q *fakeQueue) Renew(ctx context.Context, recs []Claimed, lease time.Duration) (map[Key]bool, error) {
	kept := map[Key]bool{}
	err := q.update(ctx, recs, func(_ int, r *fakeRecipient) {
		r.leaseUntil = q.clock.Now().Add(lease)
		kept[Key{r.RunID, r.MemberID}] = true
	})
	if len(kept) > 0 {
		select {
		case q.renewed <- struct{}{}:
		default:
		}
	}
	return kept, err
}

func (q *fakeQueue) RunStatus(ctx context.Context, id int64) (RunStatus, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return RunStatus{Status: q.runStatus, CampaignID: q.campaign.ID, UpdatedAt: q.campaign.UpdatedAt}, nil
}

func (q *fakeQueue) Campaign(ctx context.Context, id int64) (*campaigns.Campaign, error) {
	return q.campaign, nil
}

func (q *fakeQueue) Extras(ctx context.Context, memberID int64) (Extras, error) {
	return Extras{}, ctx.Err()
}

func (q *fakeQueue) Tracker(ctx context.Context, campaignID int64, secret []byte, baseURL string, links []string) (LinkTracker, error) {
	return untracked{}, nil
}

// Voucher: the fake campaigns' templates ask for none.
func (q *fakeQueue) Voucher(ctx context.Context, flowID *int64, runID, memberID int64, reward string) (*campaigns.VoucherData, error) {
	return nil, errors.New("no vouchers in the fake queue")
}

// row returns a copy of member's row.
func (q *fakeQueue) row(member int64) fakeRecipient {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range q.rows {
		if r.MemberID == member {
			return *r
		}
	}
	panic("no such member")
}

// untracked leaves mails as they are.
type untracked struct{}

func (untracked) Apply(runID, memberID int64, html string) string { return html }

// fakeMailer hands each message to send; it counts and keeps the addressees.
type fakeMailer struct {
	send func(ctx context.Context, n int, m *mailer.Message) error

	mu sync.Mutex
	to []string
}

func (f *fakeMailer) Send(ctx context.Context, m *mailer.Message) error {
	f.mu.Lock()
	f.to = append(f.to, m.To...)
	n := len(f.to)
	f.mu.Unlock()
	if f.send == nil {
		return nil
	}
	return f.send(ctx, n, m)
}

func (f *fakeMailer) Close() error { return nil }

func (f *fakeMailer) sends() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.to)
}

// fakeSender is a Sender on q and m with the fake clock, ready for round.
func fakeSender(clock *fakeClock, q *fakeQueue, m *fakeMailer) *Sender {
	s := &Sender{Queue: q, Mail: m, Now: clock.Now, BaseURL: "https://club.example",
		Secret: []byte("0123456789abcdef0123456789abcdef"), DefaultFrom: testFrom, Batch: 10,
		RetryDelays: []time.Duration{time.Minute, 5 * time.Minute}}
	s.init()
	return s
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
}

// mustRound runs one round of the sender and checks how many recipients it claimed.
func mustRound(t *testing.T, ctx context.Context, s *Sender, wantClaimed int) {
	t.Helper()
	n, err := s.round(ctx)
	if err != nil {
		t.Fatalf("round: %v", err)
	}
	if n != wantClaimed {
		t.Fatalf("round claimed %d, want %d", n, wantClaimed)
	}
}

func TestSenderRetriesOnlyTemporaryFailures(t *testing.T) {
	// A step moves the clock, runs one round and checks how many recipients it claimed and the
	// recipient's status after it.
	type step struct {
		advance     time.Duration
		wantClaimed int
		wantStatus  string
	}
	for _, tc := range []struct {
		name        string
		err         error
		steps       []step
		wantRetries []time.Duration
		wantCause   string
	}{{
		name: "a temporary failure is retried after each delay, then fails after the last attempt",
		err:  &mailer.SendError{Code: 421, Temporary: true, Attempts: 1, Err: errors.New("try again later")},
		steps: []step{
			{0, 1, "queued"},                           // the 1st attempt, again in a minute
			{0, 0, "queued"},                           // not due before its retry time
			{time.Minute - time.Second, 0, "queued"},   // nor a second before
			{time.Second, 1, "queued"},                 // the 2nd attempt, again in 5 minutes
			{5*time.Minute - time.Second, 0, "queued"}, // not due yet
			{time.Second, 1, "failed"},                 // the 3rd and last attempt
			{time.Hour, 0, "failed"},                   // never again
		},
		wantRetries: []time.Duration{time.Minute, 5 * time.Minute},
		wantCause:   "try again later",
	}, {
		name:      "a permanent failure fails at once",
		err:       &mailer.SendError{Code: 550, Attempts: 1, Err: errors.New("no such mailbox")},
		steps:     []step{{0, 1, "failed"}, {time.Hour, 0, "failed"}},
		wantCause: "no such mailbox",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			q := newFakeQueue(clock, 1)
			m := &fakeMailer{send: func(context.Context, int, *mailer.Message) error { return tc.err }}
			s := fakeSender(clock, q, m) // RetryDelays: a minute, then 5 minutes
			member := q.rows[0].MemberID
			claims := 0
			for _, step := range tc.steps {
				clock.Advance(step.advance)
				mustRound(t, context.Background(), s, step.wantClaimed)
				claims += step.wantClaimed
				if r := q.row(member); r.status != step.wantStatus {
					t.Fatalf("%v later: %s, want %s", step.advance, r.status, step.wantStatus)
				}
			}
			r := q.row(member)
			if m.sends() != claims || r.Attempts != claims {
				t.Errorf("%d sends, %d attempts; want %d of each", m.sends(), r.Attempts, claims)
			}
			if !slices.Equal(r.retries, tc.wantRetries) {
				t.Errorf("retried after %v, want %v", r.retries, tc.wantRetries)
			}
			if !strings.Contains(r.cause, tc.wantCause) {
				t.Errorf("error %q, want the relay's reply %q", r.cause, tc.wantCause)
			}
		})
	}
}

func TestSenderRenewsTheLeaseWhileASlowSendIsInFlight(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	q := newFakeQueue(clock, 1)
	const lease = 30 * time.Millisecond // the heartbeat ticks every 10 ms of real time
	member := q.rows[0].MemberID
	var stolen []Claimed
	m := &fakeMailer{send: func(ctx context.Context, _ int, _ *mailer.Message) error {
		// Two thirds of the lease go by on the queue's clock while the relay is slow; the
		// heartbeat renews the lease from there.
		firstLease := q.row(member).leaseUntil
		clock.Advance(2 * lease / 3)
		timeout := time.After(10 * time.Second)
		for !q.row(member).leaseUntil.After(firstLease) {
			select {
			case <-q.renewed:
			case <-timeout:
				return errors.New("the lease was not renewed")
			}
		}
		// Past the first lease, within the renewed one: another sender finds nothing to take.
		clock.Advance(2 * lease / 3)
		var err error
		stolen, _, err = q.Claim(ctx, 10, lease)
		return err
	}}
	s := fakeSender(clock, q, m)
	s.Lease = lease

	mustRound(t, ctx, s, 1)
	if len(stolen) != 0 {
		t.Errorf("another sender claimed %v while the mail was in flight", stolen)
	}
	if r := q.row(member); r.status != "sent" || r.Attempts != 1 || m.sends() != 1 {
		t.Errorf("%s after %d attempt(s) and %d send(s), want sent once", r.status, r.Attempts, m.sends())
	}
}

func TestSenderReleasesClaimedButUnsentRecipientsOnShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := newFakeClock()
	q := newFakeQueue(clock, 5)
	m := &fakeMailer{send: func(ctx context.Context, n int, _ *mailer.Message) error {
		if n == 2 {
			// Shutdown while the relay is slow: the mailer gives up, nothing went out.
			cancel()
			return &mailer.SendError{Temporary: true, Attempts: 1, Err: ctx.Err()}
		}
		return nil
	}}
	s := fakeSender(clock, q, m)

	mustRound(t, ctx, s, 5)
	for i, r := range q.rows {
		want, wantAttempts := "queued", 0 // as if never claimed
		if i == 0 {
			want, wantAttempts = "sent", 1
		}
		if r.status != want || r.Attempts != wantAttempts || !r.leaseUntil.IsZero() {
			t.Errorf("member %d: %s after %d attempt(s), lease until %v; want %s after %d, no lease",
				r.MemberID, r.status, r.Attempts, r.leaseUntil, want, wantAttempts)
		}
	}
}

func TestSenderRecordsAnAcceptedMailAsSentWhenShutdownComesMeanwhile(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := newFakeClock()
	q := newFakeQueue(clock, 3)
	m := &fakeMailer{send: func(ctx context.Context, n int, _ *mailer.Message) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n == 1 {
			clock.Advance(time.Second)
			cancel() // the relay accepted it just as the process was told to stop
		}
		return nil
	}}
	s := fakeSender(clock, q, m)
	sentAt := clock.Now().Add(time.Second)

	mustRound(t, ctx, s, 3)
	if r := q.rows[0]; r.status != "sent" || !r.sentAt.Equal(sentAt) {
		t.Errorf("the accepted mail: %s at %v, want sent at %v (the sender's clock)", r.status, r.sentAt, sentAt)
	}
	for _, r := range q.rows[1:] {
		if r.status != "queued" || r.Attempts != 0 {
			t.Errorf("member %d: %s after %d attempt(s), want released", r.MemberID, r.status, r.Attempts)
		}
	}
	if m.sends() != 1 {
		t.Errorf("%d sends, want 1", m.sends())
	}
}
