package main

import (
	"strings"
	"testing"
)

func TestSendSettingsAreCheckedAtStart(t *testing.T) {
	for _, tc := range []struct {
		name            string
		env             map[string]string
		wantErr         string
		wantConcurrency int
		wantRate        float64
	}{
		{"the defaults are four workers and 50 a second", nil, "", 4, 50},
		{"both can be set", map[string]string{"REGULARS_SEND_CONCURRENCY": "16", "REGULARS_SEND_RATE": "12.5"}, "", 16, 12.5},
		{"a rate of 0 is unlimited", map[string]string{"REGULARS_SEND_RATE": "0"}, "", 4, 0},
		{"a concurrency that is not a number is refused", map[string]string{"REGULARS_SEND_CONCURRENCY": "many"}, "REGULARS_SEND_CONCURRENCY must be a whole number", 0, 0},
		{"no workers is refused", map[string]string{"REGULARS_SEND_CONCURRENCY": "0"}, "REGULARS_SEND_CONCURRENCY must be between 1 and 256", 0, 0},
		{"a rate that is not a number is refused", map[string]string{"REGULARS_SEND_RATE": "50/s"}, "REGULARS_SEND_RATE must be a number", 0, 0},
		{"a negative rate is refused", map[string]string{"REGULARS_SEND_RATE": "-1"}, "REGULARS_SEND_RATE must be between 0", 0, 0},
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
			if c.SendConcurrency != tc.wantConcurrency || c.SendRate != tc.wantRate {
				t.Errorf("concurrency %d and rate %g, want %d and %g", c.SendConcurrency, c.SendRate, tc.wantConcurrency, tc.wantRate)
			}
		})
	}
}
