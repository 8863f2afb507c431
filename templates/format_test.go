package templates

import (
	"bytes"
	"html/template"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// formatCase is a formatter's output and what it should be.
type formatCase struct{ name, got, want string }

func checkFormats(t *testing.T, cases []formatCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestFormatMoney(t *testing.T) {
	t.Parallel()
	checkFormats(t, []formatCase{
		{"kroner have two minor digits", FormatMoney(12950, "NOK"), "129.50 NOK"},
		{"thousands are grouped by narrow no-break spaces", FormatMoney(123456789, "NOK"), "1\u202f234\u202f567.89 NOK"},
		{"a whole thousand", FormatMoney(100000, "NOK"), "1\u202f000.00 NOK"},
		{"zero", FormatMoney(0, "NOK"), "0.00 NOK"},
		{"less than one krone", FormatMoney(5, "NOK"), "0.05 NOK"},
		{"a negative amount has a minus sign", FormatMoney(-250050, "NOK"), "\u22122\u202f500.50 NOK"},
		{"yen have no minor unit", FormatMoney(1234567, "JPY"), "1\u202f234\u202f567 JPY"},
		{"a negative yen amount", FormatMoney(-5, "JPY"), "\u22125 JPY"},
		{"dinars have three minor digits", FormatMoney(1234567, "KWD"), "1\u202f234.567 KWD"},
		{"fils below one dinar", FormatMoney(7, "KWD"), "0.007 KWD"},
		{"a lower-case code is still known", FormatMoney(1234567, "jpy"), "1\u202f234\u202f567 jpy"},
		{"an unknown code has two digits", FormatMoney(123456, "XYZ"), "1\u202f234.56 XYZ"},
		{"without a code the number stands alone", FormatMoney(259000, ""), "2\u202f590.00"},
		{"the largest amount", FormatMoney(math.MaxInt64, "NOK"), "92\u202f233\u202f720\u202f368\u202f547\u202f758.07 NOK"},
		{"the smallest amount", FormatMoney(math.MinInt64, "NOK"), "\u221292\u202f233\u202f720\u202f368\u202f547\u202f758.08 NOK"},
	})
}

func TestFormatMoneyFloat(t *testing.T) {
	t.Parallel()
	checkFormats(t, []formatCase{
		{"an average is rounded to the minor unit", FormatMoneyFloat(2550.4, "NOK"), "25.50 NOK"},
		{"half a minor unit rounds away from zero", FormatMoneyFloat(2550.5, "NOK"), "25.51 NOK"},
		{"a negative average", FormatMoneyFloat(-2550.4, "EUR"), "\u221225.50 EUR"},
		{"less than half a minor unit below zero is zero, without a sign", FormatMoneyFloat(-0.4, "NOK"), "0.00 NOK"},
		{"an average in yen", FormatMoneyFloat(1234.6, "JPY"), "1\u202f235 JPY"},
		{"an average in dinars", FormatMoneyFloat(1234.4, "KWD"), "1.234 KWD"},
		{"a big average", FormatMoneyFloat(123456789012, "NOK"), "1\u202f234\u202f567\u202f890.12 NOK"},
		{"a whole number of minor units reads as FormatMoney's", FormatMoneyFloat(12950, "NOK"), FormatMoney(12950, "NOK")},
		{"not a number", FormatMoneyFloat(math.NaN(), "NOK"), MissingFigure},
		{"an infinity", FormatMoneyFloat(math.Inf(1), "NOK"), MissingFigure},
	})
}

func TestMinorDigits(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]int{"NOK": 2, "EUR": 2, "SEK": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3, "XYZ": 2, "": 2, "kroner": 2} {
		if got := MinorDigits(code); got != want {
			t.Errorf("MinorDigits(%q) = %d, want %d", code, got, want)
		}
	}
}

func TestFormatPercent(t *testing.T) {
	t.Parallel()
	checkFormats(t, []formatCase{
		{"a fraction with one decimal", FormatPercent(0.1234), "12.3 %"},
		{"rounding up", FormatPercent(0.4216), "42.2 %"},
		{"zero", FormatPercent(0), "0.0 %"},
		{"all", FormatPercent(1), "100.0 %"},
		{"a negative rate has a minus sign", FormatPercent(-0.05), "\u22125.0 %"},
		{"a negative rate that rounds to zero has none", FormatPercent(-0.0001), "0.0 %"},
		{"a big return on investment is grouped", FormatPercent(123.456), "12\u202f345.6 %"},
		{"not a number", FormatPercent(math.NaN()), MissingFigure},
	})
}

func TestFormatTimes(t *testing.T) {
	t.Parallel()
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	winter := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	summer := time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)
	lateEvening := time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC)
	checkFormats(t, []formatCase{
		{"a time is shown in the shop's zone, not UTC", FormatDateTime(winter, oslo), "2026-12-01 09:00 CET"},
		{"in summer time", FormatDateTime(summer, oslo), "2026-07-01 10:00 CEST"},
		{"a time given in another zone is still shown in the shop's", FormatDateTime(winter.In(time.FixedZone("EST", -5*3600)), oslo), "2026-12-01 09:00 CET"},
		{"without a zone, UTC", FormatDateTime(winter, nil), "2026-12-01 08:00 UTC"},
		{"a date is the shop's day", FormatDate(lateEvening, oslo), "2027-01-01"},
		{"the same instant's day in UTC", FormatDate(lateEvening, time.UTC), "2026-12-31"},
		{"no time", FormatDateTime(time.Time{}, oslo), MissingFigure},
		{"no date", FormatDate(time.Time{}, oslo), MissingFigure},
	})
}

