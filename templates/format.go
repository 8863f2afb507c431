package templates

// The console's one set of formatters: money, percentages, times and dates read the same on every
// console page (and in the dashboard's charts). Templates call them as money, percent, discount,
// datetime and date; the FuncMap that holds them is made per shop time zone (formatFuncs), so a
// time is always shown in REGULARS_TIMEZONE.

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rmg/iso4217"
)

// MissingFigure is how an undefined figure (nil, NaN, a zero time) shows.
const MissingFigure = "–"

const (
	// groupSeparator goes between groups of three digits: a narrow no-break space, so that an
	// amount never wraps and cannot be read as two numbers or as a decimal comma.
	groupSeparator = "\u202f"
	// minusSign is the typographic minus, as wide as the plus and the digits.
	minusSign = "\u2212"
	// DateTimeLayout is the layout of a time: date, minutes and the zone's abbreviation.
	DateTimeLayout = "2006-01-02 15:04 MST"
	// DateLayout is the layout of a date.
	DateLayout = "2006-01-02"
)

// MinorDigits is the number of decimals of code's minor unit in ISO 4217, the unit amounts are
// stored in (github.com/rmg/iso4217; CLDR's display digits differ for some, e.g. IDR): 2 for NOK,
// 0 for JPY, 3 for KWD; 2 for an empty or unknown code. The SQL function currency_minor_digits
// is the same table.
func MinorDigits(code string) int {
	num, digits := iso4217.ByName(strings.ToUpper(strings.TrimSpace(code)))
	if num == 0 {
		return 2
	}
	return digits
}

// FormatMoney writes an amount in minor units of currency code as major units followed by the
// code: 123456789 NOK is "1 234 567.89 NOK" (narrow no-break spaces between groups of three, a
// '.' before the minor digits, U+2212 before a negative amount). Without a code the number
// stands alone, with two decimals.
func FormatMoney(minor int64, code string) string {
	magnitude := uint64(minor)
	if minor < 0 {
		magnitude = -magnitude // two's complement: right for math.MinInt64 too
	}
	return formatMinor(minor < 0, strconv.FormatUint(magnitude, 10), code)
}

// FormatMoneyFloat is FormatMoney for an average (AOV, CLV, revenue per recipient), which may
// hold a fraction of a minor unit: it is rounded to the nearest minor unit. NaN and infinities
// are MissingFigure.
func FormatMoneyFloat(minor float64, code string) string {
	if math.IsNaN(minor) || math.IsInf(minor, 0) {
		return MissingFigure
	}
	rounded := math.Round(minor)
	return formatMinor(rounded < 0, strconv.FormatFloat(math.Abs(rounded), 'f', 0, 64), code)
}

// formatMinor writes the decimal digits of an amount's magnitude in minor units of code.
func formatMinor(negative bool, digits, code string) string {
	scale := MinorDigits(code)
	if len(digits) <= scale {
		digits = strings.Repeat("0", scale-len(digits)+1) + digits
	}
	whole, fraction := digits[:len(digits)-scale], digits[len(digits)-scale:]
	out := groupThousands(whole)
	if scale > 0 {
		out += "." + fraction
	}
	if negative && strings.Trim(digits, "0") != "" {
		out = minusSign + out
	}
	if code = strings.TrimSpace(code); code != "" {
		out += " " + code
	}
	return out
}

// FormatPercent writes a fraction as a percentage with one decimal: 0.1234 is "12.3 %", -0.05 is
// "−5.0 %". NaN and infinities are MissingFigure.
func FormatPercent(fraction float64) string {
	if math.IsNaN(fraction) || math.IsInf(fraction, 0) {
		return MissingFigure
	}
	s := strconv.FormatFloat(math.Abs(fraction*100), 'f', 1, 64)
	whole, decimals, _ := strings.Cut(s, ".")
	out := groupThousands(whole) + "." + decimals + " %"
	if fraction < 0 && strings.Trim(whole+decimals, "0") != "" {
		out = minusSign + out
	}
	return out
}

