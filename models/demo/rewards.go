package demo

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/regulars/regulars/models"
)

// The café's stamp card: a stamp for every visit of at least 30 kroner, ten stamps buy a free
// coffee, stamps last a year. The program started RewardHistoryDays before the end of the
// history, so that the oldest stamps have expired by now.
const (
	// RewardHistoryDays is how long the demo's reward program has run.
	RewardHistoryDays = 400
	// CoffeeReward is the reward the demo's members save up for.
	CoffeeReward = "coffee"

	stampMinAmount  = 3000 // 30.00 NOK
	stampExpiryDays = 365
	coffeeCost      = 10
	coffeePrice     = 3500 // COF-FILTER
	// Of the members whose card is full, this share redeem their coffee at the next visit (the
	// others keep saving), and this share of those redemptions are cancelled at once (the till
	// voided the sale).
	redeemShare = 0.75
	cancelShare = 0.03
	// Vouchers the demo's admin issued, one every 10 days back from 15 days ago, each valid
	// for voucherDays; about voucherUseShare of them were used at the member's next visit.
	demoVouchers    = 12
	voucherDays     = 60
	voucherUseShare = 0.6
)

// demoRewards are the rewards a café offers: a free coffee for a full card, and a discount on
// a record for those who save longer.
var demoRewards = []struct {
	code, name string
	cost       int64
	minor      int64
	percent    float64
}{
	{CoffeeReward, "Free coffee", coffeeCost, coffeePrice, 0},
	{"record-10", "10 % off a record", 25, 0, 10},
}

