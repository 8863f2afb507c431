package clv

import (
	"errors"
	"math"
	"testing"
)

var cdnowParams = BGNBDParams{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func TestFitBGNBDRejectsInvalidInput(t *testing.T) {
	valid := Group{Customer: Customer{Frequency: 2, Recency: 10, T: 20}, Count: 1}
	for _, c := range []struct {
		name  string
		group Group
	}{
		{"a negative frequency", Group{Customer{Frequency: -1, T: 5}, 1}},
		{"a negative recency", Group{Customer{Frequency: 1, Recency: -1, T: 5}, 1}},
		{"a negative age", Group{Customer{T: -1}, 1}},
		{"a recency beyond the age", Group{Customer{Frequency: 1, Recency: 6, T: 5}, 1}},
		{"a recency without repeat purchases", Group{Customer{Recency: 2, T: 5}, 1}},
		{"a NaN age", Group{Customer{T: math.NaN()}, 1}},
		{"an infinite recency", Group{Customer{Frequency: 1, Recency: math.Inf(1), T: math.Inf(1)}, 1}},
		{"a zero count", Group{Customer{T: 5}, 0}},
	} {
		t.Run("a group with "+c.name+" is an input error", func(t *testing.T) {
			_, err := FitBGNBD([]Group{valid, c.group})
			if !errors.Is(err, ErrInvalidInput) {
				t.Errorf("err = %v, want ErrInvalidInput", err)
			}
		})
	}
	t.Run("no groups at all is an input error", func(t *testing.T) {
		if _, err := FitBGNBD(nil); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("err = %v, want ErrInvalidInput", err)
		}
	})
}

func TestFitBGNBDWithoutRepeatPurchasesIsNotIdentified(t *testing.T) {
	groups := []Group{{Customer{T: 10}, 5}, {Customer{T: 20}, 3}}
	if _, err := FitBGNBD(groups); !errors.Is(err, ErrNotIdentified) {
		t.Errorf("err = %v, want ErrNotIdentified", err)
	}
}

func TestDegenerateFitsStayFinite(t *testing.T) {
	// One customer, or two, cannot pin four parameters down; the fit must still return numbers
	// (or an error) and predictions from them must be numbers or errors, never NaN.
	for _, c := range []struct {
		name   string
		groups []Group
	}{
		{"a single group of one customer", []Group{{Customer{Frequency: 2, Recency: 30, T: 38}, 1}}},
		{"a single group of many customers", []Group{{Customer{Frequency: 3, Recency: 20, T: 50}, 1000}}},
		{"a single repeat purchase on the first day", []Group{{Customer{Frequency: 1, T: 38}, 1}}},
		{"one repeater and one non-repeater", []Group{{Customer{Frequency: 3, Recency: 5, T: 5}, 1}, {Customer{T: 5}, 1}}},
	} {
		t.Run(c.name+" gives finite numbers", func(t *testing.T) {
			fit, err := FitBGNBD(c.groups)
			if err != nil {
				return
			}
			p := fit.Params
			for _, v := range []float64{p.R, p.Alpha, p.A, p.B, fit.LogLikelihood, fit.GradientNorm} {
				if !isFinite(v) {
					t.Fatalf("non-finite value in %+v", fit)
				}
			}
			customer := c.groups[0].Customer
			if v, err := p.PAlive(customer); err == nil && !isFinite(v) {
				t.Errorf("PAlive = %v", v)
			}
			if v, err := p.ExpectedPurchases(customer, 365); err == nil && !isFinite(v) {
				t.Errorf("ExpectedPurchases = %v", v)
			}
			if v, err := CLV(p, customer, 10, 365, 0.01); err == nil && !isFinite(v) {
				t.Errorf("CLV = %v", v)
			}
		})
	}
}

