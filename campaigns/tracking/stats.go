package tracking

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models"
	"gonum.org/v1/gonum/stat/distuv"
)

// DefaultAttributionDays is N of the attribution window (sent_at, sent_at + N days].
const DefaultAttributionDays = 7

// StatsOptions are the settings of the statistics.
type StatsOptions struct {
	// AttributionDays is N: purchases within N days after a mail count for it (0: the default).
	AttributionDays int
	// CostPerMail is the cost of one sent mail in minor units of the stores' currency; 0 means
	// unknown, and then no ROI is given.
	CostPerMail int64
	// Now is the moment the figures are read at, which decides whether they are final (zero:
	// the clock; tests fix it).
	Now time.Time
}

// MinGroupMembers is the fewest members each group (mailed and held out) needs before the
// holdout comparison states a verdict about the lift, even when every window has closed: with
// fewer, skewed spending makes the interval's 95 % a poor promise. Flows use the same minimum.
const MinGroupMembers = 30

// The verdicts about a lift, from where its 95 % interval lies.
const (
	VerdictAboveZero    = "above_zero"
	VerdictBelowZero    = "below_zero"
	VerdictIncludesZero = "includes_zero"
)

// Stats are a campaign's statistics, per run and in total. docs/campaign-stats.md has the formulas.
type Stats struct {
	CampaignID      int64      `json:"campaign_id"`
	AttributionDays int        `json:"attribution_days"`
	CostPerMail     int64      `json:"cost_per_mail"`
	TrackOpens      bool       `json:"track_opens"`
	Runs            []RunStats `json:"runs"`
	Total           Figures    `json:"total"`
	// Preliminary is true until the attribution window has closed for every recipient of
	// every run (and while nothing has been sent); FinalAt is when it closes, null once final
	// or while a run is still sending. While preliminary no holdout has a verdict.
	Preliminary bool       `json:"preliminary"`
	FinalAt     *time.Time `json:"final_at"`
}