// rewardsAndHistory sets the stamp card and the rewards as an admin would (SetRewardProgram,
// CreateReward) and writes RewardHistoryDays of the program's ledger in one set-based
// statement (rewardHistorySQL), then applies the nightly expiry as of the end of the history.
func (g *generator) rewardsAndHistory(ctx context.Context, db *models.DB, sum *Summary) error {
	days := models.NewInt(stampExpiryDays)
	zero := 0.0
	if _, err := db.SetRewardProgram(ctx, models.RewardProgramInput{PointsPerVisit: models.NewInt(1),
		PointsPerMajorUnit: &zero, MinAmount: models.NewInt(stampMinAmount), ExpireAfterDays: days}); err != nil {
		return fmt.Errorf("demo: reward program: %w", err)
	}
	for _, r := range demoRewards {
		code, name := r.code, r.name
		in := models.RewardInput{Code: &code, Name: &name, CostPoints: models.NewInt(r.cost)}
		if r.minor > 0 {
			in.DiscountMinor = models.NewInt(r.minor)
		} else {
			pct := r.percent
			in.DiscountPercent = &pct
		}
		if _, err := db.CreateReward(ctx, in); err != nil {
			return fmt.Errorf("demo: reward %s: %w", r.code, err)
		}
	}
	start := g.opts.Now.AddDate(0, 0, -RewardHistoryDays)
	// Voucher codes from a random source of their own, so that the rest of the demo stays as
	// it was.
	rng := rand.New(rand.NewPCG(g.opts.Seed, 0x70c))
	codes := make([]string, demoVouchers)
	for i := range codes {
		codes[i] = models.WithCheckDigit(fmt.Sprintf("28%010d", rng.Int64N(10_000_000_000)))
	}
	// The history was loaded a moment ago: without statistics the planner would walk it with
	// nested loops for minutes.
	if _, err := db.Pool.Exec(ctx, `ANALYZE transactions, members`); err != nil {
		return fmt.Errorf("demo: reward history: %w", err)
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("demo: reward history: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `UPDATE reward_program SET updated_at = $1`, start); err != nil {
		return fmt.Errorf("demo: reward history: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE rewards SET created_at = $1, updated_at = $1`, start); err != nil {
		return fmt.Errorf("demo: reward history: %w", err)
	}
	if _, err := tx.Exec(ctx, rewardHistorySQL, start, g.opts.Now, CoffeeReward, codes,
		redeemShare, cancelShare, voucherDays, voucherUseShare); err != nil {
		return fmt.Errorf("demo: reward history: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("demo: reward history: %w", err)
	}
	if _, err := db.ExpirePoints(ctx, g.opts.Now); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return rewardSummary(ctx, db, sum)
}

// rewardHistorySQL writes the program's history from $1 to $2 ($3 the coffee reward's code, $4
// the voucher codes, $5 to $8 redeemShare, cancelShare, voucherDays and voucherUseShare) in one
// statement, as the till and the API would have written it:
//
//   - earned: each member sale of the history credits visit_points + unit_points, the rule of
//     the till's insert (models/points.go), at the time of the sale, expiring a program's
//     expire_after_days later;
//   - refunded: each refund of a credited sale debits as debitRefundsSQL does (its own
//     unit_points, the visit's points when the refunds reach the whole sale, never more than
//     the sale earned);
//   - spent: when a member's card fills (the running sum of credits and debits first reaches a
//     multiple of the coffee's cost) and their next ledger event is a sale, redeemShare of them
//     redeem a coffee at that sale, just before it is posted. Their balance then is the full
//     card less the coffees before, never below the cost;
//   - cancelled: cancelShare of those redemptions are cancelled two minutes later;
//   - vouchers: the admin issued a coffee voucher to demoVouchers members who bought in the
//     last 120 days; voucherUseShare of them used it at their first visit before it expired
//     (a redemption that spends no points).
//
// Redemptions carry the content hash Redeem gives them (a till's replay of one is a replay),
// and the ledger is written in time order, so that its identity orders it as the API pages it.
var rewardHistorySQL = `
    WITH sales AS MATERIALIZED (
        SELECT t.id, t.member_id, t.store_id, t.txn_id, t.occurred_at, t.amount_minor, t.currency
        FROM transactions t
        WHERE t.kind = 'sale' AND t.member_id IS NOT NULL AND t.occurred_at >= $1 AND t.occurred_at < $2
    ), rule AS MATERIALIZED (
        -- The rule once per amount: the demo's baskets repeat, and the functions are slow per row.
        SELECT amount_minor, currency, visit_points(amount_minor, p.min_amount, p.points_per_visit)
               + unit_points(amount_minor, currency, p.points_per_major_unit) AS points
        FROM (SELECT DISTINCT amount_minor, currency FROM sales) a CROSS JOIN reward_program p
    ), earned AS (
        SELECT s.id AS txn, s.member_id, s.store_id, s.txn_id, s.occurred_at AS at, r.points
        FROM sales s JOIN rule r USING (amount_minor, currency)
        WHERE r.points > 0
    ), refund AS (
        SELECT r.id AS txn, r.member_id, r.occurred_at AS at, e.txn AS sale, e.points AS cap,
               unit_points(r.amount_minor, r.currency, p.points_per_major_unit)
                 + CASE WHEN sum(r.amount_minor) OVER w - r.amount_minor < s.amount_minor
                         AND sum(r.amount_minor) OVER w >= s.amount_minor
                        THEN visit_points(s.amount_minor, p.min_amount, p.points_per_visit) ELSE 0 END AS own
        FROM transactions r
        JOIN transactions s ON s.store_id = r.store_id AND s.txn_id = r.refunds_txn_id AND s.kind = 'sale'
        JOIN earned e ON e.txn = s.id
        CROSS JOIN reward_program p
        WHERE r.kind = 'refund' AND r.member_id IS NOT NULL AND r.occurred_at < $2
        WINDOW w AS (PARTITION BY s.id ORDER BY r.id)
    ), refunded AS (
        SELECT txn, member_id, at, points FROM (
            SELECT txn, member_id, at,
                   greatest(0, least(own, cap - least(cap, coalesce(sum(own) OVER w - own, 0)))) AS points
            FROM refund WINDOW w AS (PARTITION BY sale ORDER BY txn)) d
        WHERE points > 0
    ), events AS (
        SELECT member_id, at, txn, points, store_id, txn_id FROM earned
        UNION ALL
        SELECT member_id, at, txn, -points, NULL, NULL FROM refunded
    ), running AS (
        SELECT member_id, at, txn, sum(points) OVER w AS net,
               lead(txn_id) OVER w AS next_txn_id, lead(store_id) OVER w AS next_store, lead(at) OVER w AS next_at
        FROM events WINDOW w AS (PARTITION BY member_id ORDER BY at, txn)
    ), peaks AS (
        SELECT r.*, floor(max(net) OVER w / c.cost_points)::int AS cards,
               floor(coalesce(max(net) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) / c.cost_points)::int AS cards_before
        FROM running r CROSS JOIN (SELECT cost_points FROM rewards WHERE code = $3) c
        WINDOW w AS (PARTITION BY member_id ORDER BY at, txn)
    ), coffee AS (
        SELECT member_id, next_store AS store_id, next_txn_id AS txn_ref, next_at - interval '30 seconds' AS at,
               NULL::text AS voucher,
               ` + unit(`'cancel:' || member_id || ':' || cards`) + ` < $6::float8 AS cancelled
        FROM peaks
        WHERE cards > cards_before AND next_txn_id IS NOT NULL
          AND ` + unit(`'redeem:' || member_id || ':' || cards`) + ` < $5::float8
    ), picked AS (
        SELECT member_id, row_number() OVER (ORDER BY md5('voucher:' || member_id), member_id) AS n
        FROM (SELECT DISTINCT member_id FROM earned WHERE at >= $2::timestamptz - interval '120 days') b
        ORDER BY md5('voucher:' || member_id), member_id LIMIT cardinality($4::text[])
    ), vplan AS (
        SELECT c.code, p.member_id, i.issued_at, i.issued_at + make_interval(days => $7::int) AS expires_at,
               u.store_id, u.txn_ref, u.at
        FROM picked p JOIN unnest($4::text[]) WITH ORDINALITY c(code, n) ON c.n = p.n
        CROSS JOIN LATERAL (SELECT date_trunc('day', $2::timestamptz) - (5 + 10 * p.n) * interval '1 day' + interval '9 hours' AS issued_at) i
        LEFT JOIN LATERAL (
            SELECT e.store_id, e.txn_id AS txn_ref, e.at - interval '30 seconds' AS at FROM earned e
            WHERE e.member_id = p.member_id AND e.at > i.issued_at
              AND e.at < least($2::timestamptz, i.issued_at + make_interval(days => $7::int))
            ORDER BY e.at LIMIT 1) u ON ` + unit(`'use:' || c.code`) + ` < $8::float8
    ), issued AS (
        INSERT INTO vouchers (code, member_id, reward_code, expires_at, issued_by, used_at, created_at)
        SELECT code, member_id, $3, expires_at, 'admin', at, issued_at FROM vplan
        RETURNING id, code
    ), plan AS (
        SELECT member_id, store_id, txn_ref, at, voucher, cancelled FROM coffee
        UNION ALL
        SELECT member_id, store_id, txn_ref, at, code, false FROM vplan WHERE at IS NOT NULL
    ), numbered AS (
        SELECT p.*, 'DEMO-RD-' || lpad((row_number() OVER (ORDER BY p.at, p.member_id))::text, 6, '0') AS id
        FROM plan p
    ), rd AS (
        INSERT INTO redemptions (store_id, txn_id, member_id, reward_code, voucher_id, points_spent,
                                 discount_minor, discount_percent, transaction_ref, content_hash, created_at, cancelled_at)
        SELECT n.store_id, n.id, n.member_id, r.code, i.id, CASE WHEN n.voucher IS NULL THEN r.cost_points ELSE 0 END,
               r.discount_minor, r.discount_percent, n.txn_ref,
               sha256(convert_to(concat_ws(chr(31), n.id, m.card, '', '',
                   CASE WHEN n.voucher IS NULL THEN r.code ELSE '' END, coalesce(n.voucher, ''), n.txn_ref, ''), 'UTF8')),
               n.at, CASE WHEN n.cancelled THEN n.at + interval '2 minutes' END
        FROM numbered n JOIN members m ON m.id = n.member_id JOIN rewards r ON r.code = $3
        LEFT JOIN issued i ON i.code = n.voucher
        RETURNING id, member_id, points_spent, created_at, cancelled_at
    )
    INSERT INTO points_ledger (member_id, kind, points, transaction_id, redemption_id, expires_at, created_at)
    SELECT member_id, kind, points, txn, redemption, expires_at, at FROM (
        SELECT e.member_id, 'earned' AS kind, e.points, e.txn, NULL::bigint AS redemption,
               e.at + make_interval(days => p.expire_after_days) AS expires_at, e.at
        FROM earned e CROSS JOIN reward_program p
        UNION ALL
        SELECT member_id, 'refunded', -points, txn, NULL, NULL, at FROM refunded
        UNION ALL
        SELECT member_id, 'spent', -points_spent, NULL, id, NULL, created_at FROM rd WHERE points_spent > 0
        UNION ALL
        SELECT member_id, 'cancelled', points_spent, NULL, id, NULL, cancelled_at FROM rd
        WHERE points_spent > 0 AND cancelled_at IS NOT NULL) l
    ORDER BY at, kind, member_id`

// rewardSummary counts what the program's history left: members with points, those who can
// afford the coffee now, redemptions and vouchers, and names the first of the members who can
// afford it (the README's till walk-through uses that card).
func rewardSummary(ctx context.Context, db *models.DB, sum *Summary) error {
	for _, r := range demoRewards {
		sum.Rewards = append(sum.Rewards, r.code)
	}
	err := db.Pool.QueryRow(ctx, `
		WITH b AS (SELECT member_id, sum(points) AS balance FROM points_ledger GROUP BY member_id)
		SELECT count(*) FILTER (WHERE b.balance > 0), count(*) FILTER (WHERE b.balance >= $1),
		       (SELECT count(*) FROM redemptions), (SELECT count(*) FROM vouchers),
		       coalesce((SELECT m.card FROM b b2 JOIN members m ON m.id = b2.member_id
		                 WHERE b2.balance >= $1 AND m.card IS NOT NULL AND m.status = 'active'
		                 ORDER BY m.id LIMIT 1), '')
		FROM b`, coffeeCost).Scan(&sum.PointsMembers, &sum.CoffeeMembers, &sum.Redemptions, &sum.Vouchers, &sum.CoffeeCard)
	if err != nil {
		return fmt.Errorf("demo: reward summary: %w", err)
	}
	return nil
}
