package templates

import (
	"testing"
	"time"
)

func TestCampaignFuncs(t *testing.T) {
	t.Parallel()
	nok := "NOK"
	cases := []struct{ name, got, want string }{
		{"money groups thousands and keeps two decimals", campMoney(123456789, &nok), "1 234 567.89 NOK"},
		{"money without a currency", campMoney(5000, (*string)(nil)), "50.00"},
		{"a negative average", campMoneyF(-2550.4, "EUR"), "−25.50 EUR"},
		{"a ratio as a percentage", campPct(0.1234), "12.3 %"},
		{"no ratio", campPct((*float64)(nil)), "–"},
		{"a time in a zone", campTime(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), time.FixedZone("CET", 3600)), "2026-12-01 09:00 CET"},
		{"no time", campTime((*time.Time)(nil), time.UTC), "–"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestCampLiftBar(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	t.Run("an interval above zero lies right of the zero line", func(t *testing.T) {
		b := campLiftBar(50, f(20), f(80))
		if !b.HasInterval || !b.Above || b.Below || !(b.Zero < b.Low && b.Low < b.Point && b.Point < b.High && b.High <= b.Width) {
			t.Errorf("%v %+v", b, b)
		}
		if b.Span != b.High-b.Low {
			t.Errorf("span %v", b.Span)
		}
	})
	t.Run("an interval across zero is neither above nor below", func(t *testing.T) {
		b := campLiftBar(5, f(-10), f(20))
		if b.Above || b.Below || !(b.Low < b.Zero && b.Zero < b.High) {
			t.Errorf("%v", b)
		}
	})
	t.Run("without an interval only the point is drawn", func(t *testing.T) {
		b := campLiftBar(-30, nil, nil)
		if b.HasInterval || !(b.Point < b.Zero) || b.Point < 0 {
			t.Errorf("%v", b)
		}
	})
	t.Run("a zero lift without an interval stays inside the picture", func(t *testing.T) {
		b := campLiftBar(0, nil, nil)
		if b.Point != b.Zero || b.Zero <= 0 || b.Zero >= b.Width {
			t.Errorf("%v", b)
		}
	})
}
