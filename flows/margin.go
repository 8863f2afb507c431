package flows

import (
	"context"
	"fmt"

	"github.com/regulars/regulars/models"
)

// readMargin fills st.Revenue.Margin: the gross margin of the receipt lines of the purchases
// that make up Revenue (each matured mailed entry's transactions over (entered_at, entered_at +
// days]), with the lines whose cost is not known counted beside it (models.LineMarginSQL).
func readMargin(ctx context.Context, db *models.DB, id int64, days int, st *Stats) error {
	m := &st.Revenue.Margin
	if err := db.Pool.QueryRow(ctx, `
		SELECT `+models.LineMarginSQL+`
		FROM flow_entries e
		JOIN transactions t ON t.member_id = e.member_id AND t.occurred_at > e.entered_at
		 AND t.occurred_at <= e.entered_at + make_interval(days => $2)
		JOIN transaction_items i ON i.transaction_id = t.id
		LEFT JOIN products p ON p.sku = i.sku
		WHERE e.flow_id = $1 AND NOT e.held_out AND e.entered_at + make_interval(days => $2) <= now()`,
		id, days).Scan(&m.Lines, &m.UnknownCostLines, &m.KnownCostRevenue, &m.GrossMargin); err != nil {
		return fmt.Errorf("flow %d margin: %w", id, err)
	}
	return nil
}
