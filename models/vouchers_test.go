package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/regulars/regulars/models"
)

func TestVouchersAreIssuedWithValidUniqueCodes(t *testing.T) {
	s := newRewardsShop(t)
	ctx := context.Background()
	id, _ := s.member(t, "oslo-1")
	later := time.Now().Add(30 * 24 * time.Hour).Format(time.RFC3339)
	seen := map[string]bool{}
	for range 20 {
		v, err := s.db.CreateVoucher(ctx, id, models.VoucherInput{Reward: "coffee", ExpiresAt: later})
		if err != nil {
			t.Fatal(err)
		}
		if !models.ValidCard(v.Code) || !strings.HasPrefix(v.Code, "28") || seen[v.Code] {
			t.Errorf("code %s: want a fresh EAN-13 number starting 28", v.Code)
		}
		seen[v.Code] = true
		if v.Reward != "coffee" || v.Name != "Free coffee" {
			t.Errorf("voucher %+v", v)
		}
	}
	var off models.RewardInput
	mustJSON(t, `{"active": false}`, &off)
	if _, err := s.db.UpdateReward(ctx, "bag", off); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, reward, expires, field string
	}{
		{"a voucher without reward is invalid", "", later, "reward"},
		{"an unknown reward is invalid", "nope", later, "reward"},
		{"an inactive reward is invalid", "bag", later, "reward"},
		{"a voucher without expiry is invalid", "coffee", "", "expires_at"},
		{"an expiry without offset is invalid", "coffee", "2027-01-01T00:00:00", "expires_at"},
		{"an expiry in the past is invalid", "coffee", time.Now().Add(-time.Minute).Format(time.RFC3339), "expires_at"},
		{"an expiry in 11 years is invalid", "coffee", time.Now().AddDate(11, 0, 0).Format(time.RFC3339), "expires_at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.db.CreateVoucher(ctx, id, models.VoucherInput{Reward: tc.reward, ExpiresAt: tc.expires})
			var e *models.Error
			if models.ErrorCode(err) != models.EINVALID || !asError(err, &e) || e.Fields[tc.field] == "" {
				t.Fatalf("got %v, want invalid naming %s", err, tc.field)
			}
		})
	}
	if _, err := s.db.CreateVoucher(ctx, id+1000, models.VoucherInput{Reward: "coffee", ExpiresAt: later}); models.ErrorCode(err) != models.ENOTFOUND {
		t.Errorf("unknown member: %v, want not found", err)
	}
}
