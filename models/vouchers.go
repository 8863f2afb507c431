package models

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"
)

// Voucher is a single-use code issued to one member for one reward. Its code is an EAN-13
// number, so that mail can print it as a barcode the till scans (templates/barcode.go).
type Voucher struct {
	Code      string    `json:"code"`
	Reward    string    `json:"reward"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
}

// VoucherInput is an admin's POST /members/{id}/vouchers.
type VoucherInput struct {
	Reward    string `json:"reward"`
	ExpiresAt string `json:"expires_at"`
}

// voucherPrefix is a GS1 restricted-circulation prefix (20-29) other than the cards' (29), so
// that a voucher code is never a card number the shop issued.
const voucherPrefix = "28"

// maxVoucherLife is how far ahead a voucher may expire.
const maxVoucherLife = 10 * 366 * 24 * time.Hour

// NewVoucherCode returns a random voucher code: voucherPrefix, ten random digits and the
// EAN-13 check digit.
func NewVoucherCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(10_000_000_000))
	if err != nil {
		return "", err
	}
	return WithCheckDigit(voucherPrefix + leftPad(n.String(), 10)), nil
}

// CreateVoucher issues a voucher for reward in.Reward to member memberID (an admin's). The
// member must exist and not be erased (ENOTFOUND), the reward must exist and be active.
func (db *DB) CreateVoucher(ctx context.Context, memberID int64, in VoucherInput) (*Voucher, error) {
	fe := FieldErrors{}
	now := db.Now()
	v := &Voucher{Reward: in.Reward}
	if in.Reward == "" {
		fe.Add("reward", "is required")
	}
	switch at, err := time.Parse(time.RFC3339, in.ExpiresAt); {
	case in.ExpiresAt == "":
		fe.Add("expires_at", "is required")
	case err != nil:
		fe.Add("expires_at", "must be an RFC 3339 time with offset, such as 2027-01-31T23:59:59+01:00")
	case !at.After(now):
		fe.Add("expires_at", "must be in the future")
	case at.After(now.Add(maxVoucherLife)):
		fe.Add("expires_at", "must be within 10 years")
	default:
		v.ExpiresAt = at
	}
	var status string
	err := db.Pool.QueryRow(ctx, `SELECT status FROM members WHERE id = $1`, memberID).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) || status == StatusErased {
		return nil, Errorf(ENOTFOUND, "no member %d", memberID)
	}
	if err != nil {
		return nil, fmt.Errorf("issue voucher to member %d: %w", memberID, err)
	}
	if in.Reward != "" {
		r, err := db.FindRewardByCode(ctx, in.Reward)
		switch {
		case ErrorCode(err) == ENOTFOUND:
			fe.Add("reward", "no such reward")
		case err != nil:
			return nil, err
		case !r.Active:
			fe.Add("reward", "is not active")
		default:
			v.Name = r.Name
		}
	}
	if err := fe.Err("invalid voucher"); err != nil {
		return nil, err
	}
	// A clash of random codes is one in ten billion a pair; a few tries settle it.
	for range 5 {
		if v.Code, err = NewVoucherCode(); err != nil {
			return nil, err
		}
		err = db.Pool.QueryRow(ctx, `
			INSERT INTO vouchers (code, member_id, reward_code, expires_at, issued_by)
			VALUES ($1, $2, $3, $4, 'admin') RETURNING expires_at`,
			v.Code, memberID, v.Reward, v.ExpiresAt).Scan(&v.ExpiresAt)
		if !IsUniqueViolation(err, "vouchers_code_key") {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("issue voucher to member %d: %w", memberID, err)
	}
	return v, nil
}
