package tracking

import (
	"context"
	"fmt"

	"github.com/regulars/regulars/models"
)

// readMargins fills Revenue.Margin of every run and of the total: the gross margin of the
// receipt lines of the purchases that make up Attributed (each sent recipient's transactions
// within the attribution window after its mail, in the figures' currency), with the lines
// whose cost is not known counted beside it (models.LineMarginSQL). Held-out members have no
// margin here: the holdout compares revenue. One grouped query; purchases without lines add
// nothing (their revenue is in Attributed, not in the margin's known_cost_revenue).
func readMargins(ctx context.Context, db *models.DB, campaignID int64, days int, st *Stats) error {
	cur := st.Total.Revenue.Currency
	if cur == nil { // no purchase in any window
		return nil
	}
	rows, err := db.Pool.Query(ctx, `
		WITH rec AS MATERIALIZED (
		    SELECT r.run_id, r.member_id, r.sent_at
		    FROM campaign_recipients r JOIN campaign_runs run ON run.id = r.run_id
		    WHERE run.campaign_id = $1 AND NOT r.held_out AND r.status = 'sent' AND r.sent_at IS NOT NULL)
		SELECT rec.run_id, `+models.LineMarginSQL+`
		FROM rec
		JOIN transactions t ON t.member_id = rec.member_id AND t.currency = $3
		 AND t.occurred_at > rec.sent_at AND t.occurred_at <= rec.sent_at + make_interval(days => $2)
		JOIN transaction_items i ON i.transaction_id = t.id
		LEFT JOIN products p ON p.sku = i.sku
		GROUP BY rec.run_id`, campaignID, days, *cur)
	if err != nil {
		return fmt.Errorf("margin of campaign %d: %w", campaignID, err)
	}
	defer rows.Close()
	byRun := map[int64]models.Margin{}
	for rows.Next() {
		var runID int64
		var m models.Margin
		if err := rows.Scan(&runID, &m.Lines, &m.UnknownCostLines, &m.KnownCostRevenue, &m.GrossMargin); err != nil {
			return fmt.Errorf("margin of campaign %d: %w", campaignID, err)
		}
		byRun[runID] = m
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("margin of campaign %d: %w", campaignID, err)
	}
	for i := range st.Runs {
		r := &st.Runs[i]
		r.Revenue.Margin = byRun[r.RunID]
		st.Total.Revenue.Margin.Add(r.Revenue.Margin)
	}
	return nil
}
