package demo

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regulars/regulars/campaigns/segments"
	"github.com/regulars/regulars/campaigns/tracking"
	"github.com/regulars/regulars/flows"
	"github.com/regulars/regulars/models"
)

// FlowHistoryDays is how long before the end of the demo's history its flows were activated:
// their entries, mails, clicks and exits cover these days, so that their reports have matured
// figures from the first look.
const FlowHistoryDays = 120

// cafeLink is the one link of the demo flows' mails, so that their reports have clicks.
const cafeLink = "https://regulars.example/cafe"

// demoFlow is one of the demo's flows and how its history is simulated.
type demoFlow struct {
	// body is the flow as the API takes it (flows.ParseInput).
	body string
	// history is the SELECT of (member_id, event_key, entered_at) of the entries its trigger
	// made while it was active: $2 and $3 bound the history, $4 is the shop's zone, its own
	// arguments (historyArgs of the trigger) come from $6 on.
	history     string
	historyArgs func(flows.Trigger) []any
	// second is the SQL condition (on entry e, member m) under which a member who reaches the
	// flow's if step takes its mail; "" when the flow has no if.
	second string
	// comeback is the chance that a mailed member comes in within a few days of the first mail
	// because of it: the effect the holdout comparison finds. Held-out members get no such visit.
	comeback float64
	// clickRate is the share of the mails of each mail step (in order) whose link is clicked.
	clickRate [2]float64
}