func TestPredictionsRejectInvalidInput(t *testing.T) {
	good := Customer{Frequency: 2, Recency: 10, T: 20}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"PAlive with a zero alpha", func() error { _, err := BGNBDParams{R: 1, A: 1, B: 1}.PAlive(good); return err }},
		{"PAlive with a NaN b", func() error {
			_, err := BGNBDParams{R: 1, Alpha: 1, A: 1, B: math.NaN()}.PAlive(good)
			return err
		}},
		{"PAlive with recency beyond age", func() error {
			_, err := cdnowParams.PAlive(Customer{Frequency: 1, Recency: 30, T: 20})
			return err
		}},
		{"ExpectedPurchases with a degenerate b of 1e10", func() error {
			_, err := BGNBDParams{R: 1, Alpha: 1, A: 1, B: 1e10}.ExpectedPurchases(good, 365)
			return err
		}},
		{"ExpectedPurchases over a negative horizon", func() error { _, err := cdnowParams.ExpectedPurchases(good, -1); return err }},
		{"ExpectedPurchases over a NaN horizon", func() error {
			_, err := cdnowParams.ExpectedPurchases(good, math.NaN())
			return err
		}},
		{"CLV with a negative spend", func() error { _, err := CLV(cdnowParams, good, -5, 365, 0.01); return err }},
		{"CLV with a discount of -100 %", func() error { _, err := CLV(cdnowParams, good, 5, 365, -1); return err }},
		{"CLV with a NaN discount", func() error { _, err := CLV(cdnowParams, good, 5, 365, math.NaN()); return err }},
		{"CLV over a negative horizon", func() error { _, err := CLV(cdnowParams, good, 5, -30, 0.01); return err }},
		{"ExpectedSpend with a negative frequency", func() error {
			_, err := GammaGammaParams{P: 6, Q: 4, Gamma: 15}.ExpectedSpend(-1, 10)
			return err
		}},
		{"ExpectedSpend with a negative mean value", func() error {
			_, err := GammaGammaParams{P: 6, Q: 4, Gamma: 15}.ExpectedSpend(2, -10)
			return err
		}},
		{"ExpectedSpend of a new customer when q ≤ 1 (no population mean)", func() error {
			_, err := GammaGammaParams{P: 6, Q: 0.5, Gamma: 15}.ExpectedSpend(0, 0)
			return err
		}},
		{"FitGammaGamma with a customer without repeat purchases", func() error {
			_, err := FitGammaGamma([]SpendGroup{{Frequency: 1, MeanValue: 10, Count: 1}, {Frequency: 0, MeanValue: 10, Count: 1}})
			return err
		}},
		{"FitGammaGamma with a zero mean value", func() error {
			_, err := FitGammaGamma([]SpendGroup{{Frequency: 1, MeanValue: 10, Count: 1}, {Frequency: 2, MeanValue: 0, Count: 1}})
			return err
		}},
		{"FitGammaGamma with no customers", func() error { _, err := FitGammaGamma(nil); return err }},
	} {
		t.Run(c.name+" is an input error", func(t *testing.T) {
			if err := c.call(); !errors.Is(err, ErrInvalidInput) {
				t.Errorf("err = %v, want ErrInvalidInput", err)
			}
		})
	}
}

func TestPAlive(t *testing.T) {
	for _, c := range []struct {
		name     string
		customer Customer
		want     float64
	}{
		// lifetimes' convention: drop-out only happens after a repeat purchase.
		{"a customer without repeat purchases is alive", Customer{T: 38}, 1},
		// 1 / (1 + a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)) worked out by hand.
		{"a customer who bought last at T is alive with 1/(1 + a/(b+x−1))", Customer{Frequency: 3, Recency: 20, T: 20},
			1 / (1 + 0.793/(2.426+2))},
		{"a customer silent for a long time is almost surely gone", Customer{Frequency: 50, Recency: 1, T: 1000}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := cdnowParams.PAlive(c.customer)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-c.want) > 1e-12 {
				t.Errorf("PAlive = %v, want %v", got, c.want)
			}
		})
	}
}

func TestExpectedPurchasesMatchesHighPrecision(t *testing.T) {
	// References computed with mpmath at 50 digits from FHL eq. 10 as printed (without the
	// transformation), so they check the Euler rewrite where the direct form overflows.
	for _, c := range []struct {
		name     string
		params   BGNBDParams
		customer Customer
		t, want  float64
		relTol   float64
	}{
		{"a heavy buyer of 300 purchases", cdnowParams, Customer{300, 700, 730}, 365, 0.17496539198, 1e-9},
		{"a daily buyer of 500 purchases", BGNBDParams{0.25, 20, 0.8, 2.5}, Customer{500, 720, 730}, 365, 89.2144091866, 1e-9},
		{"a lapsed daily customer", BGNBDParams{0.25, 20, 0.8, 2.5}, Customer{5, 100, 730}, 365, 0.00121053353831, 1e-9},
		{"a ten-year horizon with a > 1", BGNBDParams{0.25, 20, 3.5, 40}, Customer{50, 700, 730}, 3650, 27.1915488382, 1e-9},
		{"a horizon where z is within 1e-7 of 1", BGNBDParams{0.25, 0.5, 0.3, 0.4}, Customer{1, 0.01, 2}, 1e7, 10223.3465822, 1e-9},
		{"a new customer over ten years with a > r+1 (untransformed form)", BGNBDParams{0.25, 20, 3.5, 40}, Customer{T: 730}, 3650, 0.994824836326, 1e-9},
		{"one repeat purchase with a > r+x+1 (untransformed form)", BGNBDParams{0.25, 20, 3.5, 40}, Customer{1, 300, 730}, 365, 0.465346068607, 1e-9},
		{"a > r+x+1 with z within 1e-4 of 1", BGNBDParams{0.3, 20, 8, 3}, Customer{2, 100, 200}, 1e6, 0.189156525677, 1e-9},
		{"a = 0.9995, interpolated across a = 1", BGNBDParams{2, 200, 0.9995, 2.5}, Customer{3, 100, 300}, 365, 0.724155315092, 2e-6},
		{"a = 1.0000001, interpolated across a = 1", BGNBDParams{2, 200, 1.0000001, 2.5}, Customer{3, 100, 300}, 365, 0.723806772551, 2e-6},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.params.ExpectedPurchases(c.customer, c.t)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-c.want) > c.relTol*c.want {
				t.Errorf("E[Y(%v)] = %.12g, want %.12g", c.t, got, c.want)
			}
		})
	}
	t.Run("nothing is expected over a zero horizon", func(t *testing.T) {
		got, err := cdnowParams.ExpectedPurchases(Customer{Frequency: 2, Recency: 3, T: 5}, 0)
		if err != nil || got != 0 {
			t.Errorf("E[Y(0)] = %v, %v; want 0", got, err)
		}
	})
}

