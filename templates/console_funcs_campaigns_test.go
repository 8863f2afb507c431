package templates

import "testing"

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
