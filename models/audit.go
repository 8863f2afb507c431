package models

// The audit log (issue 13.2): who did what, when, from which address. handlers records every
// state-changing request of a console user or an admin/marketer API key through RecordAudit, the
// one writer; the console's audit page reads it with FindAudit.

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// AuditEntry is one recorded action.
type AuditEntry struct {
	ID int64
	At time.Time
	// UserID is the console user, APIKeyID the API key that acted: exactly one is set.
	UserID   *int64
	APIKeyID *int64
	Actor    string // the user's email or the key's name at the time
	Action   string // method and route, e.g. "POST /console/stores/:code"
	Target   string // the route's parameters, e.g. "oslo-1"
	IP       string // "" when unknown
	Status   int
}

// Bounds of what one entry keeps, so that a hostile caller cannot grow the log by long values.
const (
	maxAuditText = 200
	// MaxAuditPage is the most entries FindAudit returns at once.
	MaxAuditPage = 200
)

// clip cuts s to n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// RecordAudit stores e (its ID and, when zero, At are set by the database). An IP that does not
// parse is stored as unknown rather than refused: the action happened either way.
func (db *DB) RecordAudit(ctx context.Context, e AuditEntry) error {
	var ip *netip.Addr
	if a, err := netip.ParseAddr(e.IP); err == nil {
		ip = &a
	}
	at := e.At
	if at.IsZero() {
		at = db.Now()
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO audit_log (at, user_id, api_key_id, actor, action, target, ip, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, at, e.UserID, e.APIKeyID, clip(e.Actor, maxAuditText),
		clip(e.Action, maxAuditText), clip(e.Target, maxAuditText), ip, e.Status)
	if err != nil {
		return fmt.Errorf("record audit entry %s by %s: %w", e.Action, e.Actor, err)
	}
	return nil
}

// AuditFilter picks entries; zero fields do not filter.
type AuditFilter struct {
	Actor    string    // exactly this email or key name, any case
	Action   string    // a part of the action, any case ("campaigns", "POST /console/users")
	From, To time.Time // at in [From, To)
	Before   int64     // only entries older than this id (the next page)
	Limit    int       // at most MaxAuditPage (0: MaxAuditPage)
}

// FindAudit returns the entries filter picks, newest first. The next page is the same filter with
// Before set to the last entry's ID. One statement; the newest-first scan stops after Limit rows.
func (db *DB) FindAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 || f.Limit > MaxAuditPage {
		f.Limit = MaxAuditPage
	}
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.Actor != "" {
		add("lower(actor) = lower(?)", clip(f.Actor, maxAuditText))
	}
	if f.Action != "" {
		add("strpos(lower(action), lower(?)) > 0", clip(f.Action, maxAuditText))
	}
	if !f.From.IsZero() {
		add("at >= ?", f.From)
	}
	if !f.To.IsZero() {
		add("at < ?", f.To)
	}
	if f.Before > 0 {
		add("id < ?", f.Before)
	}
	q := `SELECT id, at, user_id, api_key_id, actor, action, target, coalesce(host(ip), ''), status FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := db.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		err := row.Scan(&e.ID, &e.At, &e.UserID, &e.APIKeyID, &e.Actor, &e.Action, &e.Target, &e.IP, &e.Status)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}
