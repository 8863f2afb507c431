package models

// Finding members for the console: search by card, email or name, and a member's recent
// purchases and consent history.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// MaxSearchResults bounds one member search.
const MaxSearchResults = 50

// MemberHit is one member found by SearchMembers.
type MemberHit struct {
	ID               int64
	Card             string
	Name             string
	Email            *string
	HomeStore        string
	Status           string
	MarketingConsent string
	JoinedAt         time.Time
}

// likeEscaper escapes LIKE's wildcards so that a search for "50%" or "a_b" means those
// characters (the pattern's ESCAPE is the default backslash).
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// SearchMembers finds up to limit (at most MaxSearchResults) members by q: the card number
// exactly, the email exactly or by its beginning (any case), or a part of the name (any case).
// Exact card and email matches come first, then by name. Erased members are never found. An
// empty q finds nothing.
func (db *DB) SearchMembers(ctx context.Context, q string, limit int) ([]MemberHit, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return []MemberHit{}, nil
	}
	if limit <= 0 || limit > MaxSearchResults {
		limit = MaxSearchResults
	}
	pattern := likeEscaper.Replace(strings.ToLower(q))
	// A card hit goes through members' unique card index and an exact email through
	// members_email_key; a prefix or name search scans members (no trigram index: the console
	// searches now and then, and a club's members fit a scan of well under a second).
	rows, err := db.Pool.Query(ctx, `
		SELECT m.id, m.card, m.name, m.email, coalesce(s.code, ''), m.status, m.marketing_consent, m.joined_at
		FROM members m LEFT JOIN stores s ON s.id = m.home_store_id
		WHERE m.status <> 'erased'
		  AND (m.card = $1 OR lower(m.email) = lower($1)
		       OR lower(m.email) LIKE $2 || '%' OR m.name ILIKE '%' || $2 || '%')
		ORDER BY (m.card = $1 OR lower(m.email) = lower($1)) DESC, m.name, m.id
		LIMIT $3`, q, pattern, limit)
	if err != nil {
		return nil, fmt.Errorf("search members %q: %w", q, err)
	}
	hits, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (MemberHit, error) {
		var h MemberHit
		err := r.Scan(&h.ID, &h.Card, &h.Name, &h.Email, &h.HomeStore, &h.Status, &h.MarketingConsent, &h.JoinedAt)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("search members %q: %w", q, err)
	}
	return hits, nil
}

// Purchase is one transaction of a member as the console lists it.
type Purchase struct {
	TxnID      string
	Store      string
	Kind       string // sale or refund
	OccurredAt time.Time
	Amount     int64 // minor units
	Currency   string
	Items      int64 // number of units over all lines
}

// FindMemberPurchases returns member id's latest limit transactions, newest first, each at the
// shop's wall-clock time.
func (db *DB) FindMemberPurchases(ctx context.Context, id int64, limit int) ([]Purchase, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT t.txn_id, s.code, s.timezone, t.kind, t.occurred_at, t.amount_minor, t.currency,
		       coalesce((SELECT sum(i.qty) FROM transaction_items i WHERE i.transaction_id = t.id), 0)::bigint
		FROM transactions t JOIN stores s ON s.id = t.store_id
		WHERE t.member_id = $1
		ORDER BY t.occurred_at DESC, t.id DESC
		LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("purchases of member %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Purchase, error) {
		var p Purchase
		var tz string
		if err := r.Scan(&p.TxnID, &p.Store, &tz, &p.Kind, &p.OccurredAt, &p.Amount, &p.Currency, &p.Items); err != nil {
			return p, err
		}
		if loc, err := time.LoadLocation(tz); err == nil {
			p.OccurredAt = p.OccurredAt.In(loc)
		}
		return p, nil
	})
	if err != nil {
		return nil, fmt.Errorf("purchases of member %d: %w", id, err)
	}
	return out, nil
}

// FindMemberConsents returns member id's consent history, oldest first (with the evidence, which
// erasure removes).
func (db *DB) FindMemberConsents(ctx context.Context, id int64) ([]ConsentRecord, error) {
	out, err := db.findConsents(ctx, `SELECT purpose, granted, source, text_version, coalesce(host(ip), ''), user_agent, recorded_at
		FROM consents WHERE member_id = $1 ORDER BY recorded_at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("consents of member %d: %w", id, err)
	}
	return out, nil
}
