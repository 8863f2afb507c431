package main

import (
	"strings"
	"testing"
	"time"
)

// REGULARS_STATEMENT_TIMEOUT is a Go duration, 30 s by default; anything else stops the start
// with a line naming the variable.
func TestStatementTimeoutSetting(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        time.Duration
		wantErr     bool
	}{
		{"the default is 30 s", "", 30 * time.Second, false},
		{"a duration is taken", "2m30s", 150 * time.Second, false},
		{"a bare number is refused", "30", 0, true},
		{"zero is refused", "0s", 0, true},
		{"a negative duration is refused", "-5s", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(func(k string) string {
				if k == "REGULARS_STATEMENT_TIMEOUT" {
					return tc.value
				}
				return ""
			})
			switch {
			case tc.wantErr && (err == nil || !strings.Contains(err.Error(), "REGULARS_STATEMENT_TIMEOUT")):
				t.Errorf("got %v, want an error naming REGULARS_STATEMENT_TIMEOUT", err)
			case !tc.wantErr && (err != nil || c.StatementTimeout != tc.want):
				t.Errorf("got %v, %v; want %v", c.StatementTimeout, err, tc.want)
			}
		})
	}
}
