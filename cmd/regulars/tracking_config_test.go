package main

import (
	"strings"
	"testing"
)

func TestCampaignStatsSettingsAreCheckedAtStart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		wantErr  string
		wantDays int
		wantCost int64
	}{
		{"the defaults are seven days and no cost", nil, "", 7, 0},
		{"both can be set", map[string]string{"REGULARS_ATTRIBUTION_DAYS": "14", "REGULARS_COST_PER_MAIL": "25"}, "", 14, 25},
		{"attribution days that are not a number are refused", map[string]string{"REGULARS_ATTRIBUTION_DAYS": "a week"}, "REGULARS_ATTRIBUTION_DAYS must be a whole number", 0, 0},
		{"zero attribution days are refused", map[string]string{"REGULARS_ATTRIBUTION_DAYS": "0"}, "REGULARS_ATTRIBUTION_DAYS must be between 1 and 365", 0, 0},
		{"a decimal cost is refused", map[string]string{"REGULARS_COST_PER_MAIL": "0.25"}, "REGULARS_COST_PER_MAIL must be a whole number of minor units", 0, 0},
		{"a negative cost is refused", map[string]string{"REGULARS_COST_PER_MAIL": "-1"}, "REGULARS_COST_PER_MAIL must be a whole number of minor units", 0, 0},
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
			if c.AttributionDays != tc.wantDays || c.CostPerMail != tc.wantCost {
				t.Errorf("attribution days %d and cost %d, want %d and %d", c.AttributionDays, c.CostPerMail, tc.wantDays, tc.wantCost)
			}
		})
	}
}
