package clv

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// SpendGroup is Count customers with the same frequency x ≥ 1 and the same mean value of their
// repeat purchases (the first purchase excluded), in major currency units.
type SpendGroup struct {
	Frequency int
	MeanValue float64
	Count     int
}

// Validate reports why g cannot enter a Gamma-Gamma fit: the model is defined only for
// customers with at least one repeat purchase and a positive mean value, so callers leave out
// members whose refunds brought their mean to zero or below.
func (g SpendGroup) Validate() error {
	switch {
	case g.Frequency < 1:
		return fmt.Errorf("%w: frequency %d is below 1", ErrInvalidInput, g.Frequency)
	case !finitePositive(g.MeanValue):
		return fmt.Errorf("%w: mean value %v is not a finite positive number", ErrInvalidInput, g.MeanValue)
	case g.Count < 1:
		return fmt.Errorf("%w: count %d is below 1", ErrInvalidInput, g.Count)
	}
	return nil
}

// GammaGammaParams are the Gamma-Gamma parameters: a transaction's value ~ Gamma(P, ν) with
// ν ~ Gamma(Q, Gamma) across customers (Fader & Hardie 2013).
type GammaGammaParams struct {
	P, Q, Gamma float64
}

// Validate reports a parameter that is not a finite positive number.
func (p GammaGammaParams) Validate() error {
	for _, v := range []struct {
		name  string
		value float64
	}{{"p", p.P}, {"q", p.Q}, {"gamma", p.Gamma}} {
		if !finitePositive(v.value) {
			return fmt.Errorf("%w: Gamma-Gamma %s = %v is not a finite positive number", ErrInvalidInput, v.name, v.value)
		}
	}
	return nil
}

// GammaGammaFit is the result of a maximum-likelihood fit.
type GammaGammaFit struct {
	Params        GammaGammaParams
	LogLikelihood float64 // total over all customers, at Params
	SampleSize    int     // customers (sum of the group counts)
	Converged     bool    // the gradient vanished, as for BGNBDFit (no parameter bound here)
	GradientNorm  float64
	Status        string
}

// gammaGammaLogLikelihood returns the total log-likelihood of groups at p and, when grad is not
// nil, its gradient with respect to (log p, log q, log γ). Per customer with x purchases of mean
// m (Fader & Hardie 2013, as lifetimes):
//
//	log Γ(px+q) − log Γ(px) − log Γ(q) + q log γ + (px−1) log m + px log x − (px+q) log(γ + x m)
func gammaGammaLogLikelihood(groups []SpendGroup, prm GammaGammaParams, grad []float64) float64 {
	p, q, g := prm.P, prm.Q, prm.Gamma
	lgQ, logG := lgamma(q), math.Log(g)
	var psiQ float64
	if grad != nil {
		psiQ = mathext.Digamma(q)
	}
	var ll, gp, gq, gg float64
	for _, s := range groups {
		n, x, m := float64(s.Count), float64(s.Frequency), s.MeanValue
		px := p * x
		logM, logX, logGXM := math.Log(m), math.Log(x), math.Log(g+x*m)
		ll += n * (lgamma(px+q) - lgamma(px) - lgQ + q*logG + (px-1)*logM + px*logX - (px+q)*logGXM)
		if grad != nil {
			psiPXQ := mathext.Digamma(px + q)
			gp += n * x * (psiPXQ - mathext.Digamma(px) + logM + logX - logGXM)
			gq += n * (psiPXQ - psiQ + logG - logGXM)
			gg += n * (q/g - (px+q)/(g+x*m))
		}
	}
	if grad != nil {
		grad[0], grad[1], grad[2] = gp*p, gq*q, gg*g
	}
	return ll
}

// LogLikelihood returns the total Gamma-Gamma log-likelihood of groups at p.
func (p GammaGammaParams) LogLikelihood(groups []SpendGroup) (float64, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	if _, err := validateSpend(groups); err != nil {
		return 0, err
	}
	return gammaGammaLogLikelihood(groups, p, nil), nil
}

