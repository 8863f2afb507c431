package models

// The member 360 (issue 13.5): what the console's member page shows about one member beside
// their profile — their value (historic and predicted), how likely they are still a customer,
// their RFM segment, how far they are from the next tier — and a timeline of their purchases,
// the mails they received and their consent changes. Each part is one bounded statement.

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// MemberValue is a member's figures.
type MemberValue struct {
	// NetSpend is every sale minus every refund so far, in minor units: the member's historic
	// CLV. Purchases counts sales; First and Last are the first and latest sale.
	NetSpend    int64
	Purchases   int64
	First, Last *time.Time
	// YearSpend is the net spend over the tier window (in_trailing_year, as member_tier counts
	// it); NextTier and NextTierMinSpend name the next step of the ladder above it (nil at the
	// top or without tiers).
	YearSpend        int64
	NextTier         *string
	NextTierMinSpend *int64
	// From the latest metrics run (member_metrics); all nil before a run, the model figures also
	// while the fit failed or the member has no purchase before its as-of date.
	MetricsAsOf       *time.Time
	PAlive            *float64
	ExpectedPurchases *float64
	CLVPredicted      *float64 // minor units
	RFMSegment        *string
	RecencyScore      *int16
	FrequencyScore    *int16
	MonetaryScore     *int16
}

// ToNextTier is what the member still has to spend in the tier window to reach NextTier (nil
// without a next tier).
func (v *MemberValue) ToNextTier() *int64 {
	if v.NextTierMinSpend == nil {
		return nil
	}
	left := *v.NextTierMinSpend - v.YearSpend
	return &left
}

// TierProgress is the share of the way from nothing to NextTier's threshold (0–1; nil without a
// next tier).
func (v *MemberValue) TierProgress() *float64 {
	if v.NextTierMinSpend == nil || *v.NextTierMinSpend <= 0 {
		return nil
	}
	p := max(0, min(1, float64(v.YearSpend)/float64(*v.NextTierMinSpend)))
	return &p
}

// FindMemberValue returns member id's figures in one statement: one pass over their
// transactions (transactions_member), the next tier above their trailing-year spend, and their
// member_metrics row. The window is member_tier's (now, the shop's zone), so the tier shown and
// the progress towards the next one always agree.
func (db *DB) FindMemberValue(ctx context.Context, id int64) (*MemberValue, error) {
	var v MemberValue
	err := db.Pool.QueryRow(ctx, `
		WITH spend AS (
			SELECT coalesce(sum(net_amount(t.kind, t.amount_minor)), 0)::bigint AS net,
			       count(*) FILTER (WHERE t.kind = 'sale') AS purchases,
			       min(t.occurred_at) FILTER (WHERE t.kind = 'sale') AS first,
			       max(t.occurred_at) FILTER (WHERE t.kind = 'sale') AS last,
			       coalesce(sum(net_amount(t.kind, t.amount_minor))
			                FILTER (WHERE in_trailing_year(t.occurred_at, now(), $2)), 0)::bigint AS year_net
			FROM transactions t WHERE t.member_id = $1)
		SELECT s.net, s.purchases, s.first, s.last, s.year_net, nt.name, nt.min_spend_minor,
		       m.as_of, m.p_alive, m.expected_purchases, m.clv_predicted, m.rfm_segment,
		       m.recency_score, m.frequency_score, m.monetary_score
		FROM spend s
		LEFT JOIN LATERAL (SELECT name, min_spend_minor FROM tiers WHERE min_spend_minor > s.year_net
		                   ORDER BY min_spend_minor LIMIT 1) nt ON true
		LEFT JOIN member_metrics m ON m.member_id = $1`, id, db.location().String()).
		Scan(&v.NetSpend, &v.Purchases, &v.First, &v.Last, &v.YearSpend, &v.NextTier, &v.NextTierMinSpend,
			&v.MetricsAsOf, &v.PAlive, &v.ExpectedPurchases, &v.CLVPredicted, &v.RFMSegment,
			&v.RecencyScore, &v.FrequencyScore, &v.MonetaryScore)
	if err != nil {
		return nil, fmt.Errorf("figures of member %d: %w", id, err)
	}
	return &v, nil
}

// MailReceived is one mail a member was sent by a campaign or a flow's mail step.
type MailReceived struct {
	CampaignID int64
	Campaign   string // the campaign's name (a flow step's campaign is named after its flow)
	FlowID     *int64 // set for a flow's mail
	Flow       *string
	Subject    string
	SentAt     time.Time
	Opened     bool // the open pixel was fetched (only for campaigns that track opens)
	Clicked    bool // a tracked link was followed
	Bounced    bool
}

