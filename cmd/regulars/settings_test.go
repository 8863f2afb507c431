package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The settings of the club, campaign sending and campaign statistics: their defaults, that they
// can be set, and that a bad value stops the start with a line naming the variable.
func TestSettingsAreCheckedAtStart(t *testing.T) {
	t.Parallel()
	club := func(ttl time.Duration, joinRate int) func(c config) string {
		return func(c config) string {
			if c.confirmTTL() != ttl || c.JoinRate != joinRate {
				return fmt.Sprintf("confirm TTL %v and join rate %d, want %v and %d", c.confirmTTL(), c.JoinRate, ttl, joinRate)
			}
			return ""
		}
	}
	send := func(concurrency int, rate float64) func(c config) string {
		return func(c config) string {
			if c.SendConcurrency != concurrency || c.SendRate != rate {
				return fmt.Sprintf("concurrency %d and rate %g, want %d and %g", c.SendConcurrency, c.SendRate, concurrency, rate)
			}
			return ""
		}
	}
	stats := func(days int, cost int64) func(c config) string {
		return func(c config) string {
			if c.AttributionDays != days || c.CostPerMail != cost {
				return fmt.Sprintf("attribution days %d and cost %d, want %d and %d", c.AttributionDays, c.CostPerMail, days, cost)
			}
			return ""
		}
	}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(c config) string
	}{
		{"club defaults: a week and ten a minute", nil, "", club(7*day, 10)},
		{"club settings can be set", map[string]string{"REGULARS_CONFIRM_DAYS": "3", "REGULARS_JOIN_RATE": "60"}, "", club(3*day, 60)},
		{"confirm days that are not a number", map[string]string{"REGULARS_CONFIRM_DAYS": "a week"}, "REGULARS_CONFIRM_DAYS must be a whole number", nil},
		{"zero confirm days", map[string]string{"REGULARS_CONFIRM_DAYS": "0"}, "REGULARS_CONFIRM_DAYS must be between 1 and 365", nil},
		{"more than a year of confirm days", map[string]string{"REGULARS_CONFIRM_DAYS": "400"}, "REGULARS_CONFIRM_DAYS must be between 1 and 365", nil},
		{"a join rate that is not a number", map[string]string{"REGULARS_JOIN_RATE": "10/min"}, "REGULARS_JOIN_RATE must be a whole number", nil},
		{"a zero join rate", map[string]string{"REGULARS_JOIN_RATE": "0"}, "REGULARS_JOIN_RATE must be between 1 and 10000", nil},

		{"send defaults: four workers and 50 a second", nil, "", send(4, 50)},
		{"send settings can be set", map[string]string{"REGULARS_SEND_CONCURRENCY": "16", "REGULARS_SEND_RATE": "12.5"}, "", send(16, 12.5)},
		{"a send rate of 0 is unlimited", map[string]string{"REGULARS_SEND_RATE": "0"}, "", send(4, 0)},
		{"a concurrency that is not a number", map[string]string{"REGULARS_SEND_CONCURRENCY": "many"}, "REGULARS_SEND_CONCURRENCY must be a whole number", nil},
		{"no workers", map[string]string{"REGULARS_SEND_CONCURRENCY": "0"}, "REGULARS_SEND_CONCURRENCY must be between 1 and 256", nil},
		{"a send rate that is not a number", map[string]string{"REGULARS_SEND_RATE": "50/s"}, "REGULARS_SEND_RATE must be a number", nil},
		{"a negative send rate", map[string]string{"REGULARS_SEND_RATE": "-1"}, "REGULARS_SEND_RATE must be between 0", nil},

		{"stats defaults: seven days and no cost", nil, "", stats(7, 0)},
		{"stats settings can be set", map[string]string{"REGULARS_ATTRIBUTION_DAYS": "14", "REGULARS_COST_PER_MAIL": "25"}, "", stats(14, 25)},
		{"attribution days that are not a number", map[string]string{"REGULARS_ATTRIBUTION_DAYS": "a week"}, "REGULARS_ATTRIBUTION_DAYS must be a whole number", nil},
		{"zero attribution days", map[string]string{"REGULARS_ATTRIBUTION_DAYS": "0"}, "REGULARS_ATTRIBUTION_DAYS must be between 1 and 365", nil},
		{"a decimal cost per mail", map[string]string{"REGULARS_COST_PER_MAIL": "0.25"}, "REGULARS_COST_PER_MAIL must be a whole number of minor units", nil},
		{"a negative cost per mail", map[string]string{"REGULARS_COST_PER_MAIL": "-1"}, "REGULARS_COST_PER_MAIL must be a whole number of minor units", nil},
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
			if msg := tc.check(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}
