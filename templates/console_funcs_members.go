package templates

import (
	"fmt"
	"strings"
	"time"
)

// Template functions of the console's member and tier pages.
func init() {
	// memMoney writes minor units with their currency: 12950, "NOK" → "129.50 NOK".
	ConsoleFuncs["memMoney"] = func(minor int64, currency string) string {
		sign := ""
		if minor < 0 {
			sign, minor = "-", -minor
		}
		return strings.TrimSpace(fmt.Sprintf("%s%d.%02d %s", sign, minor/100, minor%100, currency))
	}
	// memTime writes an instant as date and time in its own zone.
	ConsoleFuncs["memTime"] = func(t time.Time) string { return t.Format("2006-01-02 15:04 MST") }
	// memDate writes the date of an instant.
	ConsoleFuncs["memDate"] = func(t time.Time) string { return t.Format("2006-01-02") }
	// memPercent writes a discount: 12.5 → "12.5 %".
	ConsoleFuncs["memPercent"] = func(p float64) string { return fmt.Sprintf("%g %%", p) }
}
