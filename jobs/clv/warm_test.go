package clv

import (
	"math"
	"testing"
)

// A fit from a warm start finds the maximum a fit from the default start finds, within the fit's
// tolerance, wherever it starts: at the maximum, near it (a night's change), far from it, or at
// parameters that are not valid (ignored). The published CDNOW figures are the reference.
func TestWarmStartedFitsFindTheSameMaximum(t *testing.T) {
	rows := readCDNOW(t, "cdnow_customers_summary.csv")
	customers := make([]Customer, len(rows))
	for i, r := range rows {
		customers[i] = r.Customer
	}
	groups := groupCustomers(customers)
	cold, err := FitBGNBD(groups)
	if err != nil || !cold.Converged {
		t.Fatalf("cold fit: %+v, %v", cold, err)
	}
	scale := func(p BGNBDParams, k float64) *BGNBDParams {
		return &BGNBDParams{R: p.R * k, Alpha: p.Alpha / k, A: p.A * k, B: p.B / k}
	}
	for name, start := range map[string]*BGNBDParams{
		"nil":              nil,
		"at the maximum":   &cold.Params,
		"5% off":           scale(cold.Params, 1.05),
		"twice off":        scale(cold.Params, 2),
		"far off":          {R: 100, Alpha: 0.01, A: 50, B: 0.02},
		"invalid, ignored": {R: math.NaN(), Alpha: 1, A: 1, B: -1},
	} {
		t.Run("BG/NBD from "+name, func(t *testing.T) {
			warm, err := FitBGNBDFrom(groups, start)
			if err != nil {
				t.Fatal(err)
			}
			if !warm.Converged {
				t.Fatalf("not converged: %+v", warm)
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"r", warm.Params.R, cold.Params.R}, {"alpha", warm.Params.Alpha, cold.Params.Alpha},
				{"a", warm.Params.A, cold.Params.A}, {"b", warm.Params.B, cold.Params.B},
			} {
				if math.Abs(c.got-c.want) > 1e-4*c.want {
					t.Errorf("%s = %v, from the default start %v", c.name, c.got, c.want)
				}
			}
			if math.Abs(warm.LogLikelihood-cold.LogLikelihood) > 1e-6 {
				t.Errorf("log-likelihood %v, from the default start %v", warm.LogLikelihood, cold.LogLikelihood)
			}
			for _, c := range []struct {
				got, want float64
			}{{warm.Params.R, 0.243}, {warm.Params.Alpha, 4.414}, {warm.Params.A, 0.793}, {warm.Params.B, 2.426}} {
				if !sameTo3(c.got, c.want) {
					t.Errorf("%+v does not match the paper (%v)", warm.Params, c.want)
				}
			}
		})
	}

	spendRows := readCDNOW(t, "cdnow_customers_summary_with_transactions.csv")
	var spend []SpendGroup
	for _, r := range spendRows {
		if r.Frequency > 0 {
			spend = append(spend, SpendGroup{Frequency: r.Frequency, MeanValue: r.MeanValue, Count: 1})
		}
	}
	coldGG, err := FitGammaGamma(spend)
	if err != nil || !coldGG.Converged {
		t.Fatalf("cold Gamma-Gamma fit: %+v, %v", coldGG, err)
	}
	for name, start := range map[string]*GammaGammaParams{
		"nil":              nil,
		"at the maximum":   &coldGG.Params,
		"5% off":           {P: coldGG.Params.P * 1.05, Q: coldGG.Params.Q / 1.05, Gamma: coldGG.Params.Gamma * 1.05},
		"far off":          {P: 0.01, Q: 500, Gamma: 1e5},
		"invalid, ignored": {P: 0, Q: math.Inf(1), Gamma: 1},
	} {
		t.Run("Gamma-Gamma from "+name, func(t *testing.T) {
			warm, err := FitGammaGammaFrom(spend, start)
			if err != nil {
				t.Fatal(err)
			}
			if !warm.Converged {
				t.Fatalf("not converged: %+v", warm)
			}
			for _, c := range []struct {
				name             string
				got, want, paper float64
			}{
				{"p", warm.Params.P, coldGG.Params.P, 6.25}, {"q", warm.Params.Q, coldGG.Params.Q, 3.74},
				{"gamma", warm.Params.Gamma, coldGG.Params.Gamma, 15.44},
			} {
				if math.Abs(c.got-c.want) > 1e-4*c.want || !sameTo3(c.got, c.paper) {
					t.Errorf("%s = %v, from the default start %v, published %v", c.name, c.got, c.want, c.paper)
				}
			}
			if math.Abs(warm.LogLikelihood-coldGG.LogLikelihood) > 1e-6 {
				t.Errorf("log-likelihood %v, from the default start %v", warm.LogLikelihood, coldGG.LogLikelihood)
			}
		})
	}
}