func TestCLV(t *testing.T) {
	daily := BGNBDParams{R: 0.25, Alpha: 20, A: 0.8, B: 2.5}
	customer := Customer{Frequency: 4, Recency: 300, T: 400}
	expected := func(days float64) float64 {
		t.Helper()
		v, err := daily.ExpectedPurchases(customer, days)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name              string
		horizon, discount float64
		want              float64
	}{
		{"one month is its purchases times spend, discounted once", 30, 0.01, expected(30) * 25 / 1.01},
		{"without discount a year is E[Y(365)] times spend", 365, 0, expected(365) * 25},
		{"two months discount each month's purchases by its own month", 60, 0.02,
			expected(30)*25/1.02 + (expected(60)-expected(30))*25/(1.02*1.02)},
		{"a part month is counted as a month of its own", 45, 0.02,
			expected(30)*25/1.02 + (expected(45)-expected(30))*25/(1.02*1.02)},
		{"a zero horizon is worth nothing", 0, 0.01, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := CLV(daily, customer, 25, c.horizon, c.discount)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-c.want) > 1e-9*math.Max(1, c.want) {
				t.Errorf("CLV = %.12g, want %.12g", got, c.want)
			}
		})
	}
}

func TestExpectedSpend(t *testing.T) {
	p := GammaGammaParams{P: 6.25, Q: 3.74, Gamma: 15.44}
	for _, c := range []struct {
		name      string
		frequency int
		mean      float64
		want      float64
	}{
		{"a new customer is expected to spend the population mean pγ/(q−1)", 0, 99, 6.25 * 15.44 / 2.74},
		// (p(γ + x m)) / (p x + q − 1) by hand: 6.25 × (15.44 + 2 × 22.35) / (12.5 + 2.74).
		{"customer 1 of CDNOW leans towards their own mean", 2, 22.35, 6.25 * (15.44 + 44.70) / 15.24},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := p.ExpectedSpend(c.frequency, c.mean)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-c.want) > 1e-12*c.want {
				t.Errorf("ExpectedSpend = %v, want %v", got, c.want)
			}
		})
	}
}

func TestGradientsMatchFiniteDifferences(t *testing.T) {
	// The fits rely on the analytic gradients; a central difference at an arbitrary point
	// checks every term of them.
	groups := []Group{
		{Customer{T: 30}, 40}, {Customer{T: 12.5}, 7}, {Customer{Frequency: 1, Recency: 3, T: 30}, 9},
		{Customer{Frequency: 4, Recency: 20, T: 25}, 5}, {Customer{Frequency: 12, Recency: 29, T: 30}, 2},
	}
	d, err := newBGNBDData(groups)
	if err != nil {
		t.Fatal(err)
	}
	bgTheta := []float64{math.Log(0.4), math.Log(6), math.Log(0.7), math.Log(2.2)}
	bg := func(grad, theta []float64) float64 {
		e := expAll(theta)
		return d.logLikelihood(BGNBDParams{R: e[0], Alpha: e[1], A: e[2], B: e[3]}, grad)
	}
	spend := []SpendGroup{{1, 12, 3}, {2, 30, 2}, {5, 18.5, 1}, {9, 44, 4}}
	ggTheta := []float64{math.Log(3), math.Log(2.5), math.Log(12)}
	gg := func(grad, theta []float64) float64 {
		e := expAll(theta)
		return gammaGammaLogLikelihood(spend, GammaGammaParams{P: e[0], Q: e[1], Gamma: e[2]}, grad)
	}
	for _, c := range []struct {
		name  string
		f     objective
		theta []float64
	}{
		{"BG/NBD", bg, bgTheta},
		{"Gamma-Gamma", gg, ggTheta},
	} {
		t.Run("the "+c.name+" gradient matches central differences", func(t *testing.T) {
			grad := make([]float64, len(c.theta))
			c.f(grad, c.theta)
			const h = 1e-6
			for i := range c.theta {
				plus, minus := append([]float64(nil), c.theta...), append([]float64(nil), c.theta...)
				plus[i] += h
				minus[i] -= h
				numeric := (c.f(nil, plus) - c.f(nil, minus)) / (2 * h)
				if math.Abs(numeric-grad[i]) > 1e-5*math.Max(1, math.Abs(numeric)) {
					t.Errorf("d/dθ%d: analytic %v, numeric %v", i, grad[i], numeric)
				}
			}
		})
	}
}
