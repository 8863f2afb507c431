package flows

import (
	"fmt"
	"strconv"
	"time"
)

// eventOverlap is how far before its watermark an event trigger looks again on each tick: a
// sale is stamped received_at when its statement starts and becomes visible when it commits,
// so one committed a moment late is still seen. The entries' unique event key makes looking
// twice harmless.
const eventOverlap = 5 * time.Minute

// candidates is the trigger's SELECT of (member_id, event_key) for the members it starts now,
// before the rules every flow shares (mailable, segment, reentry). Its placeholders are $1 the
// flow id, $2 the lower bound of event times (event triggers), $3 the shop's time zone, $4 and $5
// the slice of member ids (lo, hi] a state trigger looks at now (the caller keeps the result to
// it too; a state trigger's statement reads only that slice), then its own from $6 on; args
// holds those own ones. Each is one set-based statement.
func candidates(t Trigger) (query string, args []any, err error) {
	switch t.Event {
	case EventJoined:
		// Consent confirmed (the double opt-in of a sign-up or of consent given again).
		return `SELECT m.id AS member_id, 'joined' AS event_key FROM members m
			WHERE m.confirmed_at >= $2 AND m.confirmed_at <= now()`, nil, nil
	case EventFirstPurchase:
		return `SELECT t.member_id, 'first_purchase' AS event_key FROM transactions t
			WHERE t.live AND t.member_id IS NOT NULL AND t.received_at >= $2 AND t.kind = 'sale'
			  AND NOT EXISTS (SELECT 1 FROM transactions p
			                  WHERE p.member_id = t.member_id AND p.kind = 'sale'
			                    AND (p.occurred_at, p.id) < (t.occurred_at, t.id))`, nil, nil
	case EventPurchaseCount:
		return `SELECT t.member_id, 'purchase:' || $6::int AS event_key FROM transactions t
			WHERE t.live AND t.member_id IS NOT NULL AND t.received_at >= $2 AND t.kind = 'sale'
			  AND (SELECT count(*) FROM transactions p
			       WHERE p.member_id = t.member_id AND p.kind = 'sale'
			         AND (p.occurred_at, p.id) <= (t.occurred_at, t.id)) = $6::int`, []any{*t.Count}, nil
	case EventTierChanged:
		// A sale or refund that moved the member to another tier: the tier as of just before
		// it differs from the tier just after (member_tier counts what occurred before as_of).
		return `SELECT t.member_id, 'tier:' || t.id AS event_key FROM transactions t
			WHERE t.live AND t.member_id IS NOT NULL AND t.received_at >= $2
			  AND (SELECT mt.id FROM member_tier(t.member_id, t.occurred_at, $3) mt)
			      IS DISTINCT FROM
			      (SELECT mt.id FROM member_tier(t.member_id, t.occurred_at + interval '1 microsecond', $3) mt)`, nil, nil
	case EventBirthday:
		// The birthday days_before days from today in the shop's zone; a 29 February birthday
		// is kept on the 28th in other years. The key is the year, so it fires once a year.
		return `SELECT m.id AS member_id, 'birthday:' || extract(year FROM d.day) AS event_key
			FROM (SELECT ((now() AT TIME ZONE $3)::date + $6::int) AS day) d
			JOIN members m ON m.birth_date IS NOT NULL AND m.id > $4 AND m.id <= $5
			 AND ((extract(month FROM m.birth_date), extract(day FROM m.birth_date))
			        = (extract(month FROM d.day), extract(day FROM d.day))
			   OR (extract(month FROM d.day) = 2 AND extract(day FROM d.day) = 28
			       AND NOT (extract(year FROM d.day)::int % 4 = 0 AND (extract(year FROM d.day)::int % 100 <> 0 OR extract(year FROM d.day)::int % 400 = 0))
			       AND extract(month FROM m.birth_date) = 2 AND extract(day FROM m.birth_date) = 29))`,
			[]any{*t.DaysBefore}, nil
	case EventLapsed:
		// Members whose last sale is more than days ago (and, personal, more than factor × the
		// median gap between their purchase days). The key is the day of that last sale: one
		// lapse, one entry; a purchase and a new lapse make a new one. Members who never bought
		// do not lapse; one purchase day has no gap, so days alone decides.
		//
		// Looking up the last sale of every member is a million index probes at 1M members
		// (12–48 s, docs/benchmarks.md "Flows"). The latest metrics run holds each member's
		// last purchase day; it is still their last unless a live sale has come in since the
		// run's day ("recent"). So a member's last sale is looked up only when the run does
		// not settle it: recent, without a purchase in the run (joined or first bought since;
		// no run yet: everyone), or on the day the lapse begins. Members already entered for
		// that lapse are left out first. A history import, or an old sale linked to a card, since
		// the run is seen at the next run.
		personal := "true"
		args := []any{*t.Days}
		if t.Personal {
			gap := `coalesce(g.median_gap, l.gap * interval '1 day')`
			personal = `(` + gap + ` IS NULL OR coalesce(s.occurred_at, (l.last_day + 1)::timestamp AT TIME ZONE $3) < now() - ` + gap + ` * $7::float8)`
			args = append(args, *t.Factor)
		}
		return `WITH since AS MATERIALIZED (
			      SELECT (SELECT max(as_of) FROM metric_runs WHERE status = 'done') AS run_day,
			             ((now() - make_interval(days => $6::int)) AT TIME ZONE $3)::date AS lapse_day
			  ), recent AS MATERIALIZED ( -- computed once: a correlated IN ran per member
			      SELECT DISTINCT t.member_id FROM transactions t, since
			      WHERE t.live AND t.member_id > $4 AND t.member_id <= $5
			        AND t.received_at >= since.run_day::timestamp AT TIME ZONE $3
			  ), maybe AS MATERIALIZED (
			      SELECT mm.member_id, mm.as_of - mm.days_since_last_purchase AS last_day,
			             mm.as_of - mm.days_since_last_purchase = since.lapse_day
			               OR mm.member_id IN (SELECT member_id FROM recent) AS probe,
			             mm.median_gap_days AS gap
			      FROM member_metrics mm, since
			      WHERE mm.member_id > $4 AND mm.member_id <= $5 AND mm.days_since_last_purchase IS NOT NULL
			        AND mm.as_of - mm.days_since_last_purchase <= since.lapse_day
			      UNION ALL
			      SELECT r.member_id, NULL, true, NULL FROM recent r
			      WHERE NOT EXISTS (SELECT 1 FROM member_metrics mm -- OFFSET 0: a key lookup each, not a hash of them all
			                        WHERE mm.member_id = r.member_id AND mm.days_since_last_purchase IS NOT NULL OFFSET 0)
			      UNION ALL
			      SELECT m.id, NULL, true, NULL FROM members m
			      WHERE m.id > $4 AND m.id <= $5 AND (SELECT run_day FROM since) IS NULL
			  ), fresh AS MATERIALIZED (
			      SELECT c.* FROM maybe c
			      WHERE c.last_day IS NULL
			         OR NOT EXISTS (SELECT 1 FROM flow_entries e WHERE e.flow_id = $1 AND e.member_id = c.member_id
			                        AND e.member_id > $4 AND e.member_id <= $5 -- the slice's entries, not all
			                        AND e.event_key = 'lapsed:' || c.last_day)
			  )
			SELECT l.member_id, 'lapsed:' || coalesce((s.occurred_at AT TIME ZONE $3)::date, l.last_day) AS event_key
			FROM fresh l
			LEFT JOIN LATERAL (SELECT t.occurred_at FROM transactions t
			                   WHERE l.probe AND t.member_id = l.member_id AND t.kind = 'sale'
			                   ORDER BY t.occurred_at DESC, t.id DESC LIMIT 1) s ON true
			` + medianGapJoin(t.Personal) + `
			WHERE (NOT l.probe OR s.occurred_at < now() - make_interval(days => $6::int)) AND ` + personal, args, nil
	case EventRewardAffordable:
		// A credit (a sale's points, or a cancelled redemption's given back) that took the
		// balance from below the reward's cost to at least it. The key is that ledger entry.
		cost := `(SELECT min(cost_points) FROM rewards WHERE active AND ($6::text = '' OR code = $6::text))`
		return `SELECT l.member_id, 'affordable:' || l.id AS event_key FROM points_ledger l
			CROSS JOIN LATERAL (SELECT sum(p.points) AS after FROM points_ledger p
			                    WHERE p.member_id = l.member_id AND p.id <= l.id) b
			WHERE l.kind IN ('earned', 'cancelled') AND l.created_at >= $2
			  AND b.after >= ` + cost + ` AND b.after - l.points < ` + cost, []any{t.Reward}, nil
	case EventPAliveBelow:
		// As of the latest metrics run (member_metrics holds each member's latest figures).
		return `SELECT mm.member_id, 'p_alive:' || mm.as_of AS event_key FROM member_metrics mm
			WHERE mm.member_id > $4 AND mm.member_id <= $5 AND mm.p_alive < $6::float8`, []any{*t.Value}, nil
	}
	return "", nil, fmt.Errorf("trigger %q cannot run on this server", t.Event)
}

// medianGapJoin joins g.median_gap, the median interval between a lapsed candidate's distinct
// purchase days (in the shop's zone), for the personal lapse: computed from the history only for
// the members the metrics run does not settle (l.probe); the others have it from the run
// (l.gap, member_metrics.median_gap_days, the same rule).
func medianGapJoin(personal bool) string {
	if !personal {
		return ""
	}
	return `LEFT JOIN LATERAL (
			SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) * interval '1 day' AS median_gap
			FROM (SELECT day - lag(day) OVER (ORDER BY day) AS gap
			      FROM (SELECT DISTINCT (t.occurred_at AT TIME ZONE $3)::date AS day
			            FROM transactions t WHERE l.probe AND t.member_id = l.member_id AND t.kind = 'sale') days) gaps
			WHERE gap IS NOT NULL) g ON true`
}

// placeholder is $n.
func placeholder(n int) string { return "$" + strconv.Itoa(n) }