// demoFlows are the three flows a café would run first.
var demoFlows = []demoFlow{
	{
		body: `{"name": "Welcome", "trigger": {"event": "joined"},
			"steps": [
				{"mail": {"subject": "Welcome to the club{{with .Member.FirstName}}, {{.}}{{end}}",
					"html": "<p>{{with .Member.FirstName}}Hi {{.}},{{else}}Hi,{{end}}</p><p>Thanks for joining Regulars. Show this card at the till and every coffee, bun and record counts towards your tier{{with .Member.Discount}} (you get {{.}}% off already){{end}}.</p><p>{{.Barcode}}</p><p><a href=\"` + cafeLink + `\">What is on at the café this week</a></p>",
					"text": "{{with .Member.FirstName}}Hi {{.}},{{else}}Hi,{{end}}\n\nThanks for joining Regulars. Show your card {{.Barcode}} at the till and every coffee, bun and record counts towards your tier.\n\nWhat is on at the café this week: ` + cafeLink + `\n"}},
				{"wait": "72h"},
				{"mail": {"subject": "A tip for your next visit",
					"html": "<p>{{with .Member.FirstName}}{{.}}, a{{else}}A{{end}} tip from the bar: the filter coffee is brewed fresh every hour, and the cinnamon buns come out of the oven at 11.</p><p><a href=\"` + cafeLink + `\">See this week's records and bakes</a></p>",
					"text": "{{with .Member.FirstName}}{{.}}, a{{else}}A{{end}} tip from the bar: the filter coffee is brewed fresh every hour, and the cinnamon buns come out of the oven at 11.\n\nThis week's records and bakes: ` + cafeLink + `\n"}}],
			"exit_on_purchase": true, "reentry_days": null, "holdout_percent": 10}`,
		// Members who joined (the demo's members confirmed their address when they joined).
		history: `SELECT m.id AS member_id, 'joined' AS event_key, m.joined_at + ` + unit(`'joined:' || m.id`) + ` * interval '10 seconds' AS entered_at
			FROM members m WHERE m.joined_at >= $2 AND m.joined_at < $3`,
		historyArgs: func(flows.Trigger) []any { return nil },
		comeback:    0.10,
		clickRate:   [2]float64{0.18, 0.09},
	},
	{
		body: `{"name": "Birthday treat", "trigger": {"event": "birthday", "days_before": 3},
			"steps": [
				{"mail": {"subject": "Happy birthday{{with .Member.FirstName}}, {{.}}{{end}}: a bun on us",
					"html": "<p>{{with .Member.FirstName}}Happy birthday, {{.}}!{{else}}Happy birthday!{{end}}</p><p>Come by this week and show this mail at the till: your cinnamon bun is on us.</p><p>{{.Barcode}}</p><p><a href=\"` + cafeLink + `\">Find your nearest Regulars</a></p>",
					"text": "{{with .Member.FirstName}}Happy birthday, {{.}}!{{else}}Happy birthday!{{end}}\n\nCome by this week and show this mail at the till: your cinnamon bun is on us. Your card: {{.Barcode}}\n\nFind your nearest Regulars: ` + cafeLink + `\n"}}],
			"exit_on_purchase": true, "reentry_days": 300, "holdout_percent": 10}`,
		// Birthdays days_before days after each day of the history, in the shop's zone; the state
		// trigger looks every few minutes, so members enter soon after midnight (or when the flow
		// was activated).
		history: `SELECT m.id AS member_id, 'birthday:' || extract(year FROM d.day::date + $6::int) AS event_key,
				greatest(d.day AT TIME ZONE $4 + ` + unit(`'birthday:' || m.id`) + ` * interval '10 minutes',
				         $2 + ` + unit(`'birthday:' || m.id`) + ` * interval '10 seconds') AS entered_at
			FROM generate_series(($2::timestamptz AT TIME ZONE $4)::date::timestamp, ($3::timestamptz AT TIME ZONE $4)::date::timestamp,
			                     interval '1 day') d(day)
			JOIN members m ON m.birth_date IS NOT NULL
			 AND (extract(month FROM m.birth_date), extract(day FROM m.birth_date))
			     = (extract(month FROM d.day::date + $6::int), extract(day FROM d.day::date + $6::int))`,
		historyArgs: func(t flows.Trigger) []any { return []any{*t.DaysBefore} },
		comeback:    0.25,
		clickRate:   [2]float64{0.22},
	},
	{
		body: `{"name": "Win back", "trigger": {"event": "lapsed", "days": 60, "personal": true, "factor": 3},
			"steps": [
				{"mail": {"subject": "We miss you{{with .Member.FirstName}}, {{.}}{{end}}",
					"html": "<p>{{with .Member.FirstName}}Hi {{.}},{{else}}Hi,{{end}}</p><p>It has been a while. The new records are in, and the coffee is as good as ever.</p><p><a href=\"` + cafeLink + `\">See what is new</a></p>",
					"text": "{{with .Member.FirstName}}Hi {{.}},{{else}}Hi,{{end}}\n\nIt has been a while. The new records are in, and the coffee is as good as ever.\n\nSee what is new: ` + cafeLink + `\n"}},
				{"wait": "168h"},
				{"if": {"all": [{"field": "p_alive", "op": "lt", "value": 0.5}]},
				 "then": [{"mail": {"subject": "A coffee on us",
					"html": "<p>{{with .Member.FirstName}}{{.}}, we{{else}}We{{end}} would love to see you again. Show this mail at the till and your next coffee is on us.</p><p>{{.Barcode}}</p><p><a href=\"` + cafeLink + `\">Opening hours</a></p>",
					"text": "{{with .Member.FirstName}}{{.}}, we{{else}}We{{end}} would love to see you again. Show this mail at the till and your next coffee is on us. Your card: {{.Barcode}}\n\nOpening hours: ` + cafeLink + `\n"}}]}],
			"exit_on_purchase": true, "reentry_days": 180, "holdout_percent": 10}`,
		// Every lapse of the history: a sale followed by no other for more than days, and more
		// than factor × the member's median gap between purchase days (as the trigger counts it
		// now, over all their purchase days). Members lapsed already when the flow was activated
		// enter at once; a member enters once, as reentry_days is longer than the history.
		history: `SELECT DISTINCT ON (l.member_id) l.member_id, 'lapsed:' || l.id AS event_key,
				CASE WHEN l.lapse_at < $2 THEN $2 + ` + unit(`'lapsed:' || l.id`) + ` * interval '10 seconds'
				     ELSE l.lapse_at + ` + unit(`'lapsed:' || l.id`) + ` * interval '10 minutes' END AS entered_at
			FROM (
				SELECT s.member_id, s.id, s.next_at,
					s.occurred_at + greatest(make_interval(days => $6::int), coalesce(g.median_gap * $7::float8, interval '0')) AS lapse_at
				FROM (SELECT t.member_id, t.id, t.occurred_at,
				             lead(t.occurred_at) OVER (PARTITION BY t.member_id ORDER BY t.occurred_at, t.id) AS next_at
				      FROM transactions t WHERE t.member_id IS NOT NULL AND t.kind = 'sale') s
				LEFT JOIN (
					SELECT member_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) * interval '1 day' AS median_gap
					FROM (SELECT member_id, day - lag(day) OVER (PARTITION BY member_id ORDER BY day) AS gap
					      FROM (SELECT DISTINCT t.member_id, (t.occurred_at AT TIME ZONE $4)::date AS day
					            FROM transactions t WHERE t.member_id IS NOT NULL AND t.kind = 'sale') days) gaps
					WHERE gap IS NOT NULL GROUP BY member_id) g ON g.member_id = s.member_id) l
			WHERE l.lapse_at < $3 AND (l.next_at IS NULL OR l.next_at > greatest(l.lapse_at, $2))
			ORDER BY l.member_id, l.lapse_at`,
		historyArgs: func(t flows.Trigger) []any { return []any{*t.Days, *t.Factor} },
		// BG/NBD gives a member who bought once p_alive 1, and one who came on several days and
		// then stayed away far longer than usual a low one: who bought on two days or more
		// before lapsing stands for p_alive < 0.5 in the history (the metrics come after it).
		second: `(SELECT count(DISTINCT (t.occurred_at AT TIME ZONE $4)::date) FROM transactions t
			WHERE t.member_id = e.member_id AND t.kind = 'sale' AND t.occurred_at < e.entered_at) >= 2`,
		comeback:  0.08,
		clickRate: [2]float64{0.11, 0.16},
	},
}

