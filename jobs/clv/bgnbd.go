package clv

import (
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/mathext"
)

// Customer is one purchase history summarised as (x, t_x, T); see the package comment.
type Customer struct {
	Frequency int     // x: repeat purchase periods
	Recency   float64 // t_x: first to last purchase; 0 when Frequency is 0
	T         float64 // age: first purchase to the end of observation
}

// Validate reports why c cannot be a summary: negative or non-finite values, t_x > T, or a
// non-zero recency without repeat purchases (as lifetimes, which treats that as a bug upstream).
func (c Customer) Validate() error {
	switch {
	case c.Frequency < 0:
		return fmt.Errorf("%w: frequency %d is negative", ErrInvalidInput, c.Frequency)
	case !finiteNonNegative(c.Recency):
		return fmt.Errorf("%w: recency %v is not a finite non-negative number", ErrInvalidInput, c.Recency)
	case !finiteNonNegative(c.T):
		return fmt.Errorf("%w: T %v is not a finite non-negative number", ErrInvalidInput, c.T)
	case c.Recency > c.T:
		return fmt.Errorf("%w: recency %v exceeds T %v", ErrInvalidInput, c.Recency, c.T)
	case c.Frequency == 0 && c.Recency != 0:
		return fmt.Errorf("%w: recency %v with frequency 0", ErrInvalidInput, c.Recency)
	}
	return nil
}

// Group is Count customers with the same summary.
type Group struct {
	Customer
	Count int
}

// BGNBDParams are the BG/NBD parameters: purchase rates λ ~ Gamma(shape R, rate Alpha), in
// purchases per time unit, and the drop-out probability after each purchase p ~ Beta(A, B).
type BGNBDParams struct {
	R, Alpha, A, B float64
}

// Validate reports a parameter that is not a finite positive number.
func (p BGNBDParams) Validate() error {
	for _, v := range []struct {
		name  string
		value float64
	}{{"r", p.R}, {"alpha", p.Alpha}, {"a", p.A}, {"b", p.B}} {
		if !finitePositive(v.value) {
			return fmt.Errorf("%w: BG/NBD %s = %v is not a finite positive number", ErrInvalidInput, v.name, v.value)
		}
	}
	return nil
}

// BGNBDFit is the result of a maximum-likelihood fit.
type BGNBDFit struct {
	Params        BGNBDParams
	LogLikelihood float64 // total over all members, at Params
	SampleSize    int     // members (sum of the group counts)
	Groups        int     // distinct (x, t_x, T) groups
	// Converged is true when the gradient of the mean log-likelihood with respect to the
	// log-parameters vanished (infinity norm ≤ 1e-6; GradientNorm is that norm) at parameters
	// that predictions accept (r, a, b ≤ 1e6). Only a converged fit should be published.
	Converged    bool
	GradientNorm float64
	Status       string // gonum's last termination status, for the logs
}

// bgnbdData is the fit's input rearranged for fast evaluation: the terms that depend on x only
// are summed once per distinct x.
type bgnbdData struct {
	x, recency, age, count []float64 // per group
	xs, xCount             []float64 // per distinct x
	total                  float64   // members
}

func newBGNBDData(groups []Group) (*bgnbdData, error) {
	if len(groups) == 0 {
		return nil, fmt.Errorf("%w: no customers", ErrInvalidInput)
	}
	d := &bgnbdData{}
	perX := map[int]float64{}
	for i, g := range groups {
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("group %d: %w", i, err)
		}
		if g.Count < 1 {
			return nil, fmt.Errorf("group %d: %w: count %d is below 1", i, ErrInvalidInput, g.Count)
		}
		d.x = append(d.x, float64(g.Frequency))
		d.recency = append(d.recency, g.Recency)
		d.age = append(d.age, g.T)
		d.count = append(d.count, float64(g.Count))
		perX[g.Frequency] += float64(g.Count)
		d.total += float64(g.Count)
	}
	keys := make([]int, 0, len(perX))
	for x := range perX {
		keys = append(keys, x)
	}
	sort.Ints(keys)
	for _, x := range keys {
		d.xs = append(d.xs, float64(x))
		d.xCount = append(d.xCount, perX[x])
	}
	return d, nil
}

