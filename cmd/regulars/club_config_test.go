package main

import (
	"strings"
	"testing"
	"time"
)

func TestClubSettingsAreCheckedAtStart(t *testing.T) {
	for _, tc := range []struct {
		name        string
		env         map[string]string
		wantErr     string
		wantTTL     time.Duration
		wantJoinMin int
	}{
		{"the defaults are a week and ten a minute", nil, "", 7 * 24 * time.Hour, 10},
		{"both can be set", map[string]string{"REGULARS_CONFIRM_DAYS": "3", "REGULARS_JOIN_RATE": "60"}, "", 3 * 24 * time.Hour, 60},
		{"confirm days that are not a number are refused", map[string]string{"REGULARS_CONFIRM_DAYS": "a week"}, "REGULARS_CONFIRM_DAYS must be a whole number", 0, 0},
		{"zero confirm days are refused", map[string]string{"REGULARS_CONFIRM_DAYS": "0"}, "REGULARS_CONFIRM_DAYS must be between 1 and 365", 0, 0},
		{"more than a year of confirm days is refused", map[string]string{"REGULARS_CONFIRM_DAYS": "400"}, "REGULARS_CONFIRM_DAYS must be between 1 and 365", 0, 0},
		{"a join rate that is not a number is refused", map[string]string{"REGULARS_JOIN_RATE": "10/min"}, "REGULARS_JOIN_RATE must be a whole number", 0, 0},
		{"a zero join rate is refused", map[string]string{"REGULARS_JOIN_RATE": "0"}, "REGULARS_JOIN_RATE must be between 1 and 10000", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(func(k string) string { return tc.env[k] })
			if err == nil {
				err = c.validate()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if c.confirmTTL() != tc.wantTTL || c.JoinRate != tc.wantJoinMin {
				t.Errorf("confirm TTL %v and join rate %d, want %v and %d", c.confirmTTL(), c.JoinRate, tc.wantTTL, tc.wantJoinMin)
			}
		})
	}
}
