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

// Which recipients of a sending run are still to send (status 'queued' or 'sending') is not
// indexed by status: an index on status would make every "sent" mark write a new entry in each
// of the table's indexes instead of updating the row in place (migration 00029). Instead each
// run keeps open_from: every recipient numbered (seq) at or below it is finished or waiting
// for a retry, and rows waiting for a retry (next_attempt_at set, from their first temporary
// failure until their outcome) are in the partial index campaign_recipients_retry. So the
// recipients left are those after open_from on campaign_recipients_run_seq plus those in the
// retry index, whatever the run's size. AdvanceOpenFromSQL moves open_from on;
// RecipientsLeftSQL asks whether any are left.

// AdvanceOpenFromSQL moves the open_from of every sending run to just below its first
// recipient still to send that waits for no retry (or to its last recipient's number if none
// is left), reading the rows finished since the last move once each. A run whose row another
// transaction holds is skipped until the next call: every writer of a run's recipients holds
// its run's row (the dispatcher's snapshot, a flow's mail step), and holds it until it commits.
//
// Why no recipient is passed over: a row the statement cannot see yet (its insert not
// committed) has a higher number than every row of its run the statement can see, because a
// run's rows are written by one statement (a campaign's snapshot, in the transaction that makes
// the run sending) or by transactions one after another (a flow's mail steps, under the flow's
// advisory lock), each numbering its rows from the one sequence as it inserts them. And a
// finished row never becomes open again (nothing sets a sent, failed or held-out recipient
// back to queued).
const AdvanceOpenFromSQL = `
	WITH held AS (
		SELECT r.id, r.open_from FROM campaign_runs r WHERE r.status = 'sending' FOR UPDATE SKIP LOCKED
	), moved AS (
		SELECT held.id, coalesce(
			(SELECT cr.seq - 1 FROM campaign_recipients cr
			 WHERE cr.run_id = held.id AND cr.seq > held.open_from
			   AND cr.status IN ('queued', 'sending') AND cr.next_attempt_at IS NULL
			 ORDER BY cr.seq LIMIT 1),
			(SELECT max(cr.seq) FROM campaign_recipients cr WHERE cr.run_id = held.id),
			held.open_from) AS open_from
		FROM held
	)
	UPDATE campaign_runs r SET open_from = moved.open_from
	FROM moved WHERE r.id = moved.id AND moved.open_from > r.open_from`

// RecipientsLeftSQL is the condition "run has recipients still to send" for the campaign_runs
// row named run (e.g. "r"): two index probes (see AdvanceOpenFromSQL).
func RecipientsLeftSQL(run string) string {
	return `(EXISTS (SELECT 1 FROM campaign_recipients cr
	                 WHERE cr.run_id = ` + run + `.id AND cr.seq > ` + run + `.open_from AND cr.status IN ('queued', 'sending'))
	      OR EXISTS (SELECT 1 FROM campaign_recipients cr
	                 WHERE cr.run_id = ` + run + `.id AND cr.next_attempt_at IS NOT NULL AND cr.status IN ('queued', 'sending')))`
}