// logLikelihood returns the total log-likelihood at p and, when grad is not nil, its gradient
// with respect to (log r, log α, log a, log b). Per customer (Fader, Hardie & Lee 2005, eq. 6):
//
//	L = B(a, b+x)/B(a, b) · Γ(r+x)/Γ(r) · α^r · [ (α+T)^-(r+x) + δ(x>0) a/(b+x−1) (α+t_x)^-(r+x) ]
//
// evaluated in log space, the bracket with log-add-exp, as lifetimes does.
func (d *bgnbdData) logLikelihood(p BGNBDParams, grad []float64) float64 {
	r, alpha, a, b := p.R, p.Alpha, p.A, p.B
	var ll, gr, gAlpha, ga, gb float64
	// Terms in x only: log Γ(r+x) − log Γ(r) + r log α + log B(a, b+x) − log B(a, b).
	lgR, lgB, lgAB := lgamma(r), lgamma(b), lgamma(a+b)
	var psiR, psiB, psiAB float64
	if grad != nil {
		psiR, psiB, psiAB = mathext.Digamma(r), mathext.Digamma(b), mathext.Digamma(a+b)
	}
	logAlpha := math.Log(alpha)
	for i, x := range d.xs {
		n := d.xCount[i]
		ll += n * (lgamma(r+x) - lgR + r*logAlpha + lgAB + lgamma(b+x) - lgB - lgamma(a+b+x))
		if grad != nil {
			psiABX := mathext.Digamma(a + b + x)
			gr += n * (mathext.Digamma(r+x) - psiR + logAlpha)
			gAlpha += n * r / alpha
			ga += n * (psiAB - psiABX)
			gb += n * (psiAB + mathext.Digamma(b+x) - psiB - psiABX)
		}
	}
	logA := math.Log(a)
	for i, x := range d.x {
		n := d.count[i]
		logAT := math.Log(alpha + d.age[i])
		a3 := -(r + x) * logAT
		if x == 0 {
			ll += n * a3
			if grad != nil {
				gr -= n * logAT
				gAlpha -= n * (r + x) / (alpha + d.age[i])
			}
			continue
		}
		logATx := math.Log(alpha + d.recency[i])
		a4 := logA - math.Log(b+x-1) - (r+x)*logATx
		l := logAddExp(a3, a4)
		ll += n * l
		if grad != nil {
			w3, w4 := n*math.Exp(a3-l), n*math.Exp(a4-l)
			gr -= w3*logAT + w4*logATx
			gAlpha -= (r + x) * (w3/(alpha+d.age[i]) + w4/(alpha+d.recency[i]))
			ga += w4 / a
			gb -= w4 / (b + x - 1)
		}
	}
	if grad != nil {
		grad[0], grad[1], grad[2], grad[3] = gr*r, gAlpha*alpha, ga*a, gb*b
	}
	return ll
}

// LogLikelihood returns the total BG/NBD log-likelihood of groups at p.
func (p BGNBDParams) LogLikelihood(groups []Group) (float64, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	d, err := newBGNBDData(groups)
	if err != nil {
		return 0, err
	}
	return d.logLikelihood(p, nil), nil
}

// FitBGNBD fits the BG/NBD model by maximum likelihood. It optimises over the logarithms of
// (r, α, a, b), so the parameters stay positive, from lifetimes' start (1, 1, 1, 1) with α
// rescaled to the data's mean age (so the start does not depend on the time unit), minimising
// the mean negative log-likelihood per member (so tolerances do not depend on the sample size).
// Data without any repeat purchase give ErrNotIdentified. Other degenerate data (a handful of
// identical customers, say) can drive parameters towards 0 or infinity; the result is then
// finite but Converged may be false, and callers should not publish it.
func FitBGNBD(groups []Group) (BGNBDFit, error) { return FitBGNBDFrom(groups, nil) }

