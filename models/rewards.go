package models

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// Rewards (product.md, "Rewards"): the one reward program of the installation says how sales
// earn points (models/points.go applies it), and rewards are what points buy at the till
// (redemptions.go). Vouchers (vouchers.go) are single-use rewards issued to one member.

// RewardProgram is the one program of the installation. With no program, sales earn nothing.
type RewardProgram struct {
	PointsPerVisit     int     `json:"points_per_visit"`
	PointsPerMajorUnit float64 `json:"points_per_major_unit"`
	// MinAmount is the smallest sale (minor units) that counts as a visit.
	MinAmount int64 `json:"min_amount"`
	// ExpireAfterDays is how long a credit lasts; nil: points never expire.
	ExpireAfterDays *int      `json:"expire_after_days"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// RewardProgramInput is PUT /rewards/program: the whole program. points_per_visit and
// points_per_major_unit are required; min_amount defaults to 0; expire_after_days left out or
// null means points never expire.
type RewardProgramInput struct {
	PointsPerVisit     Int      `json:"points_per_visit"`
	PointsPerMajorUnit *float64 `json:"points_per_major_unit"`
	MinAmount          Int      `json:"min_amount"`
	ExpireAfterDays    Int      `json:"expire_after_days"`
}

// Limits of a program and a reward, as the migration's CHECKs have them.
const (
	maxProgramPoints = 1_000_000
	maxExpireDays    = 36_500
	maxCostPoints    = 100_000_000
	maxRewardName    = 200
)

// FindRewardProgram returns the program, or ENOTFOUND when none is set.
func (db *DB) FindRewardProgram(ctx context.Context) (*RewardProgram, error) {
	var p RewardProgram
	err := db.Pool.QueryRow(ctx, `
		SELECT points_per_visit, points_per_major_unit::float8, min_amount, expire_after_days, updated_at
		FROM reward_program`).Scan(&p.PointsPerVisit, &p.PointsPerMajorUnit, &p.MinAmount, &p.ExpireAfterDays, &p.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "no reward program is set")
	}
	if err != nil {
		return nil, fmt.Errorf("find reward program: %w", err)
	}
	return &p, nil
}

// SetRewardProgram validates in and stores it as the program, replacing the one before. Sales
// stored from then on earn under it; what was earned before stays.
func (db *DB) SetRewardProgram(ctx context.Context, in RewardProgramInput) (*RewardProgram, error) {
	fe := FieldErrors{}
	p := &RewardProgram{}
	if v, ok := boundedInt(in.PointsPerVisit, 0, maxProgramPoints, true, "points_per_visit", fe); ok {
		p.PointsPerVisit = int(v)
	}
	switch v := in.PointsPerMajorUnit; {
	case v == nil:
		fe.Add("points_per_major_unit", "is required (0 for none)")
	case *v < 0 || *v > maxProgramPoints:
		fe.Add("points_per_major_unit", fmt.Sprintf("must be between 0 and %d", maxProgramPoints))
	case !hasDecimals(*v, 4):
		fe.Add("points_per_major_unit", "must have at most 4 decimals")
	default:
		p.PointsPerMajorUnit = *v
	}
	if v, ok := boundedInt(in.MinAmount, 0, db.MaxAmount, false, "min_amount", fe); ok {
		p.MinAmount = v
	}
	if in.ExpireAfterDays.Present {
		if v, ok := boundedInt(in.ExpireAfterDays, 1, maxExpireDays, false, "expire_after_days", fe); ok {
			days := int(v)
			p.ExpireAfterDays = &days
		}
	}
	if err := fe.Err("invalid reward program"); err != nil {
		return nil, err
	}
	err := db.Pool.QueryRow(ctx, `
		INSERT INTO reward_program (points_per_visit, points_per_major_unit, min_amount, expire_after_days, updated_at)
		VALUES ($1, $2, $3, $4, now())
		ON CONFLICT (id) DO UPDATE SET points_per_visit = EXCLUDED.points_per_visit,
		    points_per_major_unit = EXCLUDED.points_per_major_unit, min_amount = EXCLUDED.min_amount,
		    expire_after_days = EXCLUDED.expire_after_days, updated_at = now()
		RETURNING updated_at`,
		p.PointsPerVisit, p.PointsPerMajorUnit, p.MinAmount, p.ExpireAfterDays).Scan(&p.UpdatedAt)
	if err != nil {
		return nil, fmt.Errorf("set reward program: %w", err)
	}
	return p, nil
}

// boundedInt checks an integer field against [lo, hi]; a missing one is an error only when
// required. ok is false when the field is missing or bad.
func boundedInt(v Int, lo, hi int64, required bool, field string, fe FieldErrors) (int64, bool) {
	switch {
	case !v.Present:
		if required {
			fe.Add(field, "is required")
		}
		return 0, false
	case v.Bad != "":
		fe.Add(field, v.Bad)
		return 0, false
	case v.Value < lo || v.Value > hi:
		fe.Add(field, fmt.Sprintf("must be between %d and %d", lo, hi))
		return 0, false
	}
	return v.Value, true
}

// hasDecimals reports whether v has at most n decimals, as a numeric(…, n) column keeps it.
func hasDecimals(v float64, n int) bool {
	scale := math.Pow10(n)
	return math.Abs(v*scale-math.Round(v*scale)) < 1e-6
}

// Reward is what points (or a voucher) buy at the till: an amount off (discount_minor, in the
// minor units of the store's currency) or a percentage off (discount_percent), never both.
type Reward struct {
	Code            string    `json:"code"`
	Name            string    `json:"name"`
	CostPoints      int       `json:"cost_points"`
	DiscountMinor   *int64    `json:"discount_minor,omitempty"`
	DiscountPercent *float64  `json:"discount_percent,omitempty"`
	Active          bool      `json:"active"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// RewardInput creates a reward (POST: code, name, cost_points and one discount required;
// active defaults to true) or changes one (PATCH: fields left out stay; a discount given
// replaces the other kind). The code cannot change.
type RewardInput struct {
	Code            *string  `json:"code"`
	Name            *string  `json:"name"`
	CostPoints      Int      `json:"cost_points"`
	DiscountMinor   Int      `json:"discount_minor"`
	DiscountPercent *float64 `json:"discount_percent"`
	Active          *bool    `json:"active"`
}

const rewardColumns = `code, name, cost_points, discount_minor, discount_percent::float8, active, created_at, updated_at`

func scanReward(row pgx.Row, r *Reward) error {
	return row.Scan(&r.Code, &r.Name, &r.CostPoints, &r.DiscountMinor, &r.DiscountPercent, &r.Active, &r.CreatedAt, &r.UpdatedAt)
}

// FindRewards lists every reward, active or not, cheapest first.
func (db *DB) FindRewards(ctx context.Context) ([]Reward, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+rewardColumns+` FROM rewards ORDER BY cost_points, code`)
	if err != nil {
		return nil, fmt.Errorf("find rewards: %w", err)
	}
	out := []Reward{}
	for rows.Next() {
		var r Reward
		if err := scanReward(rows, &r); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find rewards: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FindRewardByCode returns the reward code, or ENOTFOUND.
func (db *DB) FindRewardByCode(ctx context.Context, code string) (*Reward, error) {
	return findReward(ctx, db.Pool, code)
}

// querier is what both the pool and a transaction offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func findReward(ctx context.Context, q querier, code string) (*Reward, error) {
	var r Reward
	err := scanReward(q.QueryRow(ctx, `SELECT `+rewardColumns+` FROM rewards WHERE code = $1`, code), &r)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "no reward %q", code)
	}
	if err != nil {
		return nil, fmt.Errorf("find reward %s: %w", code, err)
	}
	return &r, nil
}

