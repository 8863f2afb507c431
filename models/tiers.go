package models

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// MaxTiers bounds the ladder; a club with more steps than this is a configuration mistake.
const MaxTiers = 20

// Tier is one step of the club ladder: members whose net spend over the trailing 365 days is at
// least MinSpend (minor units) get DiscountPercent, unless a higher tier also applies.
type Tier struct {
	Name            string  `json:"name"`
	MinSpend        int64   `json:"min_spend"`
	DiscountPercent float64 `json:"discount_percent"`
}

// TierInput is one tier as the admin sends it.
type TierInput struct {
	Name            string   `json:"name"`
	MinSpend        Int      `json:"min_spend"`
	DiscountPercent *float64 `json:"discount_percent"`
}

// TierWindowDays is the trailing period whose net spend places a member on the ladder. The rule
// itself lives in SQL (in_trailing_year and member_tier, migrations/00017_tier_rule.sql); this is
// the same number for Go code that needs it.
const TierWindowDays = 365

// FindTiers returns the ladder, lowest threshold first.
func (db *DB) FindTiers(ctx context.Context) ([]Tier, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT name, min_spend_minor, discount_percent::float8 FROM tiers ORDER BY min_spend_minor`)
	if err != nil {
		return nil, fmt.Errorf("find tiers: %w", err)
	}
	tiers, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Tier, error) {
		var t Tier
		err := r.Scan(&t.Name, &t.MinSpend, &t.DiscountPercent)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("find tiers: %w", err)
	}
	return tiers, nil
}

// ReplaceTiers sets the whole ladder at once (an empty list removes every tier) and returns it
// as stored. Replacing rather than editing tier by tier means the ladder is never seen half
// changed, and thresholds can be swapped without tripping the unique constraints.
func (db *DB) ReplaceTiers(ctx context.Context, in []TierInput) ([]Tier, error) {
	fe := FieldErrors{}
	if len(in) > MaxTiers {
		fe.Add("tiers", fmt.Sprintf("at most %d tiers", MaxTiers))
	}
	names := map[string]bool{}
	spends := map[int64]bool{}
	for i := range in {
		in[i].Name = strings.TrimSpace(in[i].Name) // " Gold" on the till screen is a typo
		t := in[i]
		at := "tiers." + strconv.Itoa(i) + "."
		switch n := utf8.RuneCountInString(t.Name); {
		case !utf8.ValidString(t.Name) || n < 1 || n > 40:
			fe.Add(at+"name", "must be 1 to 40 characters")
		case names[t.Name]:
			fe.Add(at+"name", "is the name of an earlier tier")
		}
		names[t.Name] = true
		switch {
		case !t.MinSpend.Present:
			fe.Add(at+"min_spend", "is required")
		case t.MinSpend.Bad != "":
			fe.Add(at+"min_spend", t.MinSpend.Bad)
		case t.MinSpend.Value < 0:
			fe.Add(at+"min_spend", "must be 0 or more")
		case spends[t.MinSpend.Value]:
			fe.Add(at+"min_spend", "is the threshold of an earlier tier")
		}
		spends[t.MinSpend.Value] = true
		switch d := t.DiscountPercent; {
		case d == nil:
			fe.Add(at+"discount_percent", "is required")
		case math.IsNaN(*d) || *d < 0 || *d > 100:
			fe.Add(at+"discount_percent", "must be from 0 to 100")
		case math.Round(*d*100) != *d*100:
			fe.Add(at+"discount_percent", "must have at most 2 decimals")
		}
	}
	if err := fe.Err("invalid tiers"); err != nil {
		return nil, err
	}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM tiers`); err != nil {
			return err
		}
		for _, t := range in {
			if _, err := tx.Exec(ctx, `INSERT INTO tiers (name, min_spend_minor, discount_percent) VALUES ($1, $2, $3)`,
				t.Name, t.MinSpend.Value, *t.DiscountPercent); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replace tiers: %w", err)
	}
	return db.FindTiers(ctx)
}

// FindMemberTier is member id's tier (nil when below every threshold or no ladder) and discount.
func (db *DB) FindMemberTier(ctx context.Context, id int64) (*string, float64, error) {
	return memberTier(ctx, db, id)
}

// memberTier finds the tier and discount of one member as of now with the SQL function
// member_tier (migrations/00017_tier_rule.sql, the rule's one home): net spend over
// [now − 365 days, now) in REGULARS_TIMEZONE, read through the transactions_member index. Being
// computed at lookup time, it reflects a purchase or refund as soon as it is stored, with no work
// added to recording it.
func memberTier(ctx context.Context, db *DB, memberID int64) (*string, float64, error) {
	var name *string
	var discount float64
	err := db.Pool.QueryRow(ctx, `
		SELECT name, discount_percent::float8 FROM member_tier($1, now(), $2)`,
		memberID, db.location().String()).Scan(&name, &discount)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, nil // below every threshold, or no tiers configured
	}
	if err != nil {
		return nil, 0, fmt.Errorf("tier of member %d: %w", memberID, err)
	}
	return name, discount, nil
}