// FitBGNBDFrom is FitBGNBD started from start (the previous night's parameters, say) when it is
// not nil and valid. From one night to the next the data and so the optimum barely move, and
// BFGS needs a few steps from there instead of dozens from lifetimes' start. The result meets
// the same convergence test; a warm start that does not converge is followed by a fit from
// lifetimes' start, so a bad start costs time, never the answer.
func FitBGNBDFrom(groups []Group, start *BGNBDParams) (BGNBDFit, error) {
	d, err := newBGNBDData(groups)
	if err != nil {
		return BGNBDFit{}, fmt.Errorf("fit BG/NBD: %w", err)
	}
	if d.xs[len(d.xs)-1] == 0 {
		return BGNBDFit{}, fmt.Errorf("fit BG/NBD on %v customers without repeat purchases: %w", d.total, ErrNotIdentified)
	}
	var meanAge float64
	for i, age := range d.age {
		meanAge += d.count[i] * age
	}
	meanAge /= d.total
	cold := []float64{0, math.Log(math.Max(meanAge, 1e-3)), 0, 0}
	f := func(grad, theta []float64) float64 {
		e := expAll(theta)
		p := BGNBDParams{R: e[0], Alpha: e[1], A: e[2], B: e[3]}
		ll := d.logLikelihood(p, grad)
		for i := range grad {
			grad[i] = -grad[i] / d.total
		}
		return -ll / d.total
	}
	var fit BGNBDFit
	if start != nil && start.Validate() == nil {
		fit, err = d.fit(f, []float64{math.Log(start.R), math.Log(start.Alpha), math.Log(start.A), math.Log(start.B)})
		if err == nil && fit.Converged {
			return fit, nil
		}
	}
	return d.fit(f, cold)
}

// fit maximises the likelihood f from the log-parameters start.
func (d *bgnbdData) fit(f objective, start []float64) (BGNBDFit, error) {
	theta, norm, status, err := maximise(f, start)
	if err != nil {
		return BGNBDFit{}, fmt.Errorf("fit BG/NBD: %w", err)
	}
	e := expAll(theta)
	p := BGNBDParams{R: e[0], Alpha: e[1], A: e[2], B: e[3]}
	return BGNBDFit{
		Params:        p,
		LogLikelihood: d.logLikelihood(p, nil),
		SampleSize:    int(d.total),
		Groups:        len(d.x),
		Converged:     norm <= convergedGradient && p.validateForPrediction() == nil,
		GradientNorm:  norm,
		Status:        status.String(),
	}, nil
}

// PAlive returns the probability that customer c is still active at T (FHL 2005, eq. 11):
//
//	P(alive | x, t_x, T) = 1 / (1 + δ(x>0) · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)).
//
// With x = 0 it is 1: in BG/NBD a customer can only drop out right after a repeat purchase
// (lifetimes' convention).
func (p BGNBDParams) PAlive(c Customer) (float64, error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	if err := c.Validate(); err != nil {
		return 0, err
	}
	return p.pAlive(c), nil
}

func (p BGNBDParams) pAlive(c Customer) float64 {
	if c.Frequency == 0 {
		return 1
	}
	x := float64(c.Frequency)
	logOdds := math.Log(p.A/(p.B+x-1)) + (p.R+x)*(math.Log(p.Alpha+c.T)-math.Log(p.Alpha+c.Recency))
	// 1/(1+e^z) underflows to 0 cleanly for large z and never gives NaN.
	return 1 / (1 + math.Exp(logOdds))
}