// CreateReward validates in and stores a new reward; a code in use is ECONFLICT.
func (db *DB) CreateReward(ctx context.Context, in RewardInput) (*Reward, error) {
	r := &Reward{Active: true}
	fe := FieldErrors{}
	switch {
	case in.Code == nil || *in.Code == "":
		fe.Add("code", "is required")
	case !storeCodeRE.MatchString(*in.Code):
		fe.Add("code", "must be 1-32 lowercase letters, digits or dashes, starting with a letter or digit")
	default:
		r.Code = *in.Code
	}
	if in.Name == nil {
		fe.Add("name", "is required")
	}
	if !in.CostPoints.Present {
		fe.Add("cost_points", "is required")
	}
	if !in.DiscountMinor.Present && in.DiscountPercent == nil {
		fe.Add("discount_minor", "give discount_minor or discount_percent")
	}
	applyReward(r, in, db.MaxAmount, fe)
	if err := fe.Err("invalid reward"); err != nil {
		return nil, err
	}
	err := scanReward(db.Pool.QueryRow(ctx, `
		INSERT INTO rewards (code, name, cost_points, discount_minor, discount_percent, active)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+rewardColumns,
		r.Code, r.Name, r.CostPoints, r.DiscountMinor, r.DiscountPercent, r.Active), r)
	if IsUniqueViolation(err, "rewards_pkey") {
		return nil, &Error{Code: ECONFLICT, Message: "a reward with this code exists", Fields: map[string]string{"code": "is taken"}}
	}
	if err != nil {
		return nil, fmt.Errorf("create reward %s: %w", r.Code, err)
	}
	return r, nil
}

// UpdateReward changes the fields in gives of reward code; ENOTFOUND when there is none.
// Vouchers already issued for it keep their reward, with its new discount.
func (db *DB) UpdateReward(ctx context.Context, code string, in RewardInput) (*Reward, error) {
	fe := FieldErrors{}
	if in.Code != nil && *in.Code != code {
		fe.Add("code", "cannot be changed")
	}
	var r *Reward
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		r = &Reward{}
		err := scanReward(tx.QueryRow(ctx, `SELECT `+rewardColumns+` FROM rewards WHERE code = $1 FOR UPDATE`, code), r)
		if errors.Is(err, pgx.ErrNoRows) {
			return Errorf(ENOTFOUND, "no reward %q", code)
		}
		if err != nil {
			return fmt.Errorf("update reward %s: %w", code, err)
		}
		applyReward(r, in, db.MaxAmount, fe)
		if err := fe.Err("invalid reward"); err != nil {
			return err
		}
		err = scanReward(tx.QueryRow(ctx, `
			UPDATE rewards SET name = $2, cost_points = $3, discount_minor = $4, discount_percent = $5,
			    active = $6, updated_at = now()
			WHERE code = $1 RETURNING `+rewardColumns,
			code, r.Name, r.CostPoints, r.DiscountMinor, r.DiscountPercent, r.Active), r)
		if err != nil {
			return fmt.Errorf("update reward %s: %w", code, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// applyReward checks the fields in gives and sets them on r.
func applyReward(r *Reward, in RewardInput, maxAmount int64, fe FieldErrors) {
	if in.Name != nil {
		if n := len([]rune(*in.Name)); n < 1 || n > maxRewardName {
			fe.Add("name", fmt.Sprintf("must be 1-%d characters", maxRewardName))
		} else {
			r.Name = *in.Name
		}
	}
	if v, ok := boundedInt(in.CostPoints, 1, maxCostPoints, false, "cost_points", fe); ok {
		r.CostPoints = int(v)
	}
	if in.DiscountMinor.Present && in.DiscountPercent != nil {
		fe.Add("discount_minor", "give discount_minor or discount_percent, not both")
		return
	}
	if v, ok := boundedInt(in.DiscountMinor, 1, maxAmount, false, "discount_minor", fe); ok {
		r.DiscountMinor, r.DiscountPercent = &v, nil
	}
	if p := in.DiscountPercent; p != nil {
		switch {
		case *p <= 0 || *p > 100:
			fe.Add("discount_percent", "must be more than 0 and at most 100")
		case !hasDecimals(*p, 2):
			fe.Add("discount_percent", "must have at most 2 decimals")
		default:
			v := *p
			r.DiscountMinor, r.DiscountPercent = nil, &v
		}
	}
	if in.Active != nil {
		r.Active = *in.Active
	}
}

// PointsEntry is one row of a member's points ledger. Transaction names the sale or refund it
// came from (earned, refunded), Redemption the redemption (spent, cancelled); expired entries
// name neither.
type PointsEntry struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind"`
	Points      int        `json:"points"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	Transaction *SourceRef `json:"transaction,omitempty"`
	Redemption  *SourceRef `json:"redemption,omitempty"`
}

// SourceRef names a transaction or a redemption as the till does: store and id.
type SourceRef struct {
	Store string `json:"store"`
	ID    string `json:"id"`
}

// MemberPoints is a member's balance and one page of the ledger, newest first. NextBefore is
// the before= of the next page; nil on the last one.
type MemberPoints struct {
	MemberID   int64         `json:"member_id"`
	Balance    int           `json:"balance"`
	Entries    []PointsEntry `json:"entries"`
	NextBefore *int64        `json:"next_before"`
}

// Paging of the ledger.
const (
	DefaultPointsPage = 50
	MaxPointsPage     = 500
)

// FindMemberPoints returns member id's balance and up to limit ledger entries older than entry
// before (0: from the newest), newest first; ENOTFOUND when there is no such member.
func (db *DB) FindMemberPoints(ctx context.Context, id int64, limit int, before int64) (*MemberPoints, error) {
	if limit <= 0 || limit > MaxPointsPage {
		return nil, &Error{Code: EINVALID, Message: "invalid page",
			Fields: map[string]string{"limit": fmt.Sprintf("must be between 1 and %d", MaxPointsPage)}}
	}
	out := &MemberPoints{MemberID: id, Entries: []PointsEntry{}}
	err := db.Pool.QueryRow(ctx, `SELECT m.id, (`+balanceSQL+`) FROM members m WHERE m.id = $1`, id).Scan(&out.MemberID, &out.Balance)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, Errorf(ENOTFOUND, "no member %d", id)
	}
	if err != nil {
		return nil, fmt.Errorf("points of member %d: %w", id, err)
	}
	// The ledger's identity orders entries as they were written; the page reads limit+1 to
	// know whether another page follows.
	rows, err := db.Pool.Query(ctx, `
		SELECT l.id, l.kind, l.points, l.created_at, l.expires_at, ts.code, t.txn_id, rs.code, r.txn_id
		FROM points_ledger l
		LEFT JOIN transactions t ON t.id = l.transaction_id
		LEFT JOIN stores ts ON ts.id = t.store_id
		LEFT JOIN redemptions r ON r.id = l.redemption_id
		LEFT JOIN stores rs ON rs.id = r.store_id
		WHERE l.member_id = $1 AND ($2::bigint = 0 OR l.id < $2::bigint)
		ORDER BY l.id DESC LIMIT $3`, id, before, limit+1)
	if err != nil {
		return nil, fmt.Errorf("points of member %d: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e PointsEntry
		var tStore, tID, rStore, rID *string
		if err := rows.Scan(&e.ID, &e.Kind, &e.Points, &e.CreatedAt, &e.ExpiresAt, &tStore, &tID, &rStore, &rID); err != nil {
			return nil, fmt.Errorf("points of member %d: %w", id, err)
		}
		if tStore != nil && tID != nil {
			e.Transaction = &SourceRef{Store: *tStore, ID: *tID}
		}
		if rStore != nil && rID != nil {
			e.Redemption = &SourceRef{Store: *rStore, ID: *rID}
		}
		out.Entries = append(out.Entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("points of member %d: %w", id, err)
	}
	if len(out.Entries) > limit {
		out.Entries = out.Entries[:limit]
		next := out.Entries[limit-1].ID
		out.NextBefore = &next
	}
	return out, nil
}

// Liability is what the members' points may cost the shop, as of a time.
type Liability struct {
	AsOf time.Time `json:"as_of"`
	// Reward and RatePerPoint are the active reward with an amount off that gives the least
	// per point, and that amount per point (minor units); nil when no active reward has one.
	Reward       *string          `json:"reward"`
	RatePerPoint *float64         `json:"rate_minor_per_point"`
	Total        LiabilityFigures `json:"total"`
	Stores       []StoreLiability `json:"stores"`
}

// LiabilityFigures are the points outstanding and what of them expires soon.
type LiabilityFigures struct {
	// Members is how many members have a positive balance.
	Members int64 `json:"members"`
	// PointsOutstanding is the sum of the positive balances.
	PointsOutstanding int64 `json:"points_outstanding"`
	// ValueMinor is PointsOutstanding at RatePerPoint, rounded; nil without a rate.
	ValueMinor *int64 `json:"value_minor"`
	// ExpiringWithin30Days and ExpiringWithin90Days follow liabilitySQL's rule.
	ExpiringWithin30Days int64 `json:"expiring_30_days"`
	ExpiringWithin90Days int64 `json:"expiring_90_days"`
}

// StoreLiability is the figures of the members of one home store; Store nil for members
// without one.
type StoreLiability struct {
	Store *string `json:"store"`
	LiabilityFigures
}

// liabilitySQL sums the ledger up to $1 per member, then per home store. What expires within
// d days is, per member, the credits expiring by $1 + d less everything debited so far (spent,
// refunded, expired, net of cancellations), since spending and expiry use the oldest credits
// first (FIFO), and never more than the balance:
//
//	expiring(d) = Σ_members max(0, min(balance, credits expiring ≤ as_of + d − debits))
//
// Credits that had expired by $1 without an 'expired' entry yet (the nightly expiry has not
// run) count as expiring. Members with no ledger entries do not appear.
const liabilitySQL = `
    WITH m AS (
        SELECT l.member_id, sum(l.points) AS balance,
               greatest(0, -coalesce(sum(l.points) FILTER (WHERE l.kind <> 'earned'), 0)) AS debits,
               coalesce(sum(l.points) FILTER (WHERE l.kind = 'earned' AND l.expires_at <= $1::timestamptz + interval '30 days'), 0) AS due30,
               coalesce(sum(l.points) FILTER (WHERE l.kind = 'earned' AND l.expires_at <= $1::timestamptz + interval '90 days'), 0) AS due90
        FROM points_ledger l
        WHERE l.created_at <= $1::timestamptz
        GROUP BY l.member_id
    )
    SELECT s.code,
           count(*) FILTER (WHERE m.balance > 0),
           coalesce(sum(greatest(m.balance, 0)), 0)::bigint,
           coalesce(sum(greatest(0, least(m.balance, m.due30 - m.debits))), 0)::bigint,
           coalesce(sum(greatest(0, least(m.balance, m.due90 - m.debits))), 0)::bigint
    FROM m JOIN members mem ON mem.id = m.member_id
    LEFT JOIN stores s ON s.id = mem.home_store_id
    GROUP BY s.code
    ORDER BY s.code NULLS LAST`

// FindRewardsLiability reports the points outstanding as of asOf, their value at the cheapest
// active reward's rate, and what expires in the 30 and 90 days after asOf, in total and per home
// store.
func (db *DB) FindRewardsLiability(ctx context.Context, asOf time.Time) (*Liability, error) {
	out := &Liability{AsOf: asOf, Stores: []StoreLiability{}}
	var code string
	var rate float64
	err := db.Pool.QueryRow(ctx, `
		SELECT code, discount_minor::float8 / cost_points FROM rewards
		WHERE active AND discount_minor IS NOT NULL
		ORDER BY discount_minor::numeric / cost_points, code LIMIT 1`).Scan(&code, &rate)
	switch {
	case err == nil:
		out.Reward, out.RatePerPoint = &code, &rate
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("rewards liability: rate: %w", err)
	}
	rows, err := db.Pool.Query(ctx, liabilitySQL, asOf)
	if err != nil {
		return nil, fmt.Errorf("rewards liability: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s StoreLiability
		f := &s.LiabilityFigures
		if err := rows.Scan(&s.Store, &f.Members, &f.PointsOutstanding, &f.ExpiringWithin30Days, &f.ExpiringWithin90Days); err != nil {
			return nil, fmt.Errorf("rewards liability: %w", err)
		}
		f.ValueMinor = out.value(f.PointsOutstanding)
		t := &out.Total
		t.Members += f.Members
		t.PointsOutstanding += f.PointsOutstanding
		t.ExpiringWithin30Days += f.ExpiringWithin30Days
		t.ExpiringWithin90Days += f.ExpiringWithin90Days
		out.Stores = append(out.Stores, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rewards liability: %w", err)
	}
	out.Total.ValueMinor = out.value(out.Total.PointsOutstanding)
	return out, nil
}

// value is points at the liability's rate, rounded to a minor unit; nil without a rate.
func (l *Liability) value(points int64) *int64 {
	if l.RatePerPoint == nil {
		return nil
	}
	v := int64(math.Round(float64(points) * *l.RatePerPoint))
	return &v
}
