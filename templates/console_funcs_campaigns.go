package templates

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The console's campaign pages' template functions, prefixed camp so that they never clash with
// another area's.
func init() {
	ConsoleFuncs["campMoney"] = campMoney
	ConsoleFuncs["campMoneyF"] = campMoneyF
	ConsoleFuncs["campPct"] = campPct
	ConsoleFuncs["campTime"] = campTime
	ConsoleFuncs["campLiftBar"] = campLiftBar
	ConsoleFuncs["campHas"] = func(m map[string]string, key string) bool { _, ok := m[key]; return ok }
}

// campMoney formats an amount in minor units with its currency: "1 234.50 NOK". Two decimals,
// as every currency the shops use has; the currency is left out when unknown (nil or "").
func campMoney(minor int64, currency any) string {
	return campMoneyF(float64(minor), currency)
}

// campMoneyF is campMoney for an average, which need not be a whole number of minor units.
func campMoneyF(minor float64, currency any) string {
	major := math.Round(minor) / 100
	sign := ""
	if major < 0 {
		sign, major = "−", -major
	}
	s := strconv.FormatFloat(major, 'f', 2, 64)
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteRune(' ') // a narrow no-break space groups thousands
		}
		b.WriteRune(r)
	}
	out := sign + b.String() + "." + frac
	switch c := currency.(type) {
	case string:
		if c != "" {
			out += " " + c
		}
	case *string:
		if c != nil && *c != "" {
			out += " " + *c
		}
	}
	return out
}

// campPct formats a ratio (0.123) as a percentage ("12.3 %"), "–" when nil.
func campPct(ratio any) string {
	var v float64
	switch r := ratio.(type) {
	case float64:
		v = r
	case *float64:
		if r == nil {
			return "–"
		}
		v = *r
	default:
		return "–"
	}
	return strconv.FormatFloat(100*v, 'f', 1, 64) + " %"
}

// campTime formats a time (time.Time or *time.Time) in zone: "2026-12-01 09:00 CET"; "–" when
// nil or zero.
func campTime(t any, zone *time.Location) string {
	var v time.Time
	switch x := t.(type) {
	case time.Time:
		v = x
	case *time.Time:
		if x == nil {
			return "–"
		}
		v = *x
	}
	if v.IsZero() {
		return "–"
	}
	if zone != nil {
		v = v.In(zone)
	}
	return v.Format("2006-01-02 15:04 MST")
}

// LiftBar is the geometry of an interval bar: a lift and its 95 % interval on an axis that
// always includes zero, in the coordinates of an SVG of Width × Height.
type LiftBar struct {
	Width, Height float64
	// Zero, Low, High and Point are x coordinates; Low and High are set only with an interval.
	Zero, Low, High, Point float64
	HasInterval            bool
	// Span is High - Low, the interval rectangle's width.
	Span float64
	// Above tells whether the whole interval lies above zero (the lift is significant).
	Above bool
	// Below tells whether the whole interval lies below zero.
	Below bool
}

// campLiftBar lays out lift with its interval [low, high] (either may be nil: no interval).
func campLiftBar(lift float64, low, high *float64) LiftBar {
	b := LiftBar{Width: 400, Height: 48}
	lo, hi := math.Min(lift, 0), math.Max(lift, 0)
	if low != nil && high != nil {
		b.HasInterval = true
		lo, hi = math.Min(lo, *low), math.Max(hi, *high)
		b.Above, b.Below = *low > 0, *high < 0
	}
	if hi == lo {
		lo, hi = lo-1, hi+1
	}
	pad := (hi - lo) * 0.08
	lo, hi = lo-pad, hi+pad
	const margin = 8
	x := func(v float64) float64 {
		return math.Round((margin+(v-lo)/(hi-lo)*(b.Width-2*margin))*10) / 10
	}
	b.Zero, b.Point = x(0), x(lift)
	if b.HasInterval {
		b.Low, b.High = x(*low), x(*high)
		b.Span = math.Max(b.High-b.Low, 1)
	}
	return b
}

// String describes the bar for tests and debugging.
func (b LiftBar) String() string {
	return fmt.Sprintf("zero %.1f point %.1f interval [%.1f, %.1f]", b.Zero, b.Point, b.Low, b.High)
}
