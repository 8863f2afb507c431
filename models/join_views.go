package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// countJoinViewOnce adds a view to the join funnel of day and store unless the client (ip and
// userAgent) has already been counted there that day: reloads, a back button or a link preview
// fetching the page again would otherwise lower the sign-up conversion rate. The client is kept
// only as a hash under the day's random salt (migration 00015), never as an address.
func (db *DB) countJoinViewOnce(ctx context.Context, day string, storeID *int64, ip, userAgent string) error {
	salt, err := db.joinViewSalt(ctx, day)
	if err != nil {
		return err
	}
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(ip))
	h.Write([]byte{0}) // a separator, so that no ip and user agent pair can pose as another
	h.Write([]byte(userAgent))
	// One statement: the view counts only if its client row is new, and both happen or neither.
	_, err = db.Pool.Exec(ctx, `
		WITH first AS (
		    INSERT INTO join_views (day, store_id, client) VALUES ($1::date, $2, $3)
		    ON CONFLICT DO NOTHING
		    RETURNING 1)
		INSERT INTO join_funnel (day, store_id, source, views)
		SELECT $1::date, $2, $4, 1 FROM first
		ON CONFLICT (day, store_id, source) DO UPDATE SET views = join_funnel.views + 1`,
		day, storeID, h.Sum(nil), SourceWeb)
	if err != nil {
		return fmt.Errorf("count join view: %w", err)
	}
	return nil
}

// joinViewSalt is day's salt for join-view clients, made by the day's first view. Making it also
// deletes the salts (and with them the clients) of the days before yesterday: once a salt is gone
// nobody can tell whose view a hash was. Yesterday's stays for replicas whose clock is behind.
func (db *DB) joinViewSalt(ctx context.Context, day string) ([]byte, error) {
	var salt []byte
	err := db.Pool.QueryRow(ctx, `SELECT salt FROM join_view_salts WHERE day = $1::date`, day).Scan(&salt)
	if err == nil {
		return salt, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("join view salt of %s: %w", day, err)
	}
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	// Two replicas may make the day's first view at once: the no-op update returns the salt
	// that won.
	if err := db.Pool.QueryRow(ctx, `
		INSERT INTO join_view_salts (day, salt) VALUES ($1::date, $2)
		ON CONFLICT (day) DO UPDATE SET salt = join_view_salts.salt
		RETURNING salt`, day, fresh).Scan(&salt); err != nil {
		return nil, fmt.Errorf("join view salt of %s: %w", day, err)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM join_view_salts WHERE day < $1::date - 1`, day); err != nil {
		return nil, fmt.Errorf("forget old join view clients: %w", err)
	}
	return salt, nil
}
