package trueskill

import (
	"fmt"
	"time"
)

// GridPosterior is the exact posterior p(s1, s2 | y) of one match, computed by
// numerical integration of N(s1; mu1, sigma1^2) N(s2; mu2, sigma2^2) Phi(y (s1 - s2)/sigmaT)
// (t integrated out analytically) on an n x n grid over 8 prior standard deviations on
// each side of the prior means. The trapezoid rule on such a smooth, fast-decaying
// integrand converges faster than any power of the spacing.
type GridPosterior struct {
	S1, S2         []float64 // grid points of each axis
	Marg1, Marg2   []float64 // marginal densities on the grid points
	Post1, Post2   Gaussian  // means and variances of the marginals
	Cov            float64   // covariance of s1 and s2
	Duration       time.Duration
	PredictiveProb float64 // p(y) = integral of the unnormalised density
}

// ExactPosterior integrates the posterior of one match on an n x n grid (n >= 16).
func ExactPosterior(p Params, y int, n int) (*GridPosterior, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := checkOutcome(y); err != nil {
		return nil, err
	}
	if n < 16 || n > 1<<13 {
		return nil, fmt.Errorf("trueskill: grid of %d points per axis: want 16 to 8192", n)
	}
	start := time.Now()
	axis := func(mu, sd float64) ([]float64, float64) {
		xs := make([]float64, n)
		h := 16 * sd / float64(n-1)
		for i := range xs {
			xs[i] = mu - 8*sd + float64(i)*h
		}
		return xs, h
	}
	g := &GridPosterior{}
	var h1, h2 float64
	g.S1, h1 = axis(p.Mu1, p.Sigma1)
	g.S2, h2 = axis(p.Mu2, p.Sigma2)
	prior1 := make([]float64, n)
	prior2 := make([]float64, n)
	for i := range n {
		prior1[i] = p.Prior1().Density(g.S1[i])
		prior2[i] = p.Prior2().Density(g.S2[i])
	}
	g.Marg1, g.Marg2 = make([]float64, n), make([]float64, n)
	var z, e1, e2, e11, e22, e12 float64
	yf := float64(y)
	for i, s1 := range g.S1 {
		for j, s2 := range g.S2 {
			d := prior1[i] * prior2[j] * Phi(yf*(s1-s2)/p.SigmaT)
			g.Marg1[i] += d
			g.Marg2[j] += d
			z += d
			e1 += d * s1
			e2 += d * s2
			e11 += d * s1 * s1
			e22 += d * s2 * s2
			e12 += d * s1 * s2
		}
	}
	// The integrand is negligible at the grid's edges, so the trapezoid rule is the
	// plain sum times the cell area.
	m1, m2 := e1/z, e2/z
	g.Post1 = Gaussian{m1, e11/z - m1*m1}
	g.Post2 = Gaussian{m2, e22/z - m2*m2}
	g.Cov = e12/z - m1*m2
	g.PredictiveProb = z * h1 * h2
	for i := range n {
		g.Marg1[i] /= z * h1
		g.Marg2[i] /= z * h2
	}
	g.Duration = time.Since(start)
	return g, nil
}
