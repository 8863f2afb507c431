package flows

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/models"
)

// MinMatured is how many entries of each group (mailed and held out) must have had their whole
// attribution window before a flow's revenue comparison is final rather than preliminary: the
// minimum a campaign's verdict needs too.
const MinMatured = tracking.MinGroupMembers

// Stats is a flow's report.
type Stats struct {
	FlowID   int64          `json:"flow_id"`
	Entered  int64          `json:"entered"`
	HeldOut  int64          `json:"held_out"`
	Active   int64          `json:"active"`
	Done     int64          `json:"done"`
	Exits    map[string]int `json:"exits"`
	Steps    []StepStats    `json:"steps"`
	Revenue  FlowRevenue    `json:"revenue"`
	Clicks   int64          `json:"clicks"`
	Clickers int64          `json:"unique_clickers"`
	// VouchersIssued by the flow's voucher steps, and how many of them were redeemed (a
	// standing redemption at a till).
	VouchersIssued   int64 `json:"vouchers_issued"`
	VouchersRedeemed int64 `json:"vouchers_redeemed"`
	// Preliminary is true until each group has MinMatured entries whose attribution window
	// has closed; FinalAt is when that happens for the entries made so far (null when too few
	// members have entered yet to tell). While preliminary the console gives no verdict about
	// the lift (the figures and their interval are shown as they stand).
	Preliminary bool       `json:"preliminary"`
	FinalAt     *time.Time `json:"final_at"`
}

// StepStats is what happened at one mail step.
type StepStats struct {
	Step    string `json:"step"`
	Subject string `json:"subject"`
	Queued  int64  `json:"queued"`
	Sent    int64  `json:"sent"`
	Failed  int64  `json:"failed"`
	HeldOut int64  `json:"held_out"`
	Clicks  int64  `json:"clicks"`
}

// FlowRevenue compares revenue per entry over the attribution window after entering, for the
// mailed members and the held-out ones, counting only entries whose window has closed.
type FlowRevenue struct {
	AttributionDays int   `json:"attribution_days"`
	Members         int64 `json:"members"`
	Revenue         int64 `json:"revenue"`
	// PerMember is Revenue / Members; Holdout compares it with the held-out members (null
	// without matured members in both groups).
	PerMember *float64          `json:"per_member"`
	Holdout   *tracking.Holdout `json:"holdout"`
	// Margin is the gross margin of the receipt lines of the purchases in Revenue whose cost
	// the catalogue knows, with the lines of unknown cost counted beside it (margin.go).
	Margin models.Margin `json:"margin"`
}

// FindFlowStats computes flow id's report; attributionDays is REGULARS_ATTRIBUTION_DAYS (0:
// tracking.DefaultAttributionDays, as campaign stats). Each figure is aggregated in PostgreSQL.
func FindFlowStats(ctx context.Context, db *models.DB, id int64, attributionDays int) (*Stats, error) {
	if attributionDays <= 0 {
		attributionDays = tracking.DefaultAttributionDays
	}
	f, err := FindFlowByID(ctx, db, id)
	if err != nil {
		return nil, err
	}
	st := &Stats{FlowID: id, Exits: map[string]int{}, Steps: []StepStats{}}
	st.Revenue.AttributionDays = attributionDays
	if err := db.Pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE held_out), count(*) FILTER (WHERE status = 'active'),
			count(*) FILTER (WHERE status = 'done')
		FROM flow_entries WHERE flow_id = $1`, id).Scan(&st.Entered, &st.HeldOut, &st.Active, &st.Done); err != nil {
		return nil, fmt.Errorf("flow %d stats: %w", id, err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT exit_reason, count(*) FROM flow_entries
		WHERE flow_id = $1 AND exit_reason IS NOT NULL GROUP BY exit_reason`, id)
	if err != nil {
		return nil, fmt.Errorf("flow %d stats: %w", id, err)
	}
	var reason string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&reason, &n}, func() error { st.Exits[reason] = n; return nil }); err != nil {
		return nil, fmt.Errorf("flow %d stats: %w", id, err)
	}
	if err := readSteps(ctx, db, f, st); err != nil {
		return nil, err
	}
	if err := readRevenue(ctx, db, id, attributionDays, st); err != nil {
		return nil, err
	}
	if err := readMargin(ctx, db, id, attributionDays, st); err != nil {
		return nil, err
	}
	if err := db.Pool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM redemptions r
		                                                WHERE r.voucher_id = v.id AND r.cancelled_at IS NULL))
		FROM vouchers v WHERE v.source_key LIKE 'flow:' || $1::bigint || ':%'`, id).Scan(&st.VouchersIssued, &st.VouchersRedeemed); err != nil {
		return nil, fmt.Errorf("flow %d vouchers: %w", id, err)
	}
	return st, nil
}

// Counts is how many members entered a flow and how many are on their way now.
type Counts struct{ Entered, Active int64 }

// FindFlowCounts returns every flow's Counts in one grouped query, for lists.
func FindFlowCounts(ctx context.Context, db *models.DB) (map[int64]Counts, error) {
	rows, err := db.Pool.Query(ctx, `SELECT flow_id, count(*), count(*) FILTER (WHERE status = 'active')
		FROM flow_entries GROUP BY flow_id`)
	if err != nil {
		return nil, fmt.Errorf("count flow entries: %w", err)
	}
	out := map[int64]Counts{}
	var id int64
	var c Counts
	if _, err := pgx.ForEachRow(rows, []any{&id, &c.Entered, &c.Active}, func() error { out[id] = c; return nil }); err != nil {
		return nil, fmt.Errorf("count flow entries: %w", err)
	}
	return out, nil
}

// readSteps counts the recipients of each current mail step's campaign, and the clicks.
func readSteps(ctx context.Context, db *models.DB, f *Flow, st *Stats) error {
	prog, err := Compile(f.Steps)
	if err != nil {
		return err
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT c.flow_step,
			count(cr.*) FILTER (WHERE cr.status IN ('queued', 'sending')),
			count(cr.*) FILTER (WHERE cr.status = 'sent'),
			count(cr.*) FILTER (WHERE cr.status = 'failed'),
			count(cr.*) FILTER (WHERE cr.status = 'held_out'),
			(SELECT count(*) FROM campaign_clicks k JOIN campaign_runs r2 ON r2.id = k.run_id WHERE r2.campaign_id = c.id)
		FROM campaigns c
		LEFT JOIN campaign_runs r ON r.campaign_id = c.id
		LEFT JOIN campaign_recipients cr ON cr.run_id = r.id
		WHERE c.flow_id = $1 AND c.flow_step >= 0
		GROUP BY c.id, c.flow_step`, f.ID)
	if err != nil {
		return fmt.Errorf("flow %d step stats: %w", f.ID, err)
	}
	byStep := map[int]StepStats{}
	var step int
	var s StepStats
	if _, err := pgx.ForEachRow(rows, []any{&step, &s.Queued, &s.Sent, &s.Failed, &s.HeldOut, &s.Clicks}, func() error {
		byStep[step] = s
		return nil
	}); err != nil {
		return fmt.Errorf("flow %d step stats: %w", f.ID, err)
	}
	for i, op := range prog {
		if op.Kind != OpMail {
			continue
		}
		s := byStep[i]
		s.Step, s.Subject = op.Path, op.Mail.Subject
		st.Steps = append(st.Steps, s)
	}
	if err := db.Pool.QueryRow(ctx, `
		SELECT count(*), count(DISTINCT k.member_id)
		FROM campaign_clicks k JOIN campaign_runs r ON r.id = k.run_id JOIN campaigns c ON c.id = r.campaign_id
		WHERE c.flow_id = $1`, f.ID).Scan(&st.Clicks, &st.Clickers); err != nil {
		return fmt.Errorf("flow %d clicks: %w", f.ID, err)
	}
	return nil
}

