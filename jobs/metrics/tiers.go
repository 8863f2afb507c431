package metrics

import (
	"strconv"

	"github.com/regulars/regulars/models"
)

// tierFamily is the tier family: members by club tier (models/tiers.go) as of A, that is the
// tier with the highest threshold at or below their net spend (sales − refunds) over
// [A − 365 days, A), the same rule a till lookup applies at the moment it asks. A member with
// no purchases has net spend 0. Every configured tier is listed, so an empty tier is reported
// too; members below every threshold are in no tier segment.
func tierFamily() Family {
	return Family{Name: "tier", Membership: `
			SELECT 'tier:' || t.name, mt.member_id
			FROM tiers t
			LEFT JOIN (
				SELECT DISTINCT ON (m.id) m.id AS member_id, tt.id AS tier_id
				FROM members m
				LEFT JOIN (
					SELECT tr.member_id,
					       sum(net_amount(tr.kind, tr.amount_minor)) AS net
					FROM transactions tr, params p
					WHERE tr.member_id IS NOT NULL
					  AND tr.occurred_at >= p.as_of - make_interval(days => ` + strconv.Itoa(models.TierWindowDays) + `)
					  AND tr.occurred_at < p.as_of
					GROUP BY tr.member_id
				) s ON s.member_id = m.id
				JOIN tiers tt ON tt.min_spend_minor <= coalesce(s.net, 0)
				ORDER BY m.id, tt.min_spend_minor DESC
			) mt ON mt.tier_id = t.id`}
}
