package metrics

// tierFamily is the tier family: members by club tier as of A, the rule a till lookup applies at
// the moment it asks (member_tier, models/migrations/00017_tier_rule.sql): tier_for_spend of the
// net spend over in_trailing_year, [A − 365 days, A) in the run's time zone. A is the start of a
// local day, so that interval is the dates [A − 365, A), and the model step's member summary
// has every member's net spend over exactly those dates (metrics_summary.spend_365d, model.go):
// the family reads it there rather than summing the transactions once more (a scan of every
// member transaction and a hash aggregate, twice a run before; docs/benchmarks.md, "The nightly
// job at 1M"), then joins it to the few tier ranges. A member with no purchases has net spend
// 0. Every configured tier is listed, so an empty tier is reported too; members below every
// threshold are in no tier segment.
func tierFamily() Family {
	return Family{Name: "tier", Membership: `
			SELECT 'tier:' || t.name, mt.member_id
			FROM tiers t
			LEFT JOIN (
				SELECT m.id AS member_id, tt.id AS tier_id
				FROM members m
				LEFT JOIN metrics_summary s ON s.member_id = m.id
				CROSS JOIN LATERAL tier_for_spend(coalesce(s.spend_365d, 0)) tt
			) mt ON mt.tier_id = t.id`}
}