// unit is SQL for a number in [0, 1) drawn from the text key: the history's random choices,
// made in SQL the way the engine draws its holdout, so they are the same on every run.
func unit(key string) string {
	return `(('x' || substr(md5('demo:' || ` + key + `), 1, 8))::bit(32)::bigint / 4294967296.0)`
}

// flowsAndHistory creates the demo flows as a marketer would (flows.Create, flows.Activate) and
// simulates FlowHistoryDays of their work up to g.opts.Now in set-based SQL: who entered (with
// the engine's holdout draw), the visits the mails brought, exits on purchase, the mail steps'
// daily runs and recipients, and clicks. Members still on their way are left where the engine
// would have them, so that serve carries on from there.
func (g *generator) flowsAndHistory(ctx context.Context, db *models.DB, sum *Summary) error {
	stop := g.opts.Now
	// Activated at 10:00 in the shops' zone, FlowHistoryDays before the end of the history.
	y, m, d := stop.In(g.oslo).AddDate(0, 0, -FlowHistoryDays).Date()
	start := time.Date(y, m, d, 10, 0, 0, 0, g.oslo)
	made := make([]*flows.Flow, len(demoFlows))
	for i, df := range demoFlows {
		in, err := flows.ParseInput([]byte(df.body))
		if err != nil {
			return fmt.Errorf("demo: flow %d: %w", i, err)
		}
		if made[i], err = flows.Create(ctx, db, "", in); err != nil {
			return fmt.Errorf("demo: create flow %s: %w", *in.Name, err)
		}
	}
	if err := enterHistory(ctx, db, made, start, stop); err != nil {
		return err
	}
	if err := g.comebacks(ctx, db, made, stop); err != nil {
		return err
	}
	if err := walkHistory(ctx, db, made, stop); err != nil {
		return err
	}
	ids := make([]int64, len(made))
	for i, f := range made {
		if _, err := flows.Activate(ctx, db, f.ID); err != nil {
			return fmt.Errorf("demo: activate flow %s: %w", f.Name, err)
		}
		ids[i] = f.ID
		sum.Flows = append(sum.Flows, f.Name)
	}
	// They have been active since start (event triggers still look from now on).
	if _, err := db.Pool.Exec(ctx, `UPDATE flows SET created_at = $2, activated_at = $2, updated_at = $2 WHERE id = ANY($1)`,
		ids, start); err != nil {
		return fmt.Errorf("demo: flows: %w", err)
	}
	return db.Pool.QueryRow(ctx, `SELECT count(*) FROM flow_entries WHERE flow_id = ANY($1)`, ids).Scan(&sum.FlowEntries)
}

// enterHistory inserts each flow's entries: its history's candidates who may be mailed now,
// held out by the engine's draw (flows.Engine.enter), all at their first step for now.
func enterHistory(ctx context.Context, db *models.DB, made []*flows.Flow, start, stop time.Time) error {
	for i, df := range demoFlows {
		f := made[i]
		args := append([]any{f.ID, start, stop, db.ZoneName(), int64(math.Round(f.HoldoutPercent * 100))},
			df.historyArgs(f.Trigger)...)
		if _, err := db.Pool.Exec(ctx, `
			INSERT INTO flow_entries (flow_id, member_id, event_key, held_out, entered_at, next_at)
			SELECT $1::bigint, c.member_id, c.event_key,
				(('x' || substr(md5('flow:' || $1::bigint || ':' || c.member_id), 1, 8))::bit(32)::bigint % 10000) < $5::bigint,
				c.entered_at, c.entered_at
			FROM (`+df.history+`) c
			JOIN members m ON m.id = c.member_id
			WHERE `+segments.Mailable+`
			  AND c.entered_at >= $2 AND c.entered_at < $3
			  AND $4::text IS NOT NULL -- typed even where the history does not use it`, args...); err != nil {
			return fmt.Errorf("demo: history of flow %s: %w", f.Name, err)
		}
	}
	return nil
}

