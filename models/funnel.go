package models

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Funnel sources: the web form, or staff enrolling at the till.
const (
	SourceWeb  = "web"
	SourceTill = "till"
)

// clubDay is today in the configured time zone, the day the funnel counts in.
func (db *DB) clubDay() string {
	loc := db.Timezone
	if loc == nil {
		loc = time.UTC
	}
	return db.Now().In(loc).Format(time.DateOnly)
}

// funnelColumns are the counters countFunnel may add to (never user input).
var funnelColumns = map[string]bool{"views": true, "submissions": true, "confirmations": true}

// countFunnel adds one to a join_funnel counter. The row for (day, store, source) is created by
// the first count; NULLS NOT DISTINCT makes "no store" one row too.
func countFunnel(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, day string, storeID *int64, source, column string) error {
	if !funnelColumns[column] {
		return fmt.Errorf("count funnel: no counter %q", column)
	}
	_, err := q.Exec(ctx, `
		INSERT INTO join_funnel (day, store_id, source, `+column+`) VALUES ($1::date, $2, $3, 1)
		ON CONFLICT (day, store_id, source) DO UPDATE SET `+column+` = join_funnel.`+column+` + 1`,
		day, storeID, source)
	if err != nil {
		return fmt.Errorf("count join funnel %s: %w", column, err)
	}
	return nil
}

// CountJoinView counts one view of the join form (store: the ?store= code it was opened with,
// "" for none; unknown codes count as none) by a client (its IP address and user agent). A client
// counts once a day per store, so that its reloads do not lower the conversion rate
// (join_views.go).
func (db *DB) CountJoinView(ctx context.Context, store, ip, userAgent string) error {
	var storeID *int64
	if store != "" {
		if s, err := db.FindStoreByCode(ctx, store); err == nil {
			storeID = &s.ID
		} else if ErrorCode(err) != ENOTFOUND {
			return err
		}
	}
	return db.countJoinViewOnce(ctx, db.clubDay(), storeID, ip, userAgent)
}

// FunnelRow is one day of the join funnel for one store ("" = no store) and source.
type FunnelRow struct {
	Day           string `json:"day"` // YYYY-MM-DD in REGULARS_TIMEZONE
	Store         string `json:"store"`
	Source        string `json:"source"` // web or till
	Views         int64  `json:"views"`
	Submissions   int64  `json:"submissions"`
	Confirmations int64  `json:"confirmations"`
	// ConversionRate is submissions ÷ views (web only; null without views).
	ConversionRate *float64 `json:"conversion_rate"`
	// ConfirmationRate is confirmations ÷ submissions (null without submissions).
	ConfirmationRate *float64 `json:"confirmation_rate"`
}

// MaxFunnelDays is the longest range JoinFunnel answers for.
const MaxFunnelDays = 366

// JoinFunnel returns the funnel per day, store and source for days in [from, to] (inclusive),
// optionally for one store, plus the totals over the range per source.
//
// Only the dates of from and to count. Days without any count are left out of days; totals has
// one row per source (web, then till) whatever the counts, with day "" and store the one asked
// for ("" for all). A confirmation counts on the day it happens, so a day's confirmation rate may
// exceed 1; over a longer range it settles. EINVALID (fields from, to, store) for a reversed or
// too long range or an unknown store.
func (db *DB) JoinFunnel(ctx context.Context, from, to time.Time, store string) (days []FunnelRow, totals []FunnelRow, err error) {
	fe := FieldErrors{}
	fromDay := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, time.UTC)
	toDay := time.Date(to.Year(), to.Month(), to.Day(), 0, 0, 0, 0, time.UTC)
	switch {
	case toDay.Before(fromDay):
		fe.Add("to", "must not be before from")
	case toDay.Sub(fromDay) >= MaxFunnelDays*24*time.Hour:
		fe.Add("to", fmt.Sprintf("the range may span at most %d days", MaxFunnelDays))
	}
	var storeID *int64
	if store != "" {
		s, err := db.FindStoreByCode(ctx, store)
		if err != nil {
			fe.Add("store", "no such store")
		} else {
			storeID = &s.ID
		}
	}
	if err := fe.Err("invalid funnel query"); err != nil {
		return nil, nil, err
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT to_char(f.day, 'YYYY-MM-DD'), coalesce(s.code, ''), f.source, f.views, f.submissions, f.confirmations
		FROM join_funnel f LEFT JOIN stores s ON s.id = f.store_id
		WHERE f.day BETWEEN $1::date AND $2::date AND ($3::bigint IS NULL OR f.store_id = $3)
		ORDER BY f.day, coalesce(s.code, ''), f.source DESC`,
		fromDay.Format(time.DateOnly), toDay.Format(time.DateOnly), storeID)
	if err != nil {
		return nil, nil, fmt.Errorf("join funnel: %w", err)
	}
	days, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (FunnelRow, error) {
		var f FunnelRow
		err := r.Scan(&f.Day, &f.Store, &f.Source, &f.Views, &f.Submissions, &f.Confirmations)
		return f, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("join funnel: %w", err)
	}
	totals = []FunnelRow{{Store: store, Source: SourceWeb}, {Store: store, Source: SourceTill}}
	for i := range days {
		d := &days[i]
		d.setRates()
		t := &totals[0]
		if d.Source == SourceTill {
			t = &totals[1]
		}
		t.Views += d.Views
		t.Submissions += d.Submissions
		t.Confirmations += d.Confirmations
	}
	for i := range totals {
		totals[i].setRates()
	}
	if days == nil {
		days = []FunnelRow{}
	}
	return days, totals, nil
}

// setRates fills the rates from the counts, rounded to four decimals.
func (f *FunnelRow) setRates() {
	ratio := func(a, b int64) *float64 {
		if b == 0 {
			return nil
		}
		r := math.Round(float64(a)/float64(b)*10000) / 10000
		return &r
	}
	f.ConversionRate, f.ConfirmationRate = nil, ratio(f.Confirmations, f.Submissions)
	if f.Source == SourceWeb {
		f.ConversionRate = ratio(f.Submissions, f.Views)
	}
}
