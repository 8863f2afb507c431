package models

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Points are earned, in the same database transaction that stores the sale, by till sales
// (live) of a member while a rewards program exists: the SQL functions visit_points and
// unit_points (migrations/00019_rewards.sql) are the rule. A sale linked to a member later is
// credited when it is linked. A refund debits what its own amount earns (the visit's points
// only when it makes the sale's refunds reach the whole sale), never more than its sale earned
// less what earlier refunds of it debited. The ledger's unique index on transaction_id makes a
// replayed or re-uploaded sale credit nothing again.

// earnSQL is the CTE the till's insert ends with: a credit for each stored sale of a member.
// ins must return id, kind, amount_minor, currency, member_id and received_at.
const earnSQL = `, earned AS (
    INSERT INTO points_ledger (member_id, kind, points, transaction_id, expires_at)
    SELECT ins.member_id, 'earned', e.points, ins.id,
           ins.received_at + make_interval(days => p.expire_after_days)
    FROM ins CROSS JOIN reward_program p
    CROSS JOIN LATERAL (SELECT visit_points(ins.amount_minor, p.min_amount, p.points_per_visit)
                             + unit_points(ins.amount_minor, ins.currency, p.points_per_major_unit) AS points) e
    WHERE ins.kind = 'sale' AND ins.member_id IS NOT NULL AND e.points > 0
    ON CONFLICT DO NOTHING
    RETURNING transaction_id, points
)`

// creditLinkedSQL credits sales $1 (ids) that have a member and no credit yet: sales linked
// to a member after they were stored. Only till sales earn; imported history does not.
const creditLinkedSQL = `
    INSERT INTO points_ledger (member_id, kind, points, transaction_id, expires_at)
    SELECT t.member_id, 'earned', e.points, t.id, now() + make_interval(days => p.expire_after_days)
    FROM transactions t CROSS JOIN reward_program p
    CROSS JOIN LATERAL (SELECT visit_points(t.amount_minor, p.min_amount, p.points_per_visit)
                             + unit_points(t.amount_minor, t.currency, p.points_per_major_unit) AS points) e
    WHERE t.id = ANY($1) AND t.kind = 'sale' AND t.live AND t.member_id IS NOT NULL AND e.points > 0
    ON CONFLICT DO NOTHING`

// lockRefundedSalesSQL locks the sales that refunds $1 name, in id order, so that two refunds
// of one sale committing at the same time debit one after the other (the debit statement that
// follows reads the ledger afresh after the wait).
//
// This statement and debitRefundsSQL reach each row by one index probe per id (unnest, LATERAL
// … OFFSET 0) rather than "id = ANY($1)" and a join: the till's flush connections keep a generic
// plan, and one made on a new, never analysed table scanned the whole table per flush.
// (The sales stay a plain join here: FOR UPDATE OF a subquery would lock them inside it, in the
// refunds' order rather than by id.)
const lockRefundedSalesSQL = `
    SELECT s.id FROM (SELECT DISTINCT unnest($1::bigint[]) AS id) ids
    CROSS JOIN LATERAL (SELECT * FROM transactions r WHERE r.id = ids.id OFFSET 0) r
    JOIN transactions s ON s.store_id = r.store_id AND s.txn_id = r.refunds_txn_id
    WHERE r.kind = 'refund'
    ORDER BY s.id FOR UPDATE OF s`

