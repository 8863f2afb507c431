package models

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Reads of points for the pages that show them (the console's member page, the club's welcome and
// preferences pages, campaign and flow mail): a member's balance with their stamp card, and their
// unused vouchers.

// StampCostSQL is the size of the stamp card: the cost of the cheapest active reward when the
// program is a stamp program (points per visit, none per amount), NULL otherwise. It reads no
// member, so a statement that selects it per row evaluates it once (an InitPlan).
const StampCostSQL = `
    SELECT min(r.cost_points) FROM reward_program p JOIN rewards r ON r.active
    WHERE p.points_per_visit > 0 AND p.points_per_major_unit = 0`

// PointsSummary is what a page shows of a member's points.
type PointsSummary struct {
	// Program is whether a reward program is set; pages show nothing of points without one.
	Program bool
	Balance int
	// StampCost is the size of the stamp card (StampCostSQL); 0 when there is none.
	StampCost int
}

// Stamps is how many stamps of the card are filled: the balance, at most the card's size
// (a full card buys the reward), never below zero.
func (s PointsSummary) Stamps() int { return StampsFilled(s.Balance, s.StampCost) }

// StampsFilled is the filled stamps of a card of size cost for balance: the balance capped at
// cost and at zero. A card's size is the cheapest reward, so a full card means the member can
// redeem it; the rest of the balance shows in the points figure.
func StampsFilled(balance, cost int) int {
	return max(0, min(balance, cost))
}

// FindPointsSummary returns member id's balance, whether a program is set and the stamp card's
// size, in one statement; ENOTFOUND when there is no such member.
func (db *DB) FindPointsSummary(ctx context.Context, id int64) (*PointsSummary, error) {
	var out PointsSummary
	var cost *int
	err := db.Pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM reward_program),
		       (SELECT coalesce(sum(l.points), 0) FROM points_ledger l WHERE l.member_id = m.id),
		       (`+StampCostSQL+`)
		FROM members m WHERE m.id = $1`, id).Scan(&out.Program, &out.Balance, &cost)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "no member %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("points summary of member %d: %w", id, err)
	}
	if cost != nil {
		out.StampCost = *cost
	}
	return &out, nil
}

// FindMemberVouchers lists member id's vouchers that are neither used nor expired, the first
// to expire first.
func (db *DB) FindMemberVouchers(ctx context.Context, id int64) ([]Voucher, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT v.code, v.reward_code, r.name, v.expires_at
		FROM vouchers v JOIN rewards r ON r.code = v.reward_code
		WHERE v.member_id = $1 AND v.used_at IS NULL AND v.expires_at > $2
		ORDER BY v.expires_at, v.code`, id, db.Now())
	if err != nil {
		return nil, fmt.Errorf("vouchers of member %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Voucher, error) {
		var v Voucher
		err := row.Scan(&v.Code, &v.Reward, &v.Name, &v.ExpiresAt)
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("vouchers of member %d: %w", id, err)
	}
	return out, nil
}
