package clv

import (
	"fmt"
	"math"
)

// DaysPerMonth is the length of a discounting month in model time units (days), as lifetimes'
// customer_lifetime_value with freq "D".
const DaysPerMonth = 30

// CLV returns the predicted lifetime value of customer c over the next horizonDays: the
// expected purchases in each month times the expected spend per purchase, discounted at
// monthlyDiscount per month (0.01 = 1 % a month):
//
//	CLV = Σ_{m=1..M} (E[Y(e_m)] − E[Y(30(m−1))]) · spend / (1+d)^m,
//	M = ⌈H/30⌉, e_m = min(30m, H).
//
// The model's time unit must be the day. When H is a whole number of months this is exactly
// lifetimes' customer_lifetime_value(time=H/30, discount_rate=d, freq="D"); otherwise the last,
// shorter month (5 days of the default 365) is counted and discounted as month M, so with
// d = 0 the sum is E[Y(H)] × spend. spend is usually GammaGammaParams.ExpectedSpend.
func CLV(p BGNBDParams, c Customer, spend, horizonDays, monthlyDiscount float64) (float64, error) {
	if err := p.validateForPrediction(); err != nil {
		return 0, err
	}
	if err := c.Validate(); err != nil {
		return 0, err
	}
	switch {
	case !finiteNonNegative(spend):
		return 0, fmt.Errorf("%w: spend %v is not a finite non-negative number", ErrInvalidInput, spend)
	case !finiteNonNegative(horizonDays):
		return 0, fmt.Errorf("%w: horizon %v days is not a finite non-negative number", ErrInvalidInput, horizonDays)
	case !(monthlyDiscount > -1) || math.IsInf(monthlyDiscount, 1):
		return 0, fmt.Errorf("%w: monthly discount rate %v is not above -1 and finite", ErrInvalidInput, monthlyDiscount)
	}
	var clv, before float64
	months := int(math.Ceil(horizonDays / DaysPerMonth))
	for m := 1; m <= months; m++ {
		end := math.Min(float64(m)*DaysPerMonth, horizonDays)
		upTo := p.expectedPurchases(c, end)
		clv += (upTo - before) * spend / math.Pow(1+monthlyDiscount, float64(m))
		before = upTo
	}
	if math.IsNaN(clv) || math.IsInf(clv, 0) {
		return 0, fmt.Errorf("CLV for %+v with %+v: not finite", c, p)
	}
	return clv, nil
}