// Timeline events' kinds.
const (
	TimelinePurchase = "purchase" // a sale or a refund: Purchase
	TimelineMail     = "mail"     // Mail
	TimelineConsent  = "consent"  // Consent
)

// TimelineEvent is one entry of a member's timeline; the field of its Kind is set.
type TimelineEvent struct {
	At       time.Time
	Kind     string
	Purchase *Purchase
	Mail     *MailReceived
	Consent  *ConsentRecord
}

// MaxTimeline is the most events FindMemberTimeline returns.
const MaxTimeline = 100

// FindMemberTimeline returns member id's latest limit (at most MaxTimeline) events, newest first:
// purchases, mails received and consent changes. Each kind is one statement reading its latest
// limit rows by an index on the member, so the page costs the same for a member of ten years.
func (db *DB) FindMemberTimeline(ctx context.Context, id int64, limit int) ([]TimelineEvent, error) {
	if limit <= 0 || limit > MaxTimeline {
		limit = MaxTimeline
	}
	purchases, err := db.FindMemberPurchases(ctx, id, limit)
	if err != nil {
		return nil, err
	}
	mails, err := db.FindMemberMails(ctx, id, limit)
	if err != nil {
		return nil, err
	}
	consents, err := db.memberConsents(ctx, id, limit)
	if err != nil {
		return nil, err
	}
	out := make([]TimelineEvent, 0, len(purchases)+len(mails)+len(consents))
	for i := range purchases {
		out = append(out, TimelineEvent{At: purchases[i].OccurredAt, Kind: TimelinePurchase, Purchase: &purchases[i]})
	}
	for i := range mails {
		out = append(out, TimelineEvent{At: mails[i].SentAt, Kind: TimelineMail, Mail: &mails[i]})
	}
	for i := range consents {
		out = append(out, TimelineEvent{At: consents[i].RecordedAt, Kind: TimelineConsent, Consent: &consents[i]})
	}
	slices.SortStableFunc(out, func(a, b TimelineEvent) int { return b.At.Compare(a.At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// FindMemberMails returns the latest limit mails sent to member id, newest first, with whether
// each was opened and clicked (one statement: the member's recipient rows by
// campaign_recipients_member, then an index probe each into opens and clicks).
func (db *DB) FindMemberMails(ctx context.Context, id int64, limit int) ([]MailReceived, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT c.id, c.name, f.id, f.name, c.subject, r.sent_at,
		       EXISTS (SELECT 1 FROM campaign_opens o WHERE o.run_id = r.run_id AND o.member_id = r.member_id),
		       EXISTS (SELECT 1 FROM campaign_clicks k WHERE k.member_id = r.member_id AND k.run_id = r.run_id),
		       r.bounced_at IS NOT NULL
		FROM campaign_recipients r
		JOIN campaign_runs cr ON cr.id = r.run_id
		JOIN campaigns c ON c.id = cr.campaign_id
		LEFT JOIN flows f ON f.id = c.flow_id
		WHERE r.member_id = $1 AND r.status = 'sent'
		ORDER BY r.sent_at DESC, r.run_id DESC
		LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("mails of member %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MailReceived, error) {
		var m MailReceived
		err := r.Scan(&m.CampaignID, &m.Campaign, &m.FlowID, &m.Flow, &m.Subject, &m.SentAt, &m.Opened, &m.Clicked, &m.Bounced)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("mails of member %d: %w", id, err)
	}
	return out, nil
}

// memberConsents is member id's latest limit consent records, newest first.
func (db *DB) memberConsents(ctx context.Context, id int64, limit int) ([]ConsentRecord, error) {
	out, err := db.findConsents(ctx, `SELECT purpose, granted, source, text_version, coalesce(host(ip), ''), user_agent, recorded_at
		FROM consents WHERE member_id = $1 ORDER BY recorded_at DESC, id DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("consents of member %d: %w", id, err)
	}
	return out, nil
}

// findConsents runs a consents query whose columns are those ConsentRecord scans.
func (db *DB) findConsents(ctx context.Context, sql string, args ...any) ([]ConsentRecord, error) {
	rows, err := db.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConsentRecord, error) {
		var c ConsentRecord
		err := r.Scan(&c.Purpose, &c.Granted, &c.Source, &c.TextVersion, &c.IP, &c.UserAgent, &c.RecordedAt)
		return c, err
	})
}
