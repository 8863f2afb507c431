package models

// RecipientSnapshot is the one home of what a campaign_recipients row copies of its member when
// it is made (a campaign run's snapshot in campaigns/dispatch, a flow's mail step in flows), so
// that the sender's claim reads one table: the member's card, name, home store's code, language,
// tier and discount now (member_tier in zone zoneParam, e.g. "$4"), points balance, and the
// stamp card's size (StampCostSQL, evaluated once per statement). The INSERT lists columns after
// its own, selects values after its own with the member as m, and adds joins to its FROM after
// the join that brings in m. Whether the member may still be mailed is not copied: the claim
// checks that again (campaigns/dispatch).
func RecipientSnapshot(zoneParam string) (columns, values, joins string) {
	return `card, name, home_store, language, tier, discount, points, stamp_cost`,
		`m.card, m.name, (SELECT s.code FROM stores s WHERE s.id = m.home_store_id), m.language,
		snap_tier.name, snap_tier.discount_percent,
		(SELECT coalesce(sum(l.points), 0) FROM points_ledger l WHERE l.member_id = m.id),
		(` + StampCostSQL + `)`,
		`LEFT JOIN LATERAL member_tier(m.id, now(), ` + zoneParam + `) snap_tier ON true`
}