func validateSpend(groups []SpendGroup) (float64, error) {
	if len(groups) == 0 {
		return 0, fmt.Errorf("%w: no customers with repeat purchases", ErrInvalidInput)
	}
	var total float64
	for i, g := range groups {
		if err := g.Validate(); err != nil {
			return 0, fmt.Errorf("group %d: %w", i, err)
		}
		total += float64(g.Count)
	}
	return total, nil
}

// FitGammaGamma fits the Gamma-Gamma spend model by maximum likelihood on customers with at
// least one repeat purchase, over the logarithms of (p, q, γ) from (1, 1, mean value).
func FitGammaGamma(groups []SpendGroup) (GammaGammaFit, error) { return FitGammaGammaFrom(groups, nil) }

// FitGammaGammaFrom is FitGammaGamma started from start when it is not nil and valid, as
// FitBGNBDFrom: a warm start that does not converge is followed by a fit from (1, 1, mean value).
func FitGammaGammaFrom(groups []SpendGroup, start *GammaGammaParams) (GammaGammaFit, error) {
	total, err := validateSpend(groups)
	if err != nil {
		return GammaGammaFit{}, fmt.Errorf("fit Gamma-Gamma: %w", err)
	}
	var meanValue float64
	for _, g := range groups {
		meanValue += float64(g.Count) * g.MeanValue
	}
	meanValue /= total
	f := func(grad, theta []float64) float64 {
		e := expAll(theta)
		ll := gammaGammaLogLikelihood(groups, GammaGammaParams{P: e[0], Q: e[1], Gamma: e[2]}, grad)
		for i := range grad {
			grad[i] = -grad[i] / total
		}
		return -ll / total
	}
	fit := func(start []float64) (GammaGammaFit, error) {
		theta, norm, status, err := maximise(f, start)
		if err != nil {
			return GammaGammaFit{}, fmt.Errorf("fit Gamma-Gamma: %w", err)
		}
		e := expAll(theta)
		p := GammaGammaParams{P: e[0], Q: e[1], Gamma: e[2]}
		return GammaGammaFit{
			Params:        p,
			LogLikelihood: gammaGammaLogLikelihood(groups, p, nil),
			SampleSize:    int(total),
			Converged:     norm <= convergedGradient,
			GradientNorm:  norm,
			Status:        status.String(),
		}, nil
	}
	if start != nil && start.Validate() == nil {
		if warm, err := fit([]float64{math.Log(start.P), math.Log(start.Q), math.Log(start.Gamma)}); err == nil && warm.Converged {
			return warm, nil
		}
	}
	return fit([]float64{0, 0, math.Log(meanValue)})
}

// ExpectedSpend returns E[M | x, m], the expected value of a future transaction of a customer
// with frequency x and mean repeat-purchase value m (Fader & Hardie 2013, eq. 5):
//
//	(p(γ + x m)) / (p x + q − 1)
//
// a weighted mean of the population mean pγ/(q−1) and the customer's own m. With x = 0 (m is
// then ignored) it is the population mean, which exists only for q > 1.
func (p GammaGammaParams) ExpectedSpend(frequency int, meanValue float64) (float64, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	if frequency < 0 {
		return 0, fmt.Errorf("%w: frequency %d is negative", ErrInvalidInput, frequency)
	}
	if frequency == 0 {
		meanValue = 0
	} else if !finiteNonNegative(meanValue) {
		return 0, fmt.Errorf("%w: mean value %v is not a finite non-negative number", ErrInvalidInput, meanValue)
	}
	x := float64(frequency)
	den := p.P*x + p.Q - 1
	if den <= 0 {
		return 0, fmt.Errorf("%w: expected spend undefined for frequency %d with q = %v (px+q ≤ 1)", ErrInvalidInput, frequency, p.Q)
	}
	return p.P * (p.Gamma + x*meanValue) / den, nil
}
