package models

// RecipientSnapshot is the one home of what a campaign_recipients row copies of its member when
// it is made (a campaign run's snapshot in campaigns/dispatch, a flow's mail step in flows), so
// that the sender's claim reads one table: the member's card, name, home store's code and
// language (RecipientBase), and the member's extras (RecipientExtras: tier and discount now,
// points balance, stamp card's size). The INSERT lists columns after its own, selects values
// after its own with the member as m, and adds joins to its FROM after the join that brings in
// m. Whether the member may still be mailed is not copied: the claim checks that again
// (campaigns/dispatch).
func RecipientSnapshot(zoneParam string) (columns, values, joins string) {
	baseColumns, baseValues := RecipientBase()
	extraColumns, extraValues, extraJoins := RecipientExtras(zoneParam)
	return baseColumns + `, ` + extraColumns, baseValues + `, ` + extraValues, extraJoins
}

// RecipientBase is the part of RecipientSnapshot read from the member's own row (and its home
// store's code): a few microseconds a recipient. A run whose campaign shows none of the extras
// copies only this (campaigns/dispatch); its rows' extras stay NULL (points IS NULL: not looked
// up), and the sender looks them up at the claim should the campaign come to need them.
func RecipientBase() (columns, values string) {
	return `card, name, home_store, language`,
		`m.card, m.name, (SELECT s.code FROM stores s WHERE s.id = m.home_store_id), m.language`
}

// RecipientExtras is the part of RecipientSnapshot that reads other tables per member: the tier
// and discount now (member_tier in zone zoneParam, e.g. "$4": the member's trailing year of
// sales), the points balance (never NULL once looked up: the sum of the ledger, 0 without
// one), and the stamp card's size (StampCostSQL, evaluated once per statement). At 20,000
// members it cost 4–5 times the rest of the snapshot row (docs/benchmarks.md, "Sending speed").
// A FROM using it has the member as m.
func RecipientExtras(zoneParam string) (columns, values, joins string) {
	return `tier, discount, points, stamp_cost`,
		`snap_tier.name, snap_tier.discount_percent,
		(SELECT coalesce(sum(l.points), 0) FROM points_ledger l WHERE l.member_id = m.id),
		(` + StampCostSQL + `)`,
		`LEFT JOIN LATERAL member_tier(m.id, now(), ` + zoneParam + `) snap_tier ON true`
}
