package models

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReserveTestSends counts a test send to n addresses against marketer's allowance of limit addresses
// in any window (marketer: "key:<id>" or "user:<id>"), in PostgreSQL so that every replica counts
// together. It returns the reservation, to give back with ReleaseTestSends what was not mailed;
// when the allowance is used up it returns ERATELIMITED and how long until enough of it frees.
func (db *DB) ReserveTestSends(ctx context.Context, marketer string, n, limit int, window time.Duration) (id int64, retryAfter time.Duration, err error) {
	now := db.Now()
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		// One marketer's test sends take turns, so two at once cannot both fit in the last room.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('test_sends:' || $1, 0))`, marketer); err != nil {
			return err
		}
		since := now.Add(-window)
		if _, err := tx.Exec(ctx, `DELETE FROM test_sends WHERE marketer = $1 AND sent_at <= $2`, marketer, since); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT sent_at, addresses FROM test_sends WHERE marketer = $1 ORDER BY sent_at`, marketer)
		if err != nil {
			return err
		}
		type send struct {
			at time.Time
			n  int
		}
		var recent []send
		used := 0
		for rows.Next() {
			var s send
			if err := rows.Scan(&s.at, &s.n); err != nil {
				return err
			}
			recent = append(recent, s)
			used += s.n
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if used+n > limit {
			// The oldest sends leave the window first: wait until enough of them have.
			retryAfter = window
			for _, s := range recent {
				used -= s.n
				if used+n <= limit {
					retryAfter = s.at.Add(window).Sub(now)
					break
				}
			}
			return Errorf(ERATELIMITED, "at most %d test-send addresses an hour per user or API key; try again in %d min",
				limit, int(math.Ceil(retryAfter.Minutes())))
		}
		return tx.QueryRow(ctx, `INSERT INTO test_sends (marketer, addresses, sent_at) VALUES ($1, $2, $3) RETURNING id`,
			marketer, n, now).Scan(&id)
	})
	if err != nil {
		if ErrorCode(err) == ERATELIMITED {
			return 0, max1s(retryAfter), err
		}
		return 0, 0, fmt.Errorf("reserve test sends for %s: %w", marketer, err)
	}
	return id, 0, nil
}

// ReleaseTestSends gives back unused addresses of reservation id: addresses that were never
// mailed (refused, invalid or repeated) do not count against the allowance.
func (db *DB) ReleaseTestSends(ctx context.Context, id int64, unused int) error {
	if _, err := db.Pool.Exec(ctx, `UPDATE test_sends SET addresses = greatest(addresses - $2, 0) WHERE id = $1`, id, unused); err != nil {
		return fmt.Errorf("release test sends %d: %w", id, err)
	}
	return nil
}

// max1s rounds a wait up to at least a second, the least a Retry-After header can say.
func max1s(d time.Duration) time.Duration {
	return max(d, time.Second)
}
