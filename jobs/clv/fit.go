package clv

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/optimize"
)

// convergedGradient is the largest gradient (infinity norm, of the mean log-likelihood per
// member, with respect to the log-parameters) at which a fit counts as converged. Per member and
// in log space it does not depend on the sample size or the time unit.
const convergedGradient = 1e-6

// objective evaluates the mean negative log-likelihood at log-parameters theta and writes its
// gradient with respect to theta into grad.
type objective func(grad, theta []float64) float64

// maximise finds the maximum-likelihood log-parameters from start. BFGS with the analytic
// gradient does the work; when it stops without converging (a line search that gives up on a
// flat ridge, say) Nelder-Mead, which needs no gradient, moves on from the best point and BFGS
// polishes again. It returns the log-parameters, the final gradient norm and gonum's status.
func maximise(f objective, start []float64) ([]float64, float64, optimize.Status, error) {
	n := len(start)
	// gonum asks for Func and Grad separately at the same point; one pass computes both, so the
	// last evaluation is cached.
	var lastTheta, lastGrad []float64
	var lastF float64
	eval := func(theta []float64) {
		if lastTheta != nil && slices.Equal(lastTheta, theta) {
			return
		}
		lastTheta = append(lastTheta[:0], theta...)
		lastGrad = slices.Grow(lastGrad[:0], n)[:n]
		lastF = f(lastGrad, theta)
		if math.IsNaN(lastF) {
			lastF = math.Inf(1)
		}
	}
	problem := optimize.Problem{
		Func: func(theta []float64) float64 { eval(theta); return lastF },
		Grad: func(grad, theta []float64) { eval(theta); copy(grad, lastGrad) },
	}
	settings := &optimize.Settings{GradientThreshold: convergedGradient / 100, MajorIterations: 1000}

	best := slices.Clone(start)
	var status optimize.Status
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		var method optimize.Method = &optimize.BFGS{}
		if attempt == 1 {
			method = &optimize.NelderMead{}
		}
		res, err := optimize.Minimize(problem, best, settings, method)
		lastErr = err
		if res != nil && !math.IsInf(res.F, 0) && !math.IsNaN(res.F) && allFinite(res.X) {
			best = slices.Clone(res.X)
			status = res.Status
		}
		grad := make([]float64, n)
		f(grad, best)
		if norm := floats.Norm(grad, math.Inf(1)); norm <= convergedGradient && attempt != 1 {
			return best, norm, status, nil
		}
	}
	grad := make([]float64, n)
	f(grad, best)
	norm := floats.Norm(grad, math.Inf(1))
	if math.IsNaN(norm) {
		if lastErr != nil {
			return nil, norm, status, fmt.Errorf("likelihood gradient not finite at the best point found: %w", lastErr)
		}
		return nil, norm, status, errors.New("likelihood gradient not finite at the best point found")
	}
	return best, norm, status, nil
}

func allFinite(xs []float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

func expAll(theta []float64) []float64 {
	out := make([]float64, len(theta))
	for i, v := range theta {
		out[i] = math.Exp(v)
	}
	return out
}

// logAddExp returns log(exp(x) + exp(y)) without overflow.
func logAddExp(x, y float64) float64 {
	if x < y {
		x, y = y, x
	}
	return x + math.Log1p(math.Exp(y-x))
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}