// comebacks adds the visits the first mail of each flow brought: a mailed member comes in a few
// days after it with the flow's comeback chance. They are generated and imported as the rest of
// the history is (so not live: they start no flow).
func (g *generator) comebacks(ctx context.Context, db *models.DB, made []*flows.Flow, stop time.Time) error {
	chance := map[int64]float64{}
	ids := make([]int64, len(made))
	for i, f := range made {
		chance[f.ID], ids[i] = demoFlows[i].comeback, f.ID
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT e.flow_id, m.card, s.code,
			coalesce(quiet_until(e.entered_at, s.timezone, $2::time, $3::time), e.entered_at) AS mailed_at
		FROM flow_entries e JOIN members m ON m.id = e.member_id JOIN stores s ON s.id = m.home_store_id
		WHERE e.flow_id = ANY($1) AND NOT e.held_out
		ORDER BY e.id`, ids, flows.DefaultQuietStart, flows.DefaultQuietEnd)
	if err != nil {
		return fmt.Errorf("demo: flow visits: %w", err)
	}
	type mailed struct {
		flowID      int64
		card, store string
		at          time.Time
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (mailed, error) {
		var m mailed
		return m, row.Scan(&m.flowID, &m.card, &m.store, &m.at)
	})
	if err != nil {
		return fmt.Errorf("demo: flow visits: %w", err)
	}
	storeIndex := map[string]int{}
	for i, s := range demoStores {
		storeIndex[s.code] = i
	}
	prefix := "DEMO-F"
	if g.opts.Seed != 1 {
		prefix = fmt.Sprintf("DEMO%d-F", g.opts.Seed)
	}
	day := float64(24 * time.Hour)
	var txns []models.TransactionInput
	for _, m := range list {
		if g.rng.Float64() >= chance[m.flowID] {
			continue
		}
		// Most come within two days; none after the mail's week.
		delay := time.Duration(g.rng.ExpFloat64() * 1.5 * day)
		if delay > 6*24*time.Hour {
			continue
		}
		at := g.atOpeningHours(m.at.Add(delay))
		if !at.After(m.at) {
			at = g.atOpeningHours(m.at.Add(24 * time.Hour))
		}
		if !at.Before(stop) {
			continue
		}
		e := &event{at: at, store: storeIndex[m.store], card: m.card}
		g.basket(e)
		txns = append(txns, models.TransactionInput{ID: prefix + fmt.Sprintf("%05d", len(txns)+1), Store: m.store,
			Register: "till-" + strconv.Itoa(1+g.rng.IntN(2)), Kind: models.KindSale, OccurredAt: at.Format(time.RFC3339),
			Amount: models.NewInt(e.amount), Currency: "NOK", Items: e.items, Member: &models.MemberRef{Card: m.card}})
	}
	if len(txns) == 0 {
		return nil
	}
	if _, err := db.ImportTransactions(ctx, &txnSlice{rows: txns}); err != nil {
		return fmt.Errorf("demo: import flow visits: %w", err)
	}
	return nil
}

// walkHistory moves every history entry along its flow as the engine would have by stop, in
// one transaction: the first mail when the entry is made (quiet hours move a mailed member's to
// their end), after a wait the if and the second mail, an exit at the first purchase after
// entering (before the flow ended), and records each mail as a recipient of its step's run of
// that day, with clicks on the mails' link.
func walkHistory(ctx context.Context, db *models.DB, made []*flows.Flow, stop time.Time) error {
	links := map[int64]int64{} // mail step campaign → its link
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("demo: flow history: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `
		CREATE TEMP TABLE demo_walk (
			entry_id bigint, flow_id bigint, member_id bigint, email text, held_out boolean,
			entered_at timestamptz, steps int, first_step int, wait_next int, second_step int,
			mail1 timestamptz, due2 timestamptz, second boolean, mail2 timestamptz, bought timestamptz,
			click1 float8, click2 float8
		) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("demo: flow history: %w", err)
	}
	var ids []int64
	for i, df := range demoFlows {
		f := made[i]
		ids = append(ids, f.ID)
		shape, err := walkShape(f)
		if err != nil {
			return err
		}
		for _, step := range []int{shape.first, shape.second} {
			if step < 0 {
				continue
			}
			var campaignID int64
			if err := tx.QueryRow(ctx, `SELECT id FROM campaigns WHERE flow_id = $1 AND flow_step = $2`, f.ID, step).Scan(&campaignID); err != nil {
				return fmt.Errorf("demo: mail step %d of flow %s: %w", step, f.Name, err)
			}
			registered, err := tracking.LinkIDs(ctx, db, campaignID, []string{cafeLink})
			if err != nil {
				return err
			}
			links[campaignID] = registered[cafeLink]
		}
		second := "false"
		if shape.second >= 0 {
			second = "true"
			if df.second != "" {
				second = df.second
			}
		}
		// mail1 and mail2 are when each mail step ran for the entry: held-out members walk on
		// at once, mailed ones wait for the end of quiet hours in their home store's zone.
		if _, err := tx.Exec(ctx, `
			INSERT INTO demo_walk
			SELECT e.id, e.flow_id, e.member_id, m.email, e.held_out, e.entered_at, $11, $5, $6, $7,
				t1.at, t1.at + $2::interval, `+second+`,
				CASE WHEN e.held_out THEN t1.at + $2::interval
				     ELSE coalesce(quiet_until(t1.at + $2::interval, s.timezone, $3::time, $8::time), t1.at + $2::interval) END,
				b.at, $9::float8, $10::float8
			FROM flow_entries e
			JOIN members m ON m.id = e.member_id
			JOIN stores s ON s.id = m.home_store_id
			CROSS JOIN LATERAL (SELECT CASE WHEN e.held_out THEN e.entered_at
				ELSE coalesce(quiet_until(e.entered_at, s.timezone, $3::time, $8::time), e.entered_at) END AS at) t1
			CROSS JOIN LATERAL (SELECT min(t.occurred_at) AS at FROM transactions t
				WHERE t.member_id = e.member_id AND t.kind = 'sale' AND t.occurred_at > e.entered_at) b
			WHERE e.flow_id = $1 AND $4::text IS NOT NULL -- typed even where the condition does not use it`,
			f.ID, shape.wait, flows.DefaultQuietStart, db.ZoneName(), shape.first, shape.waitNext, shape.second,
			flows.DefaultQuietEnd, df.clickRate[0], df.clickRate[1], shape.steps); err != nil {
			return fmt.Errorf("demo: walk flow %s: %w", f.Name, err)
		}
	}
	linksJSON := map[string]int64{}
	for c, l := range links {
		linksJSON[strconv.FormatInt(c, 10)] = l
	}
	statements := []struct {
		what, sql string
		args      []any
	}{
		// Where each entry is at stop. ended is when the flow was over for it (its last mail, or
		// the if that sent it nowhere); a purchase before that ended it, where it then was.
		{"entries", `
		WITH w AS (
			SELECT x.*, CASE WHEN x.second_step < 0 THEN x.mail1 WHEN x.second THEN x.mail2 ELSE x.due2 END AS ended
			FROM demo_walk x),
		s AS (
			SELECT w.*, CASE WHEN w.bought < w.ended AND w.bought < $1 THEN 'exited' WHEN w.ended < $1 THEN 'done' ELSE 'active' END AS status,
				CASE WHEN w.bought < w.ended AND w.bought < $1 THEN w.bought WHEN w.ended < $1 THEN w.ended ELSE $1 END AS at
			FROM w)
		UPDATE flow_entries e SET status = s.status,
			exit_reason = CASE WHEN s.status = 'exited' THEN 'purchase' END,
			finished_at = CASE WHEN s.status <> 'active' THEN s.at END,
			step = CASE WHEN s.status = 'done' THEN s.steps
			            WHEN s.mail1 >= s.at THEN s.first_step WHEN s.due2 >= s.at THEN s.wait_next ELSE s.second_step END,
			next_at = CASE WHEN s.status <> 'active' THEN s.at
			               WHEN s.mail1 >= s.at THEN s.mail1 WHEN s.due2 >= s.at THEN s.due2 ELSE s.mail2 END
		FROM s WHERE e.id = s.entry_id`, []any{stop}},
		// Every mail step that ran before stop and before a purchase ended the entry.
		{"mails", `
		CREATE TEMP TABLE demo_mails ON COMMIT DROP AS
		SELECT c.id AS campaign_id, x.member_id, x.email, x.held_out, x.at, x.click,
			date_trunc('day', x.at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day,
			x.at + ` + unit(`'sent:' || c.id || ':' || x.member_id`) + ` * interval '90 seconds' AS sent_at
		FROM (SELECT flow_id, member_id, email, held_out, first_step AS step, mail1 AS at, click1 AS click, bought FROM demo_walk
		      UNION ALL
		      SELECT flow_id, member_id, email, held_out, second_step, mail2, click2, bought FROM demo_walk
		      WHERE second_step >= 0 AND second) x
		JOIN campaigns c ON c.flow_id = x.flow_id AND c.flow_step = x.step
		WHERE x.at < $1 AND (x.bought IS NULL OR x.bought > x.at)`, []any{stop}},
		// A run per step and day, as the engine makes them, sent.
		{"runs", `
		INSERT INTO campaign_runs (campaign_id, scheduled_for, status, recipients, held_out, started_at, finished_at, created_at)
		SELECT campaign_id, day, 'sent', count(*) FILTER (WHERE NOT held_out), count(*) FILTER (WHERE held_out),
			min(at), max(sent_at), min(at)
		FROM demo_mails GROUP BY campaign_id, day`, nil},
		{"recipients", `
		INSERT INTO campaign_recipients (run_id, member_id, email, held_out, status, attempts, sent_at)
		SELECT r.id, d.member_id, d.email, d.held_out, CASE WHEN d.held_out THEN 'held_out' ELSE 'sent' END,
			CASE WHEN d.held_out THEN 0 ELSE 1 END, CASE WHEN NOT d.held_out THEN d.sent_at END
		FROM demo_mails d JOIN campaign_runs r ON r.campaign_id = d.campaign_id AND r.scheduled_for = d.day`, nil},
		// Clicks within hours of the mail, a quarter of the clickers twice.
		{"clicks", `
		INSERT INTO campaign_clicks (run_id, member_id, link_id, clicked_at)
		SELECT r.id, d.member_id, ($2::jsonb ->> d.campaign_id::text)::bigint,
			least(d.sent_at + (2 + ` + unit(`'click:' || n || ':' || d.campaign_id || ':' || d.member_id`) + ` * 600) * interval '1 minute', $1)
		FROM demo_mails d
		JOIN campaign_runs r ON r.campaign_id = d.campaign_id AND r.scheduled_for = d.day
		CROSS JOIN LATERAL generate_series(1, CASE WHEN ` + unit(`'twice:' || d.campaign_id || ':' || d.member_id`) + ` < 0.25 THEN 2 ELSE 1 END) n
		WHERE NOT d.held_out AND ` + unit(`'clicked:' || d.campaign_id || ':' || d.member_id`) + ` < d.click`,
			[]any{stop, linksJSON}},
		// The engine ends an entry at any sale received after it began (an offline batch
		// uploaded late shows the member was not gone). The demo's history was loaded just now:
		// for the members still on their way it is marked received when it happened.
		{"received", `
		UPDATE transactions t SET received_at = t.occurred_at
		FROM (SELECT DISTINCT member_id FROM flow_entries WHERE flow_id = ANY($1) AND status = 'active') a
		WHERE t.member_id = a.member_id AND t.received_at > t.occurred_at`, []any{ids}},
	}
	for _, s := range statements {
		if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("demo: flow history %s: %w", s.what, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("demo: flow history: %w", err)
	}
	return nil
}

// shape is what walkHistory needs of a flow's program: its first mail step, and for a second
// one the wait before it, where the wait leads (an if, or the mail) and the mail's index (-1
// when there is none).
type shape struct {
	steps, first, waitNext, second int
	wait                           time.Duration
}

// walkShape reads the shape of the demo flows: a mail, then optionally a wait and a second
// mail (behind an if or not).
func walkShape(f *flows.Flow) (shape, error) {
	prog, err := flows.Compile(f.Steps)
	if err != nil {
		return shape{}, err
	}
	s := shape{steps: len(prog), first: -1, waitNext: -1, second: -1}
	for i, op := range prog {
		switch {
		case op.Kind == flows.OpMail && s.first < 0:
			s.first = i
		case op.Kind == flows.OpMail:
			s.second = i
		case op.Kind == flows.OpWait:
			s.wait, s.waitNext = op.Wait, op.Next
		}
	}
	if s.first != 0 || (s.second >= 0) != (s.wait > 0) {
		return shape{}, fmt.Errorf("demo: flow %s is not a mail, a wait and a mail", f.Name)
	}
	return s, nil
}
