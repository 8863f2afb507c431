package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// MemberExport is everything held about one member, for the member's own download and the
// admin export.
type MemberExport struct {
	Member       Member              `json:"member"`
	Tier         *string             `json:"tier"`
	Discount     float64             `json:"discount_percent"`
	Consents     []ConsentRecord     `json:"consents"`
	Transactions []ExportTransaction `json:"transactions"`
	ExportedAt   time.Time           `json:"exported_at"`
}

// ConsentRecord is one consent answer as recorded.
type ConsentRecord struct {
	Purpose     string    `json:"purpose"`
	Granted     bool      `json:"granted"`
	Source      string    `json:"source"`
	TextVersion string    `json:"text_version"`
	IP          string    `json:"ip,omitempty"`
	UserAgent   string    `json:"user_agent,omitempty"`
	RecordedAt  time.Time `json:"recorded_at"`
}

// ExportTransaction is one of the member's purchases or refunds with its lines.
type ExportTransaction struct {
	ID         string       `json:"id"`
	Store      string       `json:"store"`
	Kind       string       `json:"kind"`
	OccurredAt time.Time    `json:"occurred_at"`
	Amount     int64        `json:"amount"`
	Currency   string       `json:"currency"`
	Items      []ExportItem `json:"items"`
}

// ExportItem is one line of a transaction.
type ExportItem struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice int64  `json:"unit_price"`
}

// ExportMember gathers member id's data; ENOTFOUND for missing or erased members.
func (db *DB) ExportMember(ctx context.Context, id int64) (*MemberExport, error) {
	tier, discount, err := db.FindMemberTier(ctx, id)
	if err != nil {
		return nil, err
	}
	return db.exportMember(ctx, db.Pool, id, tier, discount)
}

// exportQuerier is a pool or a transaction: ExportMemberByLink gathers the data in the
// transaction that uses the link.
type exportQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (db *DB) exportMember(ctx context.Context, q exportQuerier, id int64, tier *string, discount float64) (*MemberExport, error) {
	var m Member
	err := scanMember(q.QueryRow(ctx, `SELECT `+memberColumns+`
		FROM members m LEFT JOIN stores s ON s.id = m.home_store_id WHERE m.id = $1`, id), &m)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, Errorf(ENOTFOUND, "no member %d", id)
	case err != nil:
		return nil, fmt.Errorf("export member %d: %w", id, err)
	case m.Status == StatusErased:
		return nil, Errorf(ENOTFOUND, "no member %d", id)
	}
	out := &MemberExport{Member: m, Tier: tier, Discount: discount, ExportedAt: db.Now().UTC(),
		Consents: []ConsentRecord{}, Transactions: []ExportTransaction{}}
	rows, err := q.Query(ctx, `
		SELECT purpose, granted, source, text_version, coalesce(host(ip), ''), user_agent, recorded_at
		FROM consents WHERE member_id = $1 ORDER BY recorded_at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("export consents of member %d: %w", id, err)
	}
	out.Consents, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConsentRecord, error) {
		var c ConsentRecord
		err := r.Scan(&c.Purpose, &c.Granted, &c.Source, &c.TextVersion, &c.IP, &c.UserAgent, &c.RecordedAt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("export consents of member %d: %w", id, err)
	}
	rows, err = q.Query(ctx, `
		SELECT t.txn_id, s.code, s.timezone, t.kind, t.occurred_at, t.amount_minor, t.currency,
		       coalesce(array_agg(i.sku ORDER BY i.line) FILTER (WHERE i.line IS NOT NULL), '{}'),
		       coalesce(array_agg(i.qty ORDER BY i.line) FILTER (WHERE i.line IS NOT NULL), '{}'),
		       coalesce(array_agg(i.unit_price_minor ORDER BY i.line) FILTER (WHERE i.line IS NOT NULL), '{}')
		FROM transactions t JOIN stores s ON s.id = t.store_id
		LEFT JOIN transaction_items i ON i.transaction_id = t.id
		WHERE t.member_id = $1
		GROUP BY t.id, s.code, s.timezone ORDER BY t.occurred_at, t.id`, id)
	if err != nil {
		return nil, fmt.Errorf("export transactions of member %d: %w", id, err)
	}
	out.Transactions, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ExportTransaction, error) {
		var t ExportTransaction
		var tz string
		var skus []string
		var qtys, prices []int64
		if err := r.Scan(&t.ID, &t.Store, &tz, &t.Kind, &t.OccurredAt, &t.Amount, &t.Currency, &skus, &qtys, &prices); err != nil {
			return t, err
		}
		if loc, err := time.LoadLocation(tz); err == nil {
			t.OccurredAt = t.OccurredAt.In(loc) // the shop's wall clock, as on the receipt
		}
		t.Items = make([]ExportItem, len(skus))
		for i := range skus {
			t.Items[i] = ExportItem{SKU: skus[i], Qty: qtys[i], UnitPrice: prices[i]}
		}
		return t, nil
	})
	if err != nil {
		return nil, fmt.Errorf("export transactions of member %d: %w", id, err)
	}
	return out, nil
}
