package templates

import (
	"math"
	"strconv"
	"strings"
)

// The dashboard's counts: figures of a metrics snapshot, where nil (an undefined figure) shows as
// MissingFigure. Named metric* so they cannot clash with other console areas' helpers. Money and
// rates use the console's formatters (format.go). Counts keep comma groups, as the segment pages'
// script writes them (toLocaleString('en')) when it updates a count in place.
func init() {
	ConsoleFuncs["metricNumber"] = func(v *float64, decimals int) string {
		if !dashFinite(v) {
			return MissingFigure
		}
		return dashGroupThousands(strconv.FormatFloat(*v, 'f', decimals, 64))
	}
	ConsoleFuncs["metricCount"] = func(n int64) string { return dashGroupThousands(strconv.FormatInt(n, 10)) }
}

func dashFinite(v *float64) bool { return v != nil && !math.IsNaN(*v) && !math.IsInf(*v, 0) }

// dashGroupThousands puts commas between groups of three digits of a formatted number.
func dashGroupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if hasFrac {
		b.WriteString("." + frac)
	}
	return sign + b.String()
}