// RunStats are the figures of one run.
type RunStats struct {
	RunID        int64      `json:"run_id"`
	ScheduledFor time.Time  `json:"scheduled_for"`
	Status       string     `json:"status"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
	// Preliminary and FinalAt are the run's own, as Stats' are for all runs.
	Preliminary bool       `json:"preliminary"`
	FinalAt     *time.Time `json:"final_at"`
	// closes is when the run's last window closes (null: still sending, or not started);
	// measured is whether the run has anyone to measure (sent, held out, or still to send).
	closes   *time.Time
	measured bool
	Figures
}

// Figures are the counts, clicks and revenue of a run or of all runs together.
type Figures struct {
	// Recipients are the members mailed (not held out); HeldOut those held out.
	Recipients int64 `json:"recipients"`
	HeldOut    int64 `json:"held_out"`
	Sent       int64 `json:"sent"`
	Failed     int64 `json:"failed"`
	Bounced    int64 `json:"bounced"`
	// Delivered is Sent - Bounced.
	Delivered int64 `json:"delivered"`
	// Unsubscribed counts recipients who withdrew their marketing consent within the
	// attribution window after their mail.
	Unsubscribed int64 `json:"unsubscribed"`
	// Opens and UniqueOpeners are null unless the campaign tracks opens.
	Opens          *int64 `json:"opens"`
	UniqueOpeners  *int64 `json:"unique_openers"`
	Clicks         int64  `json:"clicks"`
	UniqueClickers int64  `json:"unique_clickers"`
	// ClickThroughRate is UniqueClickers / Delivered, null when nothing was delivered.
	ClickThroughRate *float64    `json:"click_through_rate"`
	Links            []LinkStats `json:"links"`
	Revenue          Revenue     `json:"revenue"`
	// Redemptions are the rewards redeemed at the tills (not cancelled) by the sent recipients
	// within the attribution window after their mail; HeldOutRedemptions by the held-out
	// members within it after the run started.
	Redemptions        int64 `json:"redemptions"`
	HeldOutRedemptions int64 `json:"held_out_redemptions"`
}

// LinkStats are the clicks on one tracked link.
type LinkStats struct {
	URL              string   `json:"url"`
	Clicks           int64    `json:"clicks"`
	UniqueClickers   int64    `json:"unique_clickers"`
	ClickThroughRate *float64 `json:"click_through_rate"`
}

// Revenue is what the mails brought back to the tills, in minor units of Currency.
type Revenue struct {
	// Currency is the currency of the figures: the one most purchases in the attribution
	// windows of the campaign's recipients were made in; null when there were none.
	Currency *string `json:"currency"`
	// OtherCurrencies is true when some of those purchases were in another currency; they are
	// left out of every figure.
	OtherCurrencies bool `json:"other_currencies"`
	// Attributed is the net purchases (sales minus refunds) of the sent recipients within the
	// attribution window after their mail.
	Attributed int64 `json:"attributed"`
	// PerRecipient is Attributed / Sent, null when nothing was sent.
	PerRecipient *float64 `json:"per_recipient"`
	// Holdout compares recipients with held-out members; null without a holdout.
	Holdout *Holdout `json:"holdout"`
	// Cost is Sent × cost per mail and ROI (Attributed - Cost) / Cost; null when no cost per
	// mail is configured or nothing was sent.
	Cost *int64   `json:"cost"`
	ROI  *float64 `json:"roi"`
	// Margin is the gross margin of the receipt lines of the purchases in Attributed whose
	// cost the catalogue knows, with the lines of unknown cost counted beside it (margin.go).
	Margin models.Margin `json:"margin"`
}

// Holdout is the lift of revenue per recipient over revenue per held-out member.
type Holdout struct {
	Members   int64   `json:"members"`
	Revenue   int64   `json:"revenue"`
	PerMember float64 `json:"per_member"`
	// Lift is PerRecipient - PerMember; RelativeLift is Lift / PerMember (null when 0).
	Lift         float64  `json:"lift"`
	RelativeLift *float64 `json:"relative_lift"`
	// LiftLow and LiftHigh bound the 95 % confidence interval of Lift (Welch's t); null when
	// either group has fewer than two members.
	LiftLow  *float64 `json:"lift_low"`
	LiftHigh *float64 `json:"lift_high"`
	// Incremental is Lift × Sent: the revenue the mail caused, by the holdout's estimate.
	Incremental float64 `json:"incremental"`
	// Verdict says where the interval lies (VerdictAboveZero, …); null while the figures are
	// preliminary, without an interval, or with fewer than MinGroupMembers in a group.
	Verdict *string `json:"verdict"`
}

// Judge sets h's verdict: none unless the figures are final and both groups (treated of
// treatedN members, h.Members held out) have MinGroupMembers. It is the one place that decides
// whether a lift may be called a difference; the console shows what it says.
func (h *Holdout) Judge(final bool, treatedN int64) {
	if h == nil {
		return
	}
	h.Verdict = nil
	if !final || treatedN < MinGroupMembers || h.Members < MinGroupMembers || h.LiftLow == nil || h.LiftHigh == nil {
		return
	}
	v := VerdictIncludesZero
	switch {
	case *h.LiftLow > 0:
		v = VerdictAboveZero
	case *h.LiftHigh < 0:
		v = VerdictBelowZero
	}
	h.Verdict = &v
}

// group is the per-member revenue of one group (sent or held out) as sufficient statistics.
type group struct {
	n          int64
	sum        int64
	sumSquares float64
}

func (g *group) add(o group) { g.n += o.n; g.sum += o.sum; g.sumSquares += o.sumSquares }

// runAcc collects one run's (or the total's) figures while the queries are read.
type runAcc struct {
	f          *Figures
	sent, held group
	links      map[int64]LinkStats
}

// FindCampaignStats computes the statistics of campaign id. Every count and sum is aggregated
// in PostgreSQL (a handful of grouped queries, whatever the number of recipients); Go only
// combines the per-run rows and computes the intervals.
func FindCampaignStats(ctx context.Context, db *models.DB, campaignID int64, o StatsOptions) (*Stats, error) {
	if o.AttributionDays <= 0 {
		o.AttributionDays = DefaultAttributionDays
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	st := &Stats{CampaignID: campaignID, AttributionDays: o.AttributionDays, CostPerMail: o.CostPerMail, Runs: []RunStats{}}
	err := db.Pool.QueryRow(ctx, `SELECT track_opens FROM campaigns WHERE id = $1`, campaignID).Scan(&st.TrackOpens)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, models.Errorf(models.ENOTFOUND, "no campaign %d", campaignID)
	}
	if err != nil {
		return nil, fmt.Errorf("stats of campaign %d: %w", campaignID, err)
	}
	if err := readCounts(ctx, db, st); err != nil {
		return nil, err
	}
	accs := map[int64]*runAcc{}
	for i := range st.Runs {
		accs[st.Runs[i].RunID] = &runAcc{f: &st.Runs[i].Figures, links: map[int64]LinkStats{}}
	}
	total := &runAcc{f: &st.Total, links: map[int64]LinkStats{}}
	for _, a := range accs {
		t := total.f
		t.Recipients += a.f.Recipients
		t.HeldOut += a.f.HeldOut
		t.Sent += a.f.Sent
		t.Failed += a.f.Failed
		t.Bounced += a.f.Bounced
		t.Unsubscribed += a.f.Unsubscribed
	}
	links, err := readClicks(ctx, db, campaignID, accs, total)
	if err != nil {
		return nil, err
	}
	if st.TrackOpens {
		if err := readOpens(ctx, db, campaignID, accs, total); err != nil {
			return nil, err
		}
	}
	cur, other, err := readRevenue(ctx, db, campaignID, o.AttributionDays, accs, total)
	if err != nil {
		return nil, err
	}
	if err := readRedemptions(ctx, db, campaignID, o.AttributionDays, accs, total); err != nil {
		return nil, err
	}
	finish := func(a *runAcc, other bool, final bool) {
		f := a.f
		f.Delivered = f.Sent - f.Bounced
		f.ClickThroughRate = ratio(f.UniqueClickers, f.Delivered)
		f.Links = make([]LinkStats, 0, len(links))
		for _, l := range links {
			ls := a.links[l.id]
			ls.URL = l.url
			ls.ClickThroughRate = ratio(ls.UniqueClickers, f.Delivered)
			f.Links = append(f.Links, ls)
		}
		f.Revenue = revenue(a.sent, a.held, f.Sent, o.CostPerMail)
		f.Revenue.Currency = cur
		f.Revenue.OtherCurrencies = other
		f.Revenue.Holdout.Judge(final, a.sent.n)
	}
	settle(st, o.Now)
	for i := range st.Runs {
		r := &st.Runs[i]
		finish(accs[r.RunID], other[r.RunID], !r.Preliminary)
	}
	finish(total, len(other) > 0, !st.Preliminary)
	if err := readMargins(ctx, db, campaignID, o.AttributionDays, st); err != nil {
		return nil, err
	}
	return st, nil
}

// settle decides which runs, and whether the campaign as a whole, are final at now: a run is
// final once its last attribution window has closed (its last mail's sent_at, or its start for
// its held-out members, plus N days) and nothing is left to send. Runs with nobody to measure
// (never started, or every mail failed) do not hold the campaign back; without any run to
// measure the campaign is preliminary: there is no evidence yet.
func settle(st *Stats, now time.Time) {
	st.Preliminary = true
	anyMeasured, known := false, true
	var last time.Time
	for i := range st.Runs {
		r := &st.Runs[i]
		r.Preliminary = r.measured && (r.closes == nil || now.Before(*r.closes))
		if r.Preliminary {
			r.FinalAt = r.closes
		}
		if !r.measured {
			continue
		}
		anyMeasured = true
		if r.closes == nil {
			known = false
		} else if r.closes.After(last) {
			last = *r.closes
		}
	}
	if !anyMeasured {
		return
	}
	st.Preliminary = !known || now.Before(last)
	if st.Preliminary && known {
		st.FinalAt = &last
	}
}

// readCounts reads the runs and their recipient counts.
func readCounts(ctx context.Context, db *models.DB, st *Stats) error {
	// One pass over the run's recipients (primary key prefix run_id). The consent probe is an
	// index lookup (consents_member) per sent recipient.
	rows, err := db.Pool.Query(ctx, `
		SELECT run.id, run.scheduled_for, run.status, run.started_at, run.finished_at,
		       count(r.member_id) FILTER (WHERE NOT r.held_out),
		       count(r.member_id) FILTER (WHERE r.held_out),
		       count(r.member_id) FILTER (WHERE r.status = 'sent'),
		       count(r.member_id) FILTER (WHERE r.status = 'failed'),
		       count(r.member_id) FILTER (WHERE r.status = 'sent' AND r.bounced_at IS NOT NULL),
		       count(r.member_id) FILTER (WHERE r.status = 'sent' AND EXISTS (
		           SELECT 1 FROM consents c
		           WHERE c.member_id = r.member_id AND c.purpose = $3 AND NOT c.granted
		             AND c.recorded_at > r.sent_at
		             AND c.recorded_at <= r.sent_at + make_interval(days => $2))),
		       -- When the last window closes (greatest skips nulls): the last mail's, or the
		       -- held-out members' from the start; and whether mails are still to go out.
		       greatest(max(r.sent_at) FILTER (WHERE r.status = 'sent'),
		                CASE WHEN bool_or(r.held_out) THEN run.started_at END) + make_interval(days => $2),
		       run.status <> 'cancelled' AND coalesce(bool_or(r.status IN ('queued', 'sending')), false),
		       coalesce(bool_or(r.status IN ('sent', 'held_out', 'queued', 'sending')), false)
		FROM campaign_runs run
		LEFT JOIN campaign_recipients r ON r.run_id = run.id
		WHERE run.campaign_id = $1
		GROUP BY run.id
		ORDER BY run.scheduled_for, run.id`, st.CampaignID, st.AttributionDays, models.PurposeMarketingEmail)
	if err != nil {
		return fmt.Errorf("run counts of campaign %d: %w", st.CampaignID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r RunStats
		var sending bool
		if err := rows.Scan(&r.RunID, &r.ScheduledFor, &r.Status, &r.StartedAt, &r.FinishedAt,
			&r.Recipients, &r.HeldOut, &r.Sent, &r.Failed, &r.Bounced, &r.Unsubscribed,
			&r.closes, &sending, &r.measured); err != nil {
			return fmt.Errorf("run counts of campaign %d: %w", st.CampaignID, err)
		}
		if sending {
			r.closes = nil // the last mail's time is not known yet
		}
		st.Runs = append(st.Runs, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("run counts of campaign %d: %w", st.CampaignID, err)
	}
	return nil
}

type link struct {
	id  int64
	url string
}

// readClicks reads the clicks per run and link, per run, per link and in total in one grouped
// query, and returns every link of the campaign (those nobody clicked too), in id order.
func readClicks(ctx context.Context, db *models.DB, campaignID int64, accs map[int64]*runAcc, total *runAcc) ([]link, error) {
	var links []link
	rows, err := db.Pool.Query(ctx, `SELECT id, url FROM campaign_links WHERE campaign_id = $1 ORDER BY id`, campaignID)
	if err != nil {
		return nil, fmt.Errorf("links of campaign %d: %w", campaignID, err)
	}
	for rows.Next() {
		var l link
		if err := rows.Scan(&l.id, &l.url); err != nil {
			return nil, err
		}
		links = append(links, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("links of campaign %d: %w", campaignID, err)
	}

	// A unique clicker is a (run, member): one mail whose recipient clicked. Across runs a
	// member mailed twice who clicked twice counts twice, as they count twice in delivered.
	rows, err = db.Pool.Query(ctx, `
		SELECT c.run_id, c.link_id, GROUPING(c.run_id) = 0, GROUPING(c.link_id) = 0,
		       count(*), count(DISTINCT (c.run_id, c.member_id))
		FROM campaign_clicks c JOIN campaign_runs run ON run.id = c.run_id
		WHERE run.campaign_id = $1
		GROUP BY GROUPING SETS ((c.run_id, c.link_id), (c.run_id), (c.link_id), ())`, campaignID)
	if err != nil {
		return nil, fmt.Errorf("clicks of campaign %d: %w", campaignID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var runID, linkID *int64
		var byRun, byLink bool
		var clicks, unique int64
		if err := rows.Scan(&runID, &linkID, &byRun, &byLink, &clicks, &unique); err != nil {
			return nil, fmt.Errorf("clicks of campaign %d: %w", campaignID, err)
		}
		a := total
		if byRun {
			if a = accs[*runID]; a == nil {
				continue
			}
		}
		if byLink {
			a.links[*linkID] = LinkStats{Clicks: clicks, UniqueClickers: unique}
		} else {
			a.f.Clicks, a.f.UniqueClickers = clicks, unique
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clicks of campaign %d: %w", campaignID, err)
	}
	return links, nil
}

// readOpens reads the opens per run and in total.
func readOpens(ctx context.Context, db *models.DB, campaignID int64, accs map[int64]*runAcc, total *runAcc) error {
	zero := func(f *Figures) { f.Opens, f.UniqueOpeners = new(int64), new(int64) }
	zero(total.f)
	for _, a := range accs {
		zero(a.f)
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT o.run_id, count(*), count(DISTINCT (o.run_id, o.member_id))
		FROM campaign_opens o JOIN campaign_runs run ON run.id = o.run_id
		WHERE run.campaign_id = $1
		GROUP BY GROUPING SETS ((o.run_id), ())`, campaignID)
	if err != nil {
		return fmt.Errorf("opens of campaign %d: %w", campaignID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var runID *int64
		var opens, unique int64
		if err := rows.Scan(&runID, &opens, &unique); err != nil {
			return fmt.Errorf("opens of campaign %d: %w", campaignID, err)
		}
		a := total
		if runID != nil {
			if a = accs[*runID]; a == nil {
				continue
			}
		}
		*a.f.Opens, *a.f.UniqueOpeners = opens, unique
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("opens of campaign %d: %w", campaignID, err)
	}
	return nil
}