// FormatDateTime writes t in zone (UTC when nil) as "2026-12-01 09:00 CET"; the zero time is
// MissingFigure.
func FormatDateTime(t time.Time, zone *time.Location) string {
	return formatTime(t, zone, DateTimeLayout)
}

// FormatDate writes the date of t in zone (UTC when nil) as "2026-12-01"; the zero time is
// MissingFigure.
func FormatDate(t time.Time, zone *time.Location) string {
	return formatTime(t, zone, DateLayout)
}

func formatTime(t time.Time, zone *time.Location, layout string) string {
	if t.IsZero() {
		return MissingFigure
	}
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format(layout)
}

// groupThousands puts groupSeparator between groups of three digits of a whole number.
func groupThousands(digits string) string {
	var b strings.Builder
	for i, r := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteString(groupSeparator)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// formatFuncs are the formatters as console template functions, times in zone. Each takes what
// the pages hold (a value or a pointer; nil shows as MissingFigure) and fails the render on a
// type it does not know, so that a wrong field shows in tests rather than as a blank.
//
//	{{money .Amount .Currency}}  minor units (int64, float64 or pointers), code (string or *string)
//	{{percent .Rate}}            a fraction (float64 or *float64)
//	{{discount .Discount}}       a discount as stored, in percent (12.5), in the percent format
//	{{datetime .At}} {{date .At}} time.Time or *time.Time, in the shop's zone
func formatFuncs(zone *time.Location) template.FuncMap {
	return template.FuncMap{
		"money": func(minor, code any) (string, error) {
			c, err := currencyCode(code)
			if err != nil {
				return "", err
			}
			switch v := minor.(type) {
			case nil:
				return MissingFigure, nil
			case int64:
				return FormatMoney(v, c), nil
			case int:
				return FormatMoney(int64(v), c), nil
			case *int64:
				if v == nil {
					return MissingFigure, nil
				}
				return FormatMoney(*v, c), nil
			case float64:
				return FormatMoneyFloat(v, c), nil
			case *float64:
				if v == nil {
					return MissingFigure, nil
				}
				return FormatMoneyFloat(*v, c), nil
			}
			return "", fmt.Errorf("money: amount of type %T", minor)
		},
		"percent": func(fraction any) (string, error) {
			v, ok, err := optionalFloat("percent", fraction)
			if err != nil || !ok {
				return MissingFigure, err
			}
			return FormatPercent(v), nil
		},
		"discount": func(percent any) (string, error) {
			v, ok, err := optionalFloat("discount", percent)
			if err != nil || !ok {
				return MissingFigure, err
			}
			return FormatPercent(v / 100), nil
		},
		"datetime": func(t any) (string, error) {
			v, err := optionalTime("datetime", t)
			return FormatDateTime(v, zone), err
		},
		"date": func(t any) (string, error) {
			v, err := optionalTime("date", t)
			return FormatDate(v, zone), err
		},
	}
}

// currencyCode is a template's currency argument: a code, a *string (nil: none) or nil.
func currencyCode(code any) (string, error) {
	switch c := code.(type) {
	case nil:
		return "", nil
	case string:
		return c, nil
	case *string:
		if c == nil {
			return "", nil
		}
		return *c, nil
	}
	return "", fmt.Errorf("money: currency of type %T", code)
}

// optionalFloat is a template's float64 or *float64 argument; ok is false for nil.
func optionalFloat(fn string, v any) (value float64, ok bool, err error) {
	switch f := v.(type) {
	case nil:
		return 0, false, nil
	case float64:
		return f, true, nil
	case *float64:
		if f == nil {
			return 0, false, nil
		}
		return *f, true, nil
	}
	return 0, false, fmt.Errorf("%s: value of type %T", fn, v)
}

// optionalTime is a template's time.Time or *time.Time argument; nil is the zero time.
func optionalTime(fn string, v any) (time.Time, error) {
	switch t := v.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		return t, nil
	case *time.Time:
		if t == nil {
			return time.Time{}, nil
		}
		return *t, nil
	}
	return time.Time{}, fmt.Errorf("%s: value of type %T", fn, v)
}