// ExpectedPurchases returns E[Y(t) | x, t_x, T], the expected number of purchases by customer c
// in the next t time units (FHL 2005, eq. 10):
//
//	(a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; z)] · P(alive),
//	z = t/(α+T+t).
//
// z lies in [0, 1), but near 1 the 2F1 diverges like (1−z)^(a−1−r−x), and for large x it grows
// like (1−z)^−(b+x), overflowing long before the product with the small power does. Euler's
// transformation 2F1(A, B; C; z) = (1−z)^(C−A−B) 2F1(C−A, C−B; C; z) cancels the power in
// closed form:
//
//	((α+T)/(α+T+t))^(r+x) · 2F1(…) = (1−z)^(a−1) · 2F1(a+b−1−r, a−1; a+b+x−1; z),
//
// whose series has C−A−B = r+x+1−a. Exactly one of the two forms has C−A−B ≥ 0, where the
// series converges up to z = 1 and stays bounded; that one is used (the transformed one in
// practice, the original only when a > r+x+1). Cephes would otherwise fall back to a
// recurrence of |C−A−B| steps. At a = 1 the formula is 0/0; within 1e-3 of it the value is
// interpolated linearly between a = 1 ± 1e-3 (relative error of order 1e-6).
//
// With x = t_x = T = 0 it is the unconditional E[X(t)] of a new customer (FHL eq. 9).
// Parameters above 1e6 (r, a or b; only degenerate fits reach them) are refused, because the
// special-function code can then take unbounded time.
func (p BGNBDParams) ExpectedPurchases(c Customer, t float64) (float64, error) {
	if err := p.validateForPrediction(); err != nil {
		return 0, err
	}
	if err := c.Validate(); err != nil {
		return 0, err
	}
	if !finiteNonNegative(t) {
		return 0, fmt.Errorf("%w: horizon %v is not a finite non-negative number", ErrInvalidInput, t)
	}
	v := p.expectedPurchases(c, t)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("expected purchases for %+v over %v with %+v: not finite", c, t, p)
	}
	return v, nil
}

// maxShape bounds r, a and b for predictions; see ExpectedPurchases.
const maxShape = 1e6

func (p BGNBDParams) validateForPrediction() error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.R > maxShape || p.A > maxShape || p.B > maxShape {
		return fmt.Errorf("%w: BG/NBD parameters %+v exceed %g, a degenerate fit", ErrInvalidInput, p, maxShape)
	}
	return nil
}

func (p BGNBDParams) expectedPurchases(c Customer, t float64) float64 {
	if t == 0 {
		return 0
	}
	const nearOne = 1e-3
	if math.Abs(p.A-1) < nearOne {
		lo, hi := p, p
		lo.A, hi.A = 1-nearOne, 1+nearOne
		w := (p.A - lo.A) / (hi.A - lo.A)
		return (1-w)*lo.expectedPurchasesAwayFromOne(c, t) + w*hi.expectedPurchasesAwayFromOne(c, t)
	}
	return p.expectedPurchasesAwayFromOne(c, t)
}

// expectedPurchasesAwayFromOne is eq. 10 in whichever form converges at z = 1, for a not near 1.
func (p BGNBDParams) expectedPurchasesAwayFromOne(c Customer, t float64) float64 {
	r, alpha, a, b := p.R, p.Alpha, p.A, p.B
	x := float64(c.Frequency)
	z := t / (alpha + c.T + t)
	oneMinusZ := (alpha + c.T) / (alpha + c.T + t)
	var h float64
	if r+x+1-a >= 0 {
		h = math.Pow(oneMinusZ, a-1) * mathext.Hypergeo(a+b-1-r, a-1, a+b+x-1, z)
	} else {
		h = math.Pow(oneMinusZ, r+x) * mathext.Hypergeo(r+x, b+x, a+b+x-1, z)
	}
	return (a + b + x - 1) / (a - 1) * (1 - h) * p.pAlive(c)
}

func finiteNonNegative(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }

func finitePositive(v float64) bool { return v > 0 && !math.IsInf(v, 1) }