// readRedemptions counts the standing redemptions of each run's sent recipients and held-out
// members within the attribution window, measured from the same moments as revenue.
func readRedemptions(ctx context.Context, db *models.DB, campaignID int64, days int, accs map[int64]*runAcc, total *runAcc) error {
	rows, err := db.Pool.Query(ctx, `
		SELECT r.run_id, r.held_out, count(*)
		FROM campaign_recipients r JOIN campaign_runs run ON run.id = r.run_id
		JOIN LATERAL (SELECT CASE WHEN r.held_out THEN run.started_at ELSE r.sent_at END AS since) s ON true
		JOIN redemptions rd ON rd.member_id = r.member_id AND rd.cancelled_at IS NULL
		 AND rd.created_at > s.since AND rd.created_at <= s.since + make_interval(days => $2)
		WHERE run.campaign_id = $1 AND (r.held_out OR r.status = 'sent')
		GROUP BY r.run_id, r.held_out`, campaignID, days)
	if err != nil {
		return fmt.Errorf("redemptions of campaign %d: %w", campaignID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var runID, n int64
		var heldOut bool
		if err := rows.Scan(&runID, &heldOut, &n); err != nil {
			return fmt.Errorf("redemptions of campaign %d: %w", campaignID, err)
		}
		for _, a := range []*runAcc{accs[runID], total} {
			switch {
			case a == nil:
			case heldOut:
				a.f.HeldOutRedemptions += n
			default:
				a.f.Redemptions += n
			}
		}
	}
	return rows.Err()
}

// readRevenue reads the per-member revenue of each run's sent and held-out groups as count,
// sum and sum of squares, in the campaign's main currency. It returns that currency and the
// runs whose recipients also bought in others.
func readRevenue(ctx context.Context, db *models.DB, campaignID int64, days int, accs map[int64]*runAcc, total *runAcc) (*string, map[int64]bool, error) {
	// rec: who is measured from when: a sent recipient from its sent_at, a held-out member from
	// the run's start (it got no mail, so no time of its own). buys: each one's net purchases
	// per currency within (since, since + N days], found through transactions_member
	// (member_id, occurred_at): one index range scan per member. cur: the currency of most of
	// those purchases. Members without purchases count with 0 (LEFT JOIN): they are the mean's
	// denominator.
	rows, err := db.Pool.Query(ctx, `
		WITH rec AS MATERIALIZED (
		    SELECT r.run_id, r.member_id, r.held_out,
		           CASE WHEN r.held_out THEN run.started_at ELSE r.sent_at END AS since
		    FROM campaign_recipients r JOIN campaign_runs run ON run.id = r.run_id
		    WHERE run.campaign_id = $1
		      AND ((NOT r.held_out AND r.status = 'sent' AND r.sent_at IS NOT NULL)
		           OR (r.held_out AND run.started_at IS NOT NULL))),
		buys AS MATERIALIZED (
		    SELECT rec.run_id, rec.member_id, t.currency, count(*) AS n,
		           sum(net_amount(t.kind, t.amount_minor)) AS net
		    FROM rec JOIN transactions t ON t.member_id = rec.member_id
		     AND t.occurred_at > rec.since AND t.occurred_at <= rec.since + make_interval(days => $2)
		    GROUP BY rec.run_id, rec.member_id, t.currency),
		cur AS (
		    SELECT currency FROM buys GROUP BY currency ORDER BY sum(n) DESC, currency LIMIT 1),
		mixed AS (
		    SELECT DISTINCT run_id FROM buys WHERE currency <> (SELECT currency FROM cur))
		SELECT rec.run_id, rec.held_out, count(*), coalesce(sum(b.net), 0)::bigint,
		       coalesce(sum(b.net::float8 * b.net::float8), 0),
		       (SELECT currency::text FROM cur), bool_or(rec.run_id IN (SELECT run_id FROM mixed))
		FROM rec LEFT JOIN buys b ON b.run_id = rec.run_id AND b.member_id = rec.member_id
		                          AND b.currency = (SELECT currency FROM cur)
		GROUP BY rec.run_id, rec.held_out`, campaignID, days)
	if err != nil {
		return nil, nil, fmt.Errorf("revenue of campaign %d: %w", campaignID, err)
	}
	defer rows.Close()
	var cur *string
	mixed := map[int64]bool{}
	for rows.Next() {
		var runID int64
		var heldOut, other bool
		var g group
		if err := rows.Scan(&runID, &heldOut, &g.n, &g.sum, &g.sumSquares, &cur, &other); err != nil {
			return nil, nil, fmt.Errorf("revenue of campaign %d: %w", campaignID, err)
		}
		if other {
			mixed[runID] = true
		}
		a := accs[runID]
		if a == nil {
			continue
		}
		if heldOut {
			a.held.add(g)
			total.held.add(g)
		} else {
			a.sent.add(g)
			total.sent.add(g)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("revenue of campaign %d: %w", campaignID, err)
	}
	return cur, mixed, nil
}

// revenue computes the revenue figures from the two groups' statistics.
func revenue(sent, held group, sentCount, costPerMail int64) Revenue {
	r := Revenue{Attributed: sent.sum}
	if sentCount > 0 {
		r.PerRecipient = ptr(float64(sent.sum) / float64(sentCount))
		if costPerMail > 0 {
			cost := sentCount * costPerMail
			r.Cost = &cost
			r.ROI = ptr(float64(sent.sum-cost) / float64(cost))
		}
	}
	if held.n > 0 && sent.n > 0 {
		r.Holdout = holdout(sent, held)
	}
	return r
}

// holdout compares the sent group's mean revenue with the held-out group's: the difference,
// its 95 % Welch interval, and the relative lift.
func holdout(sent, held group) *Holdout {
	m1 := float64(sent.sum) / float64(sent.n)
	m2 := float64(held.sum) / float64(held.n)
	h := &Holdout{Members: held.n, Revenue: held.sum, PerMember: m2, Lift: m1 - m2}
	h.Incremental = h.Lift * float64(sent.n)
	if m2 != 0 {
		h.RelativeLift = ptr(h.Lift / m2)
	}
	if lo, hi, ok := welchInterval(sent, held, 0.95); ok {
		h.LiftLow, h.LiftHigh = &lo, &hi
	}
	return h
}

// welchInterval is the confidence interval (at level, e.g. 0.95) of mean(a) - mean(b) by
// Welch's t: se² = s²a/na + s²b/nb with the Welch–Satterthwaite degrees of freedom. ok is false
// when a group has fewer than two members. Both variances zero give the point itself.
func welchInterval(a, b group, level float64) (lo, hi float64, ok bool) {
	if a.n < 2 || b.n < 2 {
		return 0, 0, false
	}
	diff := float64(a.sum)/float64(a.n) - float64(b.sum)/float64(b.n)
	va, vb := variance(a)/float64(a.n), variance(b)/float64(b.n)
	se := math.Sqrt(va + vb)
	if se == 0 {
		return diff, diff, true
	}
	df := (va + vb) * (va + vb) / (va*va/float64(a.n-1) + vb*vb/float64(b.n-1))
	q := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(1 - (1-level)/2)
	return diff - q*se, diff + q*se, true
}

// variance is the sample variance from the sufficient statistics; clamped at 0 because the
// subtraction of two large sums can come out a hair below it.
func variance(g group) float64 {
	n := float64(g.n)
	mean := float64(g.sum) / n
	v := (g.sumSquares - n*mean*mean) / (n - 1)
	return math.Max(v, 0)
}

func ratio(num, den int64) *float64 {
	if den <= 0 {
		return nil
	}
	return ptr(float64(num) / float64(den))
}

func ptr[T any](v T) *T { return &v }

// GroupSums is one group's per-member revenue as sufficient statistics: members, their total
// and the sum of squares of each member's revenue.
type GroupSums struct {
	N          int64
	Sum        int64
	SumSquares float64
}

// CompareGroups compares treated members' mean revenue with held-out members' as campaign
// statistics do (difference, 95 % Welch interval, relative lift); nil when a group is empty.
// Flow reports use it.
func CompareGroups(treated, held GroupSums) *Holdout {
	if treated.N == 0 || held.N == 0 {
		return nil
	}
	return holdout(group{n: treated.N, sum: treated.Sum, sumSquares: treated.SumSquares},
		group{n: held.N, sum: held.Sum, sumSquares: held.SumSquares})
}
