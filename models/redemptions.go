package models

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Codes of the redemption conflicts: ECONFLICT refined, so that a till can tell them apart.
// The HTTP layer answers them with ECONFLICT's status and their own code.
const (
	EINSUFFICIENTPOINTS = "insufficient_points" // the member's balance is below the reward's cost
	EVOUCHERUSED        = "voucher_used"        // the voucher was used already
	EVOUCHEREXPIRED     = "voucher_expired"     // the voucher's expires_at has passed
)

// RedemptionInput is a redemption as a till posts it: a reward bought with points, or a
// voucher, for the member who presented a card, email or phone.
type RedemptionInput struct {
	ID     string     `json:"id"`
	Store  string     `json:"store"`
	Member *MemberRef `json:"member"`
	// Reward is the code of the reward bought with points; Voucher a voucher code. One of them.
	Reward  string `json:"reward,omitempty"`
	Voucher string `json:"voucher,omitempty"`
	// Transaction is the sale it goes with, as the till names it; not checked, since the
	// redemption usually comes before the sale is posted.
	Transaction string `json:"transaction,omitempty"`
}

// Redemption is a stored redemption. BalanceAfter is the member's balance after it when it was
// created (201); on a replay and on a cancel, the member's balance at the time of the answer.
type Redemption struct {
	ID              string     `json:"id"`
	Store           string     `json:"store"`
	MemberID        int64      `json:"member_id"`
	Reward          string     `json:"reward"`
	Voucher         string     `json:"voucher,omitempty"`
	Transaction     string     `json:"transaction,omitempty"`
	PointsSpent     int        `json:"points_spent"`
	BalanceAfter    int        `json:"balance_after"`
	DiscountMinor   *int64     `json:"discount_minor,omitempty"`
	DiscountPercent *float64   `json:"discount_percent,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	CancelledAt     *time.Time `json:"cancelled_at,omitempty"`

	key       int64
	voucherID *int64
	hash      []byte
}

// checkMemberRef checks and normalises how a customer identified themselves, as the till's
// transactions do; problems go to fe under member.*.
func checkMemberRef(in *MemberRef, fe FieldErrors) MemberRef {
	if in == nil || (in.Card == "" && in.Email == "" && in.Phone == "") {
		fe.Add("member", "is required: the card, email or phone the customer presented")
		return MemberRef{}
	}
	return normalizeMemberRef(in, fe)
}

// redemptionHash identifies a redemption's content for idempotency, as contentHash does a
// transaction's.
func redemptionHash(in *RedemptionInput, m MemberRef) []byte {
	h := sha256.New()
	for _, s := range []string{in.ID, m.Card, m.Email, m.Phone, in.Reward, in.Voucher, in.Transaction} {
		h.Write([]byte(s))
		h.Write([]byte{0x1f})
	}
	return h.Sum(nil)
}

// resolveMemberSQL finds the member a till's MemberRef names: by card, then email, then phone,
// as the till's insert does (insertTransactionsTail). Erased members are nobody.
const resolveMemberSQL = `
    SELECT COALESCE(
        (SELECT m.id FROM members m WHERE m.card = $1 AND m.status <> 'erased'),
        (SELECT m.id FROM members m WHERE lower(m.email) = $2 AND m.status <> 'erased'),
        (SELECT m.id FROM members m WHERE m.phone = $3 AND m.status <> 'erased'))`

// balanceSQL is a member's balance: the sum of the ledger.
const balanceSQL = `SELECT coalesce(sum(points), 0) FROM points_ledger WHERE member_id = $1`

// Redeem validates and commits a redemption for the register p. A replay of a stored one
// returns it with Replayed; the same (store, id) with other content is ECONFLICT.
//
// Concurrency: the member's row is locked (FOR UPDATE) first, so that redemptions of one member
// run one after the other; the balance is read by the next statement, which in READ COMMITTED
// sees every redemption committed before the lock was granted. The balance never goes below
// zero through a redemption (a refund may take it there: product.md). A voucher is claimed by
// one conditional UPDATE, which only one transaction can win.
func (db *DB) Redeem(ctx context.Context, p *Principal, in RedemptionInput) (*Redemption, Outcome, error) {
	if p.Role != RoleRegister {
		return nil, 0, Errorf(EFORBIDDEN, "only a register token may redeem rewards")
	}
	if in.Store != "" && in.Store != p.Store.Code {
		return nil, 0, Errorf(EFORBIDDEN, "this register token may only redeem for store %s", p.Store.Code)
	}
	fe := FieldErrors{}
	switch {
	case in.ID == "":
		fe.Add("id", "is required")
	case !validID(in.ID):
		fe.Add("id", "must be 1-64 printable characters without surrounding spaces")
	}
	if in.Store == "" {
		fe.Add("store", "is required")
	}
	ref := checkMemberRef(in.Member, fe)
	switch {
	case in.Reward == "" && in.Voucher == "":
		fe.Add("reward", "give reward (bought with points) or voucher")
	case in.Reward != "" && in.Voucher != "":
		fe.Add("voucher", "give reward or voucher, not both")
	}
	if in.Transaction != "" && !validID(in.Transaction) {
		fe.Add("transaction", "must be the id of a transaction")
	}
	if err := fe.Err("invalid redemption"); err != nil {
		return nil, 0, err
	}
	hash := redemptionHash(&in, ref)
	if r, outcome, err := db.storedRedemption(ctx, db.Pool, p.Store, in.ID, hash); r != nil || err != nil {
		return r, outcome, err
	}
	var r *Redemption
	var outcome Outcome
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		var err error
		r, outcome, err = db.redeem(ctx, tx, p.Store, &in, ref, hash)
		return err
	})
	if errors.Is(err, errRedemptionRaced) {
		// Another request stored this id first, for another member: judge against it.
		return db.storedRedemption(ctx, db.Pool, p.Store, in.ID, hash)
	}
	if err != nil {
		return nil, 0, err
	}
	return r, outcome, nil
}

// errRedemptionRaced says the insert found the (store, id) taken after all.
var errRedemptionRaced = errors.New("redemption id taken meanwhile")

// redeem is Redeem's transaction.
func (db *DB) redeem(ctx context.Context, tx pgx.Tx, store *Store, in *RedemptionInput, ref MemberRef, hash []byte) (*Redemption, Outcome, error) {
	r := &Redemption{ID: in.ID, Store: store.Code, Transaction: in.Transaction, Voucher: in.Voucher, hash: hash}
	var memberID *int64
	if err := tx.QueryRow(ctx, resolveMemberSQL, ref.Card, ref.Email, ref.Phone).Scan(&memberID); err != nil {
		return nil, 0, fmt.Errorf("redeem %s: find member: %w", in.ID, err)
	}
	if memberID == nil {
		return nil, 0, Errorf(ENOTFOUND, "no member found")
	}
	r.MemberID = *memberID
	if _, err := tx.Exec(ctx, `SELECT id FROM members WHERE id = $1 FOR UPDATE`, r.MemberID); err != nil {
		return nil, 0, fmt.Errorf("redeem %s: lock member: %w", in.ID, err)
	}
	// The same id posted twice at once for this member waited on the lock above: it is a
	// replay now.
	if s, outcome, err := db.storedRedemption(ctx, tx, store, in.ID, hash); s != nil || err != nil {
		return s, outcome, err
	}
	var balance int
	if err := tx.QueryRow(ctx, balanceSQL, r.MemberID).Scan(&balance); err != nil {
		return nil, 0, fmt.Errorf("redeem %s: balance: %w", in.ID, err)
	}
	if in.Voucher != "" {
		if err := db.claimVoucher(ctx, tx, r); err != nil {
			return nil, 0, err
		}
	} else {
		reward, err := findReward(ctx, tx, in.Reward)
		switch {
		case ErrorCode(err) == ENOTFOUND:
			return nil, 0, &Error{Code: EINVALID, Message: "invalid redemption", Fields: map[string]string{"reward": "no such reward"}}
		case err != nil:
			return nil, 0, err
		case !reward.Active:
			return nil, 0, &Error{Code: EINVALID, Message: "invalid redemption", Fields: map[string]string{"reward": "is not active"}}
		case balance < reward.CostPoints:
			return nil, 0, &Error{Code: EINSUFFICIENTPOINTS,
				Message: fmt.Sprintf("the member has %d points; %s costs %d", balance, reward.Code, reward.CostPoints)}
		}
		r.Reward, r.PointsSpent = reward.Code, reward.CostPoints
		r.DiscountMinor, r.DiscountPercent = reward.DiscountMinor, reward.DiscountPercent
	}
	err := tx.QueryRow(ctx, `
		INSERT INTO redemptions (store_id, txn_id, member_id, reward_code, voucher_id, points_spent,
		                         discount_minor, discount_percent, transaction_ref, content_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (store_id, txn_id) DO NOTHING
		RETURNING id, created_at`,
		store.ID, r.ID, r.MemberID, r.Reward, r.voucherID, r.PointsSpent, r.DiscountMinor, r.DiscountPercent,
		nullable(r.Transaction), hash).Scan(&r.key, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, errRedemptionRaced
	}
	if err != nil {
		return nil, 0, fmt.Errorf("redeem %s: %w", in.ID, err)
	}
	if r.PointsSpent > 0 {
		if _, err := tx.Exec(ctx, `
			INSERT INTO points_ledger (member_id, kind, points, redemption_id) VALUES ($1, 'spent', $2, $3)`,
			r.MemberID, -r.PointsSpent, r.key); err != nil {
			return nil, 0, fmt.Errorf("redeem %s: spend points: %w", in.ID, err)
		}
	}
	r.BalanceAfter = balance - r.PointsSpent
	r.CreatedAt = r.CreatedAt.In(store.Location())
	return r, Created, nil
}

// claimVoucher marks r.Voucher used if it is the member's, unused and unexpired, and sets r's
// reward and discount from it; a voucher spends no points. It honours the reward as it is now,
// even when it was made inactive after the voucher was issued.
func (db *DB) claimVoucher(ctx context.Context, tx pgx.Tx, r *Redemption) error {
	var voucherID int64
	var rewardCode string
	err := tx.QueryRow(ctx, `
		UPDATE vouchers SET used_at = now()
		WHERE code = $1 AND member_id = $2 AND used_at IS NULL AND expires_at > $3
		RETURNING id, reward_code`, r.Voucher, r.MemberID, db.Now()).Scan(&voucherID, &rewardCode)
	if errors.Is(err, pgx.ErrNoRows) {
		var usedAt *time.Time
		var expiresAt time.Time
		err := tx.QueryRow(ctx, `SELECT used_at, expires_at FROM vouchers WHERE code = $1 AND member_id = $2`,
			r.Voucher, r.MemberID).Scan(&usedAt, &expiresAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return Errorf(ENOTFOUND, "no voucher %s for this member", r.Voucher)
		case err != nil:
			return fmt.Errorf("redeem %s: voucher: %w", r.ID, err)
		case usedAt != nil:
			return Errorf(EVOUCHERUSED, "voucher %s was used at %s", r.Voucher, usedAt.UTC().Format(time.RFC3339))
		default:
			return Errorf(EVOUCHEREXPIRED, "voucher %s expired at %s", r.Voucher, expiresAt.UTC().Format(time.RFC3339))
		}
	}
	if err != nil {
		return fmt.Errorf("redeem %s: claim voucher: %w", r.ID, err)
	}
	reward, err := findReward(ctx, tx, rewardCode)
	if err != nil {
		return err
	}
	r.voucherID, r.Reward = &voucherID, reward.Code
	r.DiscountMinor, r.DiscountPercent = reward.DiscountMinor, reward.DiscountPercent
	return nil
}

// storedRedemption judges a redemption id against the stored one: nil when none is stored, a
// replay when the content matches, else ECONFLICT.
func (db *DB) storedRedemption(ctx context.Context, q querier, store *Store, id string, hash []byte) (*Redemption, Outcome, error) {
	r, err := db.findRedemption(ctx, q, store, id, false)
	if err != nil || r == nil {
		return nil, 0, err
	}
	if !bytes.Equal(r.hash, hash) {
		return nil, 0, &Error{Code: ECONFLICT, Message: fmt.Sprintf("redemption %s was already recorded with different content", id),
			Fields: map[string]string{"id": "already used for a different redemption"}}
	}
	return r, Replayed, nil
}

// findRedemption loads redemption id of store with the member's balance now; nil when there
// is none. forUpdate locks the row.
func (db *DB) findRedemption(ctx context.Context, q querier, store *Store, id string, forUpdate bool) (*Redemption, error) {
	lock := ""
	if forUpdate {
		lock = " FOR UPDATE OF r"
	}
	r := &Redemption{ID: id, Store: store.Code}
	var txnRef, voucher *string
	err := q.QueryRow(ctx, `
		SELECT r.id, r.member_id, r.reward_code, r.voucher_id, v.code, r.transaction_ref, r.points_spent,
		       r.discount_minor, r.discount_percent::float8, r.content_hash, r.created_at, r.cancelled_at,
		       (SELECT coalesce(sum(l.points), 0) FROM points_ledger l WHERE l.member_id = r.member_id)
		FROM redemptions r LEFT JOIN vouchers v ON v.id = r.voucher_id
		WHERE r.store_id = $1 AND r.txn_id = $2`+lock, store.ID, id).Scan(
		&r.key, &r.MemberID, &r.Reward, &r.voucherID, &voucher, &txnRef, &r.PointsSpent,
		&r.DiscountMinor, &r.DiscountPercent, &r.hash, &r.CreatedAt, &r.CancelledAt, &r.BalanceAfter)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find redemption %s: %w", id, err)
	}
	if voucher != nil {
		r.Voucher = *voucher
	}
	if txnRef != nil {
		r.Transaction = *txnRef
	}
	r.CreatedAt = r.CreatedAt.In(store.Location())
	if r.CancelledAt != nil {
		at := r.CancelledAt.In(store.Location())
		r.CancelledAt = &at
	}
	return r, nil
}

// CancelRedemption undoes redemption id of store (a till that voided the sale): its points come
// back as a 'cancelled' ledger entry, and its voucher, if any, is released: usable again until
// it expires (an expired one stays unusable). Cancelling again changes nothing and returns the
// same redemption. Only a register of that store may cancel. The cancelled redemption keeps
// naming its voucher: only standing redemptions are unique per voucher (redemptions_voucher).
func (db *DB) CancelRedemption(ctx context.Context, p *Principal, storeCode, id string) (*Redemption, error) {
	if p.Role != RoleRegister {
		return nil, Errorf(EFORBIDDEN, "only a register token may cancel redemptions")
	}
	if storeCode != p.Store.Code {
		return nil, Errorf(EFORBIDDEN, "this register token may only cancel redemptions of store %s", p.Store.Code)
	}
	var r *Redemption
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		var err error
		if r, err = db.findRedemption(ctx, tx, p.Store, id, true); err != nil {
			return err
		}
		if r == nil {
			return Errorf(ENOTFOUND, "no redemption %s in store %s", id, storeCode)
		}
		if r.CancelledAt != nil {
			return nil
		}
		var at time.Time
		if err := tx.QueryRow(ctx, `UPDATE redemptions SET cancelled_at = now() WHERE id = $1 RETURNING cancelled_at`,
			r.key).Scan(&at); err != nil {
			return fmt.Errorf("cancel redemption %s: %w", id, err)
		}
		at = at.In(p.Store.Location())
		r.CancelledAt = &at
		if r.voucherID != nil {
			if _, err := tx.Exec(ctx, `UPDATE vouchers SET used_at = NULL WHERE id = $1`, *r.voucherID); err != nil {
				return fmt.Errorf("cancel redemption %s: release voucher: %w", id, err)
			}
		}
		if r.PointsSpent > 0 {
			if _, err := tx.Exec(ctx, `
				INSERT INTO points_ledger (member_id, kind, points, redemption_id) VALUES ($1, 'cancelled', $2, $3)`,
				r.MemberID, r.PointsSpent, r.key); err != nil {
				return fmt.Errorf("cancel redemption %s: give points back: %w", id, err)
			}
			r.BalanceAfter += r.PointsSpent
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}
