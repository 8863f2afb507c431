package metrics

// rewardsFamily compares the members who use the rewards program with those who collect points
// but never spend them: rewards:redeemers are members with a redemption made before A and not
// cancelled; rewards:non-redeemers are members who had earned points before A and made no such
// redemption. Members who never earned a point are in neither (they are not in the program).
// Both segments are always listed, so an installation without rewards reports two empty ones.
func rewardsFamily() Family {
	return Family{Name: "rewards", Membership: `
			WITH redeemers AS (
				SELECT DISTINCT r.member_id FROM redemptions r, params p
				WHERE r.created_at < p.as_of AND (r.cancelled_at IS NULL OR r.cancelled_at >= p.as_of)
			), earners AS (
				SELECT DISTINCT l.member_id FROM points_ledger l, params p
				WHERE l.kind = 'earned' AND l.created_at < p.as_of
			)
			SELECT 'rewards:redeemers'::text, member_id FROM redeemers
			UNION ALL
			SELECT 'rewards:non-redeemers', e.member_id FROM earners e
			WHERE NOT EXISTS (SELECT 1 FROM redeemers r WHERE r.member_id = e.member_id)
			UNION ALL SELECT 'rewards:redeemers', NULL::bigint
			UNION ALL SELECT 'rewards:non-redeemers', NULL::bigint`}
}