// debitRefundsSQL debits refunds $1 (ids) that have a member and no debit yet. For a refund of a
// known sale, in id order within the statement:
//
//	own_k   = unit_points(amount_k) + the visit's points if the refunds of the sale reach its
//	          amount with this one and did not before it
//	debit_k = min(own_k, cap − min(cap, Σ own_j of the sale's earlier refunds in $1))
//	cap     = what the sale earned − what its refunds already debited
//
// A refund that names no stored sale debits unit_points of its amount. Without a program nothing
// is debited. The sums over a sale's refunds use the index transactions_refunds (migration
// 00021); without it each debit read the store's every transaction.
const debitRefundsSQL = `
    WITH r AS (
        SELECT t.id, t.member_id, t.amount_minor, t.currency, s.id AS sale_id, s.amount_minor AS sale_amount,
               coalesce((SELECT sum(o.amount_minor) FROM transactions o
                         WHERE o.store_id = s.store_id AND o.refunds_txn_id = s.txn_id AND o.kind = 'refund'
                           AND NOT o.id = ANY($1)), 0) AS refunded_before,
               coalesce((SELECT l.points FROM points_ledger l WHERE l.transaction_id = s.id), 0)
                 + coalesce((SELECT sum(l.points) FROM transactions o JOIN points_ledger l ON l.transaction_id = o.id
                             WHERE o.store_id = s.store_id AND o.refunds_txn_id = s.txn_id AND o.kind = 'refund'), 0) AS cap
        FROM (SELECT DISTINCT unnest($1::bigint[]) AS id) ids
        CROSS JOIN LATERAL (SELECT * FROM transactions t WHERE t.id = ids.id OFFSET 0) t
        LEFT JOIN LATERAL (SELECT * FROM transactions s
                           WHERE s.store_id = t.store_id AND s.txn_id = t.refunds_txn_id AND s.kind = 'sale'
                           OFFSET 0) s ON true
        WHERE t.kind = 'refund' AND t.member_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM points_ledger l WHERE l.transaction_id = t.id)
    ), own AS (
        SELECT r.*, unit_points(r.amount_minor, r.currency, p.points_per_major_unit)
                 + CASE WHEN r.sale_id IS NOT NULL
                         AND r.refunded_before + sum(r.amount_minor) OVER w - r.amount_minor < r.sale_amount
                         AND r.refunded_before + sum(r.amount_minor) OVER w >= r.sale_amount
                        THEN visit_points(r.sale_amount, p.min_amount, p.points_per_visit) ELSE 0 END AS own
        FROM r CROSS JOIN reward_program p WINDOW w AS (PARTITION BY r.sale_id ORDER BY r.id)
    ), debit AS (
        SELECT own.*, CASE WHEN own.sale_id IS NULL THEN own.own
                           ELSE greatest(0, least(own.own, greatest(own.cap, 0)
                                - least(greatest(own.cap, 0), coalesce(sum(own.own) OVER w - own.own, 0)))) END AS points
        FROM own WINDOW w AS (PARTITION BY own.sale_id ORDER BY own.id)
    )
    INSERT INTO points_ledger (member_id, kind, points, transaction_id)
    SELECT member_id, 'refunded', -points, id FROM debit WHERE points > 0
    ON CONFLICT DO NOTHING
    RETURNING transaction_id, points`

type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// settlePoints credits the sales and debits the refunds among ids that a rewards program
// makes count and that have no ledger entry yet, inside tx (refundsOnly: the ids are refunds,
// the till's insert having credited its sales). It returns the refunds' debits (negative points)
// by transaction id.
func settlePoints(ctx context.Context, tx execer, ids []int64, refundsOnly bool) (map[int64]int, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if !refundsOnly {
		if _, err := tx.Exec(ctx, creditLinkedSQL, ids); err != nil {
			return nil, fmt.Errorf("credit points: %w", err)
		}
	}
	rows, err := tx.Query(ctx, lockRefundedSalesSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("lock refunded sales: %w", err)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock refunded sales: %w", err)
	}
	rows, err = tx.Query(ctx, debitRefundsSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("debit refunds: %w", err)
	}
	debits := map[int64]int{}
	var id int64
	var points int
	if _, err := pgx.ForEachRow(rows, []any{&id, &points}, func() error { debits[id] = points; return nil }); err != nil {
		return nil, fmt.Errorf("debit refunds: %w", err)
	}
	return debits, nil
}

// pointsExpiryLock is the advisory lock ExpirePoints holds while it writes, so that two replicas
// running the nightly job at once expire each point once: the second waits, then sees the
// first one's rows.
const pointsExpiryLock = 0x504f4954 // "POIT"

// ExpirePoints records, for every member with credits expired by asOf, the points of those
// credits that spending, refunds and earlier expiry have not used up: oldest points go first,
// so what is left of the credits that expired is Σ expired credits − Σ consumed, when positive
// (consumed: everything but credits, less what cancelled redemptions gave back). One statement
// for all members, under pointsExpiryLock. It returns the points expired.
func (db *DB) ExpirePoints(ctx context.Context, asOf time.Time) (int64, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("expire points: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pointsExpiryLock)); err != nil {
		return 0, fmt.Errorf("expire points: %w", err)
	}
	var expired int64
	if err := tx.QueryRow(ctx, `
		WITH due AS (
			SELECT DISTINCT member_id FROM points_ledger
			WHERE kind = 'earned' AND expires_at <= $1
		), left_over AS (
			SELECT l.member_id,
				coalesce(sum(l.points) FILTER (WHERE l.kind = 'earned' AND l.expires_at <= $1), 0)
				+ coalesce(sum(l.points) FILTER (WHERE l.kind <> 'earned'), 0) AS points
			FROM points_ledger l JOIN due USING (member_id)
			GROUP BY l.member_id
		), ins AS (
			INSERT INTO points_ledger (member_id, kind, points)
			SELECT member_id, 'expired', -points FROM left_over WHERE points > 0
			RETURNING points)
		SELECT coalesce(-sum(points), 0) FROM ins`, asOf).Scan(&expired); err != nil {
		return 0, fmt.Errorf("expire points: %w", err)
	}
	return expired, tx.Commit(ctx)
}