// readRevenue sums each matured entry's net purchases over (entered_at, entered_at + days] by
// group, and works out when the report becomes final.
func readRevenue(ctx context.Context, db *models.DB, id int64, days int, st *Stats) error {
	rows, err := db.Pool.Query(ctx, `
		SELECT e.held_out, count(*), coalesce(sum(r.revenue), 0)::bigint, coalesce(sum(r.revenue::float8 * r.revenue::float8), 0)
		FROM flow_entries e
		CROSS JOIN LATERAL (
			SELECT coalesce(sum(net_amount(t.kind, t.amount_minor)), 0) AS revenue FROM transactions t
			WHERE t.member_id = e.member_id AND t.occurred_at > e.entered_at
			  AND t.occurred_at <= e.entered_at + make_interval(days => $2)) r
		WHERE e.flow_id = $1 AND e.entered_at + make_interval(days => $2) <= now()
		GROUP BY e.held_out`, id, days)
	if err != nil {
		return fmt.Errorf("flow %d revenue: %w", id, err)
	}
	var held bool
	var g tracking.GroupSums
	var mailed, heldOut tracking.GroupSums
	if _, err := pgx.ForEachRow(rows, []any{&held, &g.N, &g.Sum, &g.SumSquares}, func() error {
		if held {
			heldOut = g
		} else {
			mailed = g
		}
		return nil
	}); err != nil {
		return fmt.Errorf("flow %d revenue: %w", id, err)
	}
	st.Revenue.Members, st.Revenue.Revenue = mailed.N, mailed.Sum
	if mailed.N > 0 {
		v := float64(mailed.Sum) / float64(mailed.N)
		st.Revenue.PerMember = &v
	}
	st.Revenue.Holdout = tracking.CompareGroups(mailed, heldOut)
	// Final once each group has MinMatured matured entries: the window of the group's
	// MinMatured-th entry closes then (null while a group has fewer entries than that).
	var finalAt *time.Time
	if err := db.Pool.QueryRow(ctx, `
		SELECT max(at) FILTER (WHERE n = 2) FROM (
			SELECT count(*) OVER () AS n, at FROM (
				SELECT held_out, (SELECT e2.entered_at FROM flow_entries e2
				                  WHERE e2.flow_id = $1 AND e2.held_out = g.held_out
				                  ORDER BY e2.entered_at OFFSET $3 - 1 LIMIT 1) + make_interval(days => $2) AS at
				FROM (VALUES (true), (false)) g(held_out)) x
			WHERE at IS NOT NULL) y`, id, days, MinMatured).Scan(&finalAt); err != nil {
		return fmt.Errorf("flow %d final time: %w", id, err)
	}
	st.FinalAt = finalAt
	st.Preliminary = mailed.N < MinMatured || heldOut.N < MinMatured
	if !st.Preliminary {
		st.FinalAt = nil // final: no date to wait for
	}
	st.Revenue.Holdout.Judge(!st.Preliminary, mailed.N)
	return nil
}
