package templates

import (
	"fmt"
	"math"
)

// The console's campaign pages' template functions, prefixed camp so that they never clash with
// another area's. Money, percentages and times use the console's formatters (format.go).
func init() {
	ConsoleFuncs["campLiftBar"] = campLiftBar
	ConsoleFuncs["campVerdict"] = campVerdict
	ConsoleFuncs["campHas"] = func(m map[string]string, key string) bool { _, ok := m[key]; return ok }
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

// campVerdict words a holdout's verdict (tracking.Verdict*; the rule that decides it lives
// there) for a report's caption; nil, no verdict, is the empty string.
func campVerdict(v *string) string {
	if v == nil {
		return ""
	}
	switch *v {
	case "above_zero":
		return "above zero, the mail made a difference"
	case "below_zero":
		return "below zero, the members who got no mail bought more"
	default:
		return "the interval includes zero, so the lift may be chance"
	}
}
