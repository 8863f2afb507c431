package templates

import (
	"math"
	"strconv"
	"strings"
)

// The dashboard's template functions: figures of a metrics snapshot, where nil (an undefined
// figure) shows as a dash. Named metric* so they cannot clash with other console areas' helpers.
func init() {
	ConsoleFuncs["metricMoney"] = func(minor any, currency string) string {
		v, ok := dashFloat(minor)
		if !ok {
			return MissingFigure
		}
		return FormatMetricMoney(v, currency)
	}
	ConsoleFuncs["metricPercent"] = func(rate *float64) string {
		if !dashFinite(rate) {
			return MissingFigure
		}
		return FormatMetricPercent(*rate)
	}
	ConsoleFuncs["metricNumber"] = func(v *float64, decimals int) string {
		if !dashFinite(v) {
			return MissingFigure
		}
		return dashGroupThousands(strconv.FormatFloat(*v, 'f', decimals, 64))
	}
	ConsoleFuncs["metricCount"] = func(n int64) string { return dashGroupThousands(strconv.FormatInt(n, 10)) }
}

// MissingFigure is how an undefined figure shows.
const MissingFigure = "—"

func dashFinite(v *float64) bool { return v != nil && !math.IsNaN(*v) && !math.IsInf(*v, 0) }

func dashFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case *float64:
		if !dashFinite(v) {
			return 0, false
		}
		return *v, true
	case float64:
		return v, !math.IsNaN(v) && !math.IsInf(v, 0)
	case int64:
		return float64(v), true
	case int:
		return float64(v), true
	case *int64:
		if v == nil {
			return 0, false
		}
		return float64(*v), true
	}
	return 0, false
}

// dashMinorDigits are the ISO 4217 currencies whose minor unit is not a hundredth.
var dashMinorDigits = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
	"RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}

// FormatMetricMoney writes an amount in minor units as major units with the currency code, e.g.
// 123450 NOK as "NOK 1,234.50". Averages (AOV, CLV) may hold fractions of a minor unit; they are
// rounded to the currency's minor unit. Without a currency the number stands alone.
func FormatMetricMoney(minor float64, currency string) string {
	digits, ok := dashMinorDigits[strings.ToUpper(currency)]
	if !ok {
		digits = 2
	}
	major := minor / math.Pow10(digits)
	s := dashGroupThousands(strconv.FormatFloat(major, 'f', digits, 64))
	if currency == "" {
		return s
	}
	return currency + " " + s
}

// FormatMetricPercent writes a rate 0–1 as a percentage with one decimal: 0.4213 is "42.1 %".
func FormatMetricPercent(rate float64) string {
	return strconv.FormatFloat(rate*100, 'f', 1, 64) + " %"
}

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
