package metrics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/regulars/regulars/models/dbtest"
)

// rfmByNtile is the contract's definition of the scores, as the run computed them before
// rfmSQL used rank(): ntile(5) over the members ordered by the value and then the member id,
// and each tie given the lowest bucket any of its members landed in.
const rfmByNtile = `
WITH w AS (
    SELECT s.member_id, $1::date - s.last_day AS recency_days,
           s.orders_window AS purchases, s.spend_window AS net_spend
    FROM metrics_summary s WHERE s.orders_window > 0
), tiles AS (
    SELECT w.*,
           ntile(5) OVER (ORDER BY w.recency_days DESC, w.member_id) AS r_tile,
           ntile(5) OVER (ORDER BY w.purchases, w.member_id) AS f_tile,
           ntile(5) OVER (ORDER BY w.net_spend, w.member_id) AS m_tile
    FROM w
)
SELECT t.member_id,
       min(t.r_tile) OVER (PARTITION BY t.recency_days),
       min(t.f_tile) OVER (PARTITION BY t.purchases),
       min(t.m_tile) OVER (PARTITION BY t.net_spend)
FROM tiles t`

// The rank-based scores equal the ntile definition for every number of scored members (fewer
// than five, a multiple of five, each remainder) and any amount of ties.
func TestRFMScoresByRankEqualNtile(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(14, 3))
	for _, n := range []int{0, 1, 2, 4, 5, 6, 7, 9, 10, 13, 101, 1003} {
		for _, spread := range []int{1, 3, 40, 100000} { // distinct values per score: all tied … none
			t.Run(fmt.Sprintf("n=%d/values=%d", n, spread), func(t *testing.T) {
				err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
					// An empty summary (the test database has no transactions), then the rows.
					if _, err := tx.Exec(ctx, summarySQL, "UTC", "2026-04-01T00:00:00Z", "2026-04-01",
						"2025-04-01", "2025-10-03", "2026-01-01"); err != nil {
						return err
					}
					ids, orders, spend, last := []int64{}, []int32{}, []int64{}, []string{}
					for i := range n {
						ids = append(ids, int64(1000+i*7))
						orders = append(orders, int32(1+rng.IntN(spread)))
						spend = append(spend, int64(rng.IntN(spread)-spread/3))
						last = append(last, fmt.Sprintf("2026-03-%02d", 1+rng.IntN(min(spread, 28))))
					}
					if _, err := tx.Exec(ctx, `
						INSERT INTO metrics_summary (member_id, orders_window, spend_window, last_day, orders_365d,
						                             spend_365d, sold_before_window, bought_before, bought_recently)
						SELECT id, o, s, l::date, o, 0, true, false, true
						FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::text[]) u(id, o, s, l)`,
						ids, orders, spend, last); err != nil {
						return err
					}
					// Lost: sold before the window, nothing in it; and a member who never bought.
					if _, err := tx.Exec(ctx, `
						INSERT INTO metrics_summary (member_id, orders_window, spend_window, orders_365d, spend_365d,
						                             sold_before_window, bought_before, bought_recently)
						VALUES (1, 0, 0, 0, 0, true, false, false), (2, 0, -500, 0, 0, false, false, false)`); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, rfmTableSQL); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, rfmSQL, "2026-04-01"); err != nil {
						return err
					}
					var differ, scored, lost int
					err := tx.QueryRow(ctx, `
						WITH want AS (`+rfmByNtile+`), got AS (
						    SELECT member_id, recency_score::bigint, frequency_score::bigint, monetary_score::bigint
						    FROM metrics_rfm WHERE recency_score IS NOT NULL)
						SELECT (SELECT count(*) FROM ((SELECT * FROM want EXCEPT ALL SELECT * FROM got)
						                              UNION ALL (SELECT * FROM got EXCEPT ALL SELECT * FROM want)) d),
						       (SELECT count(*) FROM got),
						       (SELECT count(*) FROM metrics_rfm WHERE recency_score IS NULL AND rfm_segment = 'Lost' AND member_id = 1)`,
						"2026-04-01").Scan(&differ, &scored, &lost)
					if err != nil {
						return err
					}
					if differ != 0 || scored != n || lost != 1 {
						t.Errorf("%d scores differ from ntile's, %d scored (want %d), Lost member rows %d (want 1)", differ, scored, n, lost)
					}
					return errRollback
				})
				if err != errRollback {
					t.Fatal(err)
				}
			})
		}
	}
}

var errRollback = fmt.Errorf("rollback")
