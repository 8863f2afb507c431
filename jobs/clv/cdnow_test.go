package clv

import (
	"encoding/csv"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// cdnowDir is the published CDNOW data (see its README.md), beside this repository.
const cdnowDir = "../../../shared/data/cdnow"

// cdnowRow is one customer of the 2,357-customer, 39-week CDNOW calibration summary (weeks).
type cdnowRow struct {
	Customer
	MeanValue float64 // zbar: mean value of the repeat purchases; 0 when x = 0
}

// readCDNOW reads a CDNOW summary CSV whose columns 2–4 are x, t_x, T and, when present,
// column 5 is zbar. It skips the test when the shared data folder is absent.
func readCDNOW(t *testing.T, name string) []cdnowRow {
	t.Helper()
	f, err := os.Open(filepath.Join(cdnowDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("CDNOW data folder %s is absent (it lives beside the repository in shared/data/cdnow)", cdnowDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	var rows []cdnowRow
	for _, rec := range records[1:] {
		num := func(i int) float64 {
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil {
				t.Fatalf("%s: row %v column %d: %v", name, rec, i, err)
			}
			return v
		}
		row := cdnowRow{Customer: Customer{Frequency: int(num(1)), Recency: num(2), T: num(3)}}
		if len(rec) > 4 {
			row.MeanValue = num(4)
		}
		rows = append(rows, row)
	}
	return rows
}

// groupCustomers counts identical summaries, as the metrics job's SQL GROUP BY does.
func groupCustomers(customers []Customer) []Group {
	index := map[Customer]int{}
	var groups []Group
	for _, c := range customers {
		if i, ok := index[c]; ok {
			groups[i].Count++
			continue
		}
		index[c] = len(groups)
		groups = append(groups, Group{Customer: c, Count: 1})
	}
	return groups
}

// sameTo3 reports whether got rounds to want at three significant digits.
func sameTo3(got, want float64) bool {
	return math.Abs(got-want) <= 0.5*math.Pow(10, math.Floor(math.Log10(math.Abs(want)))-2)
}

func TestBGNBDReproducesCDNOW(t *testing.T) {
	rows := readCDNOW(t, "cdnow_customers_summary.csv")
	customers := make([]Customer, len(rows))
	for i, r := range rows {
		customers[i] = r.Customer
	}
	groups := groupCustomers(customers)
	fit, err := FitBGNBD(groups)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fit: %+v", fit)
	if !fit.Converged || fit.SampleSize != 2357 {
		t.Errorf("fit not converged or wrong sample size: %+v", fit)
	}
	// Fader, Hardie & Lee (2005), Sec. 7, and lifetimes' tests.
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"r", fit.Params.R, 0.243},
		{"alpha", fit.Params.Alpha, 4.414},
		{"a", fit.Params.A, 0.793},
		{"b", fit.Params.B, 2.426},
		{"log-likelihood", fit.LogLikelihood, -9582.4},
	} {
		t.Run(c.name+" matches the paper to three significant digits", func(t *testing.T) {
			if !sameTo3(c.got, c.want) {
				t.Errorf("%s = %v, published %v", c.name, c.got, c.want)
			}
		})
	}
	t.Run("the log-likelihood at the rounded paper parameters is -9582.4268", func(t *testing.T) {
		ll, err := BGNBDParams{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}.LogLikelihood(groups)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(ll-(-9582.4268)) > 1e-3 {
			t.Errorf("log-likelihood %v, want -9582.4268", ll)
		}
	})

	customer := Customer{Frequency: 2, Recency: 30.43, T: 38.86}
	t.Run("customer x=2, t_x=30.43, T=38.86 expects 1.226 purchases in 39 weeks", func(t *testing.T) {
		got, err := fit.Params.ExpectedPurchases(customer, 39)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-1.226) > 0.001 {
			t.Errorf("E[Y(39)] = %v, want 1.226", got)
		}
	})
	t.Run("customer x=2, t_x=30.43, T=38.86 is alive with probability 0.7266", func(t *testing.T) {
		got, err := fit.Params.PAlive(customer)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-0.7266) > 0.0001 {
			t.Errorf("P(alive) = %v, want 0.7266", got)
		}
	})
	t.Run("a new customer's expected purchases E[X(t)] match lifetimes' test", func(t *testing.T) {
		// lifetimes asserts 1.8576 at t = 78 to decimal=3; the recomputed value is 1.8580.
		for _, c := range []struct{ t, want float64 }{
			{0.1429, 0.0078}, {1, 0.0532}, {3, 0.1506}, {31.8571, 1.0405}, {32, 1.0437}, {78, 1.8580},
		} {
			got, err := fit.Params.ExpectedPurchases(Customer{}, c.t)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-c.want) > 1e-4 {
				t.Errorf("E[X(%v)] = %v, want %v", c.t, got, c.want)
			}
		}
	})
}

func TestGammaGammaReproducesCDNOW(t *testing.T) {
	rows := readCDNOW(t, "cdnow_customers_summary_with_transactions.csv")
	var spend []SpendGroup
	for _, r := range rows {
		if r.Frequency > 0 {
			spend = append(spend, SpendGroup{Frequency: r.Frequency, MeanValue: r.MeanValue, Count: 1})
		}
	}
	fit, err := FitGammaGamma(spend)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fit: %+v", fit)
	if !fit.Converged || fit.SampleSize != 946 {
		t.Errorf("fit not converged or wrong sample size: %+v", fit)
	}
	// lifetimes' test and R BTYD's spend.LL documentation: 6.25, 3.74, 15.44.
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"p", fit.Params.P, 6.25},
		{"q", fit.Params.Q, 3.74},
		{"gamma", fit.Params.Gamma, 15.44},
		{"log-likelihood", fit.LogLikelihood, -4055.92},
	} {
		t.Run(c.name+" matches the published value to three significant digits", func(t *testing.T) {
			if !sameTo3(c.got, c.want) {
				t.Errorf("%s = %v, published %v", c.name, c.got, c.want)
			}
		})
	}
	t.Run("expected spend of customers 1 to 10 matches Hardie's spreadsheet", func(t *testing.T) {
		// lifetimes' test values (atol 0.1), at the rounded parameters.
		want := []float64{24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17}
		rounded := GammaGammaParams{P: 6.25, Q: 3.74, Gamma: 15.44}
		for i, w := range want {
			got, err := rounded.ExpectedSpend(rows[i].Frequency, rows[i].MeanValue)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-w) > 0.1 {
				t.Errorf("customer %d: E[M] = %v, want %v", i+1, got, w)
			}
		}
	})
	t.Run("CLV of the first customers matches lifetimes' Quickstart", func(t *testing.T) {
		// The Quickstart calls customer_lifetime_value(time=12, discount_rate=0.01) with its
		// default freq "D" on this weekly data, so its figures are 12 "months" of 30 weeks each
		// (see the data README): 140.10, 18.94, 38.18 with the fitted parameters of both models.
		bg, err := FitBGNBD(groupCustomers(customersOf(rows)))
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range []float64{140.10, 18.94, 38.18} {
			spend, err := fit.Params.ExpectedSpend(rows[i].Frequency, rows[i].MeanValue)
			if err != nil {
				t.Fatal(err)
			}
			got, err := CLV(bg.Params, rows[i].Customer, spend, 360, 0.01)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-w) > 0.01 {
				t.Errorf("customer %d: CLV %v, want %v", i+1, got, w)
			}
		}
	})
}

func customersOf(rows []cdnowRow) []Customer {
	out := make([]Customer, len(rows))
	for i, r := range rows {
		out[i] = r.Customer
	}
	return out
}
