package metrics

// tierFamily is the tier family: members by club tier as of A, the rule a till lookup applies at
// the moment it asks (member_tier, models/migrations/00017_tier_rule.sql): tier_for_spend of the
// net spend over in_trailing_year, [A − 365 days, A) in the run's time zone. Here the spend of
// every member is summed in one pass over the window (a hash aggregate) rather than probed per
// member, then joined to the few tier ranges. A member with no purchases has net spend 0. Every
// configured tier is listed, so an empty tier is reported too; members below every threshold are
// in no tier segment.
func tierFamily() Family {
	return Family{Name: "tier", Membership: `
			SELECT 'tier:' || t.name, mt.member_id
			FROM tiers t
			LEFT JOIN (
				SELECT m.id AS member_id, tt.id AS tier_id
				FROM members m
				LEFT JOIN (
					SELECT tr.member_id, sum(net_amount(tr.kind, tr.amount_minor)) AS net
					FROM transactions tr, params p
					WHERE tr.member_id IS NOT NULL AND in_trailing_year(tr.occurred_at, p.as_of, p.tz)
					GROUP BY tr.member_id
				) s ON s.member_id = m.id
				CROSS JOIN LATERAL tier_for_spend(coalesce(s.net, 0)) tt
			) mt ON mt.tier_id = t.id`}
}