// TestFormatFuncs runs the formatters as the console templates call them: values or pointers,
// nil as MissingFigure, times in the zone the FuncMap was made for.
func TestFormatFuncs(t *testing.T) {
	t.Parallel()
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	nok, amount, average, rate := "NOK", int64(259000), 2550.4, 0.1234
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	data := map[string]any{
		"Amount": amount, "AmountPtr": &amount, "NoAmount": (*int64)(nil), "Average": average, "AveragePtr": &average,
		"NoAverage": (*float64)(nil), "Code": nok, "CodePtr": &nok, "NoCode": (*string)(nil), "Rate": &rate,
		"NoRate": (*float64)(nil), "Discount": 12.5, "At": at, "AtPtr": &at, "NoTime": (*time.Time)(nil),
	}
	cases := []struct{ name, template, want string }{
		{"money from minor units", `{{money .Amount .Code}}`, "2\u202f590.00 NOK"},
		{"money from a pointer with a *string code", `{{money .AmountPtr .CodePtr}}`, "2\u202f590.00 NOK"},
		{"money from an average", `{{money .Average .Code}}`, "25.50 NOK"},
		{"money from a pointer to an average", `{{money .AveragePtr .Code}}`, "25.50 NOK"},
		{"money without an amount", `{{money .NoAmount .Code}}|{{money .NoAverage .Code}}`, MissingFigure + "|" + MissingFigure},
		{"money without a currency", `{{money .Amount .NoCode}}|{{money .Amount ""}}`, "2\u202f590.00|2\u202f590.00"},
		{"a rate", `{{percent .Rate}}`, "12.3 %"},
		{"no rate", `{{percent .NoRate}}`, MissingFigure},
		{"a discount in percent", `{{discount .Discount}}`, "12.5 %"},
		{"a time in the shop's zone", `{{datetime .At}}|{{datetime .AtPtr}}`, "2026-12-01 09:00 CET|2026-12-01 09:00 CET"},
		{"a date in the shop's zone", `{{date .At}}`, "2026-12-01"},
		{"no time", `{{datetime .NoTime}}|{{date .NoTime}}`, MissingFigure + "|" + MissingFigure},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmpl := template.Must(template.New("t").Funcs(formatFuncs(oslo)).Parse(tc.template))
			var b bytes.Buffer
			if err := tmpl.Execute(&b, data); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("a value of another type fails the render", func(t *testing.T) {
		t.Parallel()
		for _, src := range []string{`{{money "12" .Code}}`, `{{money .Amount 12}}`, `{{percent 12}}`, `{{datetime "2026-12-01"}}`} {
			tmpl := template.Must(template.New("t").Funcs(formatFuncs(oslo)).Parse(src))
			if err := tmpl.Execute(&bytes.Buffer{}, data); err == nil {
				t.Errorf("%s rendered without an error", src)
			}
		}
	})
}

// TestConsoleFuncsLeaveTheFormattersAlone: no area's helper takes a formatter's name, and the old
// per-area formatters are gone, so a page cannot format money or times its own way.
func TestConsoleFuncsLeaveTheFormattersAlone(t *testing.T) {
	t.Parallel()
	for name := range formatFuncs(time.UTC) {
		if _, ok := ConsoleFuncs[name]; ok {
			t.Errorf("ConsoleFuncs defines %q, a formatter's name", name)
		}
	}
	for name := range ConsoleFuncs {
		lower := strings.ToLower(name)
		for _, word := range []string{"money", "percent", "pct", "time", "date"} {
			if strings.Contains(lower, word) {
				t.Errorf("ConsoleFuncs has %q: money, percentages and times are format.go's", name)
			}
		}
	}
}

// TestConsoleTimesInTheShopsZone renders a console page in two zones from one Engine.
func TestConsoleTimesInTheShopsZone(t *testing.T) {
	t.Parallel()
	e, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	// The members page's layout reads User, CSRF, Title, Nav and Flash; the page Data's hits.
	hit := map[string]any{"ID": 1, "Card": "C1", "Status": "active", "JoinedAt": time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC)}
	page := map[string]any{"User": nil, "CSRF": "x", "Title": "Members", "Nav": "members", "Flash": "",
		"Data": map[string]any{"Query": "c1", "Hits": []any{hit}, "Limited": false}}
	// Requests in both zones at once: each zone's set is cloned once and rendered concurrently.
	var wg sync.WaitGroup
	for range 4 {
		for zone, want := range map[*time.Location]string{oslo: "2027-01-01", time.UTC: "2026-12-31"} {
			wg.Go(func() {
				var b bytes.Buffer
				if err := e.Console(&b, "members", zone, page); err != nil {
					t.Error(err)
					return
				}
				if !strings.Contains(b.String(), want) {
					t.Errorf("members in %s lack the joining date %s:\n%s", zone, want, b.String())
				}
			})
		}
	}
	wg.Wait()
}
