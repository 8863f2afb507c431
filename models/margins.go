package models

// How receipt lines add up to a gross margin (issue 16, docs/metrics.md "Units and margins"):
// the one home of the rule, shared by the segment metrics, campaign stats and flow stats.

// LineMarginSQL is the select list that aggregates receipt lines into Margin's figures, over
// rows of a transaction t (its kind signs the line), its line i and the catalogue product p
// LEFT JOINed on p.sku = i.sku. A line counts at qty × unit price; its cost is qty × the
// product's cost_minor now. A line without a known cost (sku not in the catalogue, or no
// cost_minor) is counted in unknown_cost_lines and left out of both known_cost_revenue and
// gross_margin, never taken as cost 0; both are NULL when no line has a known cost.
const LineMarginSQL = `count(i.transaction_id) AS lines,
       count(i.transaction_id) FILTER (WHERE p.cost_minor IS NULL) AS unknown_cost_lines,
       sum(net_amount(t.kind, i.qty * i.unit_price_minor)) FILTER (WHERE p.cost_minor IS NOT NULL) AS known_cost_revenue,
       sum(net_amount(t.kind, i.qty * (i.unit_price_minor - p.cost_minor))) FILTER (WHERE p.cost_minor IS NOT NULL) AS gross_margin`

// Margin is the gross margin of some purchases' receipt lines, with how many lines it could
// not cost (LineMarginSQL). Money is in minor units.
type Margin struct {
	Lines            int64  `json:"lines"`
	UnknownCostLines int64  `json:"unknown_cost_lines"`
	KnownCostRevenue *int64 `json:"known_cost_revenue"` // null without a line of known cost
	GrossMargin      *int64 `json:"gross_margin"`       // null without a line of known cost
}

// Add adds o's lines to m, as when a total sums its parts.
func (m *Margin) Add(o Margin) {
	m.Lines += o.Lines
	m.UnknownCostLines += o.UnknownCostLines
	m.KnownCostRevenue = addOptional(m.KnownCostRevenue, o.KnownCostRevenue)
	m.GrossMargin = addOptional(m.GrossMargin, o.GrossMargin)
}

func addOptional(a, b *int64) *int64 {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	s := *a + *b
	return &s
}
