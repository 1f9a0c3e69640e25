// Package trueskill is Exercise 1 of the final exam: Bayesian skill rating from match
// results with the TrueSkill model
//
//	p(s1, s2, t, y) = N(s1; mu1, sigma1^2) N(s2; mu2, sigma2^2) N(t; s1 - s2, sigmaT^2) 1(y = sign(t))
//
// and three ways to compute the posterior of the skills after a match: a Gibbs sampler,
// message passing (expectation propagation) with moment matching of the truncated Gaussian,
// and the exact posterior by 2-D numerical integration on a grid (the reference the other
// two are checked against). Over a season of matches the package runs assumed density
// filtering (ADF), measures the one-step-ahead prediction rate, the effect of the order of
// the matches, and an extended observation model with a home advantage and the margin of
// victory. Match results are read from CSV files or generated as synthetic seasons with
// known true skills, so that recovery (rank correlation) and calibration of the predicted
// win probabilities can be measured.
//
// Everything is plain Go (no GoMLX): the computations are scalar and small.
package trueskill

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// Gaussian is a 1-D normal distribution N(Mean, Var).
type Gaussian struct {
	Mean, Var float64
}

// SD returns the standard deviation.
func (g Gaussian) SD() float64 { return math.Sqrt(g.Var) }

// Density returns the probability density at x.
func (g Gaussian) Density(x float64) float64 {
	d := x - g.Mean
	return math.Exp(-d*d/(2*g.Var)) / math.Sqrt(2*math.Pi*g.Var)
}

// String formats the Gaussian as N(mean, var).
func (g Gaussian) String() string { return fmt.Sprintf("N(%.4g, %.4g)", g.Mean, g.Var) }

// Params are the five hyperparameters of the model of one match: the prior means and
// standard deviations of the two skills and the standard deviation of the performance
// difference t around s1 - s2.
type Params struct {
	Mu1, Sigma1 float64
	Mu2, Sigma2 float64
	SigmaT      float64
}

// DefaultParams are the exam's values: both players start at N(25, (25/3)^2) and the
// performance noise is sigmaT = 25/6.
func DefaultParams() Params {
	return Params{Mu1: 25, Sigma1: 25.0 / 3, Mu2: 25, Sigma2: 25.0 / 3, SigmaT: 25.0 / 6}
}

// Validate reports a non-positive or non-finite standard deviation or a non-finite mean.
func (p Params) Validate() error {
	for _, v := range []struct {
		name string
		x    float64
		pos  bool
	}{{"mu1", p.Mu1, false}, {"mu2", p.Mu2, false}, {"sigma1", p.Sigma1, true}, {"sigma2", p.Sigma2, true}, {"sigmaT", p.SigmaT, true}} {
		if math.IsNaN(v.x) || math.IsInf(v.x, 0) || (v.pos && v.x <= 0) {
			return fmt.Errorf("trueskill: %s = %g: want a finite number%s", v.name, v.x, map[bool]string{true: " > 0", false: ""}[v.pos])
		}
	}
	return nil
}

// Prior1 returns the prior of s1.
func (p Params) Prior1() Gaussian { return Gaussian{p.Mu1, p.Sigma1 * p.Sigma1} }

// Prior2 returns the prior of s2.
func (p Params) Prior2() Gaussian { return Gaussian{p.Mu2, p.Sigma2 * p.Sigma2} }

// ErrOutcome is returned for an outcome y other than +1 or -1.
var ErrOutcome = errors.New("trueskill: outcome y must be +1 (player 1 wins) or -1 (player 2 wins)")

func checkOutcome(y int) error {
	if y != 1 && y != -1 {
		return ErrOutcome
	}
	return nil
}

// Phi is the standard normal cumulative distribution function.
func Phi(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// PhiInv is the standard normal quantile function (gonum's, accurate in the tails,
// unlike -sqrt(2) Erfcinv(2p) which rounds 1 - 2p to 1 for p < 1e-17). It returns NaN
// outside [0, 1].
func PhiInv(p float64) float64 {
	if !(p >= 0 && p <= 1) {
		return math.NaN()
	}
	return mathext.NormalQuantile(p)
}

// phiDensity is the standard normal density.
func phiDensity(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) }

// PWin returns p(y = 1) = Phi((mu1 - mu2) / sqrt(sigma1^2 + sigma2^2 + sigmaT^2)), the
// prior predictive probability that player 1 wins.
func PWin(p Params) float64 {
	return Phi((p.Mu1 - p.Mu2) / math.Sqrt(p.Sigma1*p.Sigma1+p.Sigma2*p.Sigma2+p.SigmaT*p.SigmaT))
}

// SkillsGivenT returns the Gaussian conditional p(s1, s2 | t, y) = p(s1, s2 | t): its
// mean and 2x2 covariance. (y is a function of t, so it adds nothing once t is known.)
// The precision is diag(1/sigma1^2, 1/sigma2^2) + a a^T / sigmaT^2 with a = (1, -1).
func SkillsGivenT(p Params, t float64) (mean [2]float64, cov [2][2]float64) {
	vt := p.SigmaT * p.SigmaT
	l11 := 1/(p.Sigma1*p.Sigma1) + 1/vt
	l22 := 1/(p.Sigma2*p.Sigma2) + 1/vt
	l12 := -1 / vt
	det := l11*l22 - l12*l12
	cov = [2][2]float64{{l22 / det, -l12 / det}, {-l12 / det, l11 / det}}
	e1 := p.Mu1/(p.Sigma1*p.Sigma1) + t/vt
	e2 := p.Mu2/(p.Sigma2*p.Sigma2) - t/vt
	mean = [2]float64{cov[0][0]*e1 + cov[0][1]*e2, cov[1][0]*e1 + cov[1][1]*e2}
	return mean, cov
}

// Truncated is a Gaussian N(Mean, Var) truncated to the interval (Lo, Hi); Lo may be
// -Inf and Hi +Inf. The outcome y = +1 of a match truncates t to (0, +Inf), y = -1 to
// (-Inf, 0).
type Truncated struct {
	Gaussian
	Lo, Hi float64
}

// SignTruncated returns N(mean, v) truncated to t > 0 (y = +1) or t < 0 (y = -1).
func SignTruncated(g Gaussian, y int) Truncated {
	if y > 0 {
		return Truncated{Gaussian: g, Lo: 0, Hi: math.Inf(1)}
	}
	return Truncated{Gaussian: g, Lo: math.Inf(-1), Hi: 0}
}

// TGivenSkills returns the conditional p(t | s1, s2, y): N(s1 - s2, sigmaT^2) truncated
// to t > 0 for y = +1 and to t < 0 for y = -1.
func TGivenSkills(p Params, s1, s2 float64, y int) Truncated {
	return SignTruncated(Gaussian{s1 - s2, p.SigmaT * p.SigmaT}, y)
}

// Moments returns the mean and the variance of the truncated Gaussian: the moment
// matching step of ADF and EP. With alpha = (Lo - Mean)/SD, beta = (Hi - Mean)/SD and
// Z = Phi(beta) - Phi(alpha),
//
//	mean = Mean + SD (phi(alpha) - phi(beta)) / Z
//	var  = Var (1 + (alpha phi(alpha) - beta phi(beta)) / Z - ((phi(alpha) - phi(beta)) / Z)^2)
//
// For a one-sided truncation (y = +1: alpha = -z with z = Mean/SD) these are the familiar
// mean = Mean + SD lambda(z), var = Var (1 - lambda(z) (lambda(z) + z)) with
// lambda(z) = phi(z)/Phi(z). Both are computed stably far in the tails. It returns an error
// for an empty interval or a non-positive variance.
func (t Truncated) Moments() (Gaussian, error) {
	if !(t.Var > 0) || math.IsInf(t.Var, 0) || math.IsNaN(t.Mean) || math.IsInf(t.Mean, 0) {
		return Gaussian{}, fmt.Errorf("trueskill: truncated %v: want a finite mean and a variance > 0", t.Gaussian)
	}
	if !(t.Lo < t.Hi) {
		return Gaussian{}, fmt.Errorf("trueskill: truncation interval (%g, %g) is empty", t.Lo, t.Hi)
	}
	s := t.SD()
	a, b := (t.Lo-t.Mean)/s, (t.Hi-t.Mean)/s
	var shift, scale float64 // standardised mean and variance
	switch {
	case math.IsInf(t.Lo, -1) && math.IsInf(t.Hi, 1):
		shift, scale = 0, 1
	case math.IsInf(t.Hi, 1): // x > a: mean lambda(-a), var 1 - lambda (lambda - a)
		l := millsInverse(-a)
		shift, scale = l, 1-l*(l-a)
	case math.IsInf(t.Lo, -1): // x < b: mirror image
		l := millsInverse(b)
		shift, scale = -l, 1-l*(l+b)
	default:
		// Both ends finite. Work in the upper tail (a >= -b) by symmetry, where
		// Z = Phi(-a) - Phi(-b) keeps its precision.
		flip := a+b < 0
		if flip {
			a, b = -b, -a
		}
		pa, pb := phiDensity(a), phiDensity(b)
		z := Phi(-a) - Phi(-b)
		if z > 1e-280 && z > 1e-12*Phi(-a) {
			m := (pa - pb) / z
			shift, scale = m, 1+(a*pa-b*pb)/z-m*m
		} else {
			// The interval is so narrow relative to its tail that the density is
			// nearly exponential across it: x - a ~ Exp(a) truncated to (0, b - a).
			r, w := a, b-a
			if r < 1e-300 {
				r = 1e-300
			}
			mu, v := truncExpMoments(r, w)
			shift, scale = a+mu, v
		}
		if flip {
			shift = -shift
		}
	}
	if !(scale > 0) { // rounding in the far tail; the variance is tiny but positive
		scale = math.SmallestNonzeroFloat64
	}
	return Gaussian{Mean: t.Mean + s*shift, Var: t.Var * scale}, nil
}

// truncExpMoments returns the mean and variance of an exponential with rate r truncated
// to (0, w).
func truncExpMoments(r, w float64) (mean, variance float64) {
	rw := r * w
	if rw < 1e-6 { // nearly uniform on (0, w)
		return w / 2, w * w / 12
	}
	e := math.Exp(-rw)
	d := -math.Expm1(-rw) // 1 - e
	mean = 1/r - w*e/d
	variance = 1/(r*r) - w*w*e/(d*d)
	return mean, variance
}

// millsInverse returns phi(z)/Phi(z), stable for very negative z (asymptotic series).
func millsInverse(z float64) float64 {
	if z > -25 {
		return phiDensity(z) / Phi(z)
	}
	// Phi(z) ~ phi(z)/|z| (1 - 1/z^2 + 3/z^4 - 15/z^6) for z -> -inf.
	z2 := z * z
	return -z / (1 - 1/z2 + 3/(z2*z2) - 15/(z2*z2*z2))
}

// Sample draws from a one-sided truncated Gaussian (Lo = 0 or Hi = 0, as p(t | s1, s2, y))
// given a uniform variate u in (0, 1), by the inverse CDF of the tail: exact, and accurate
// far in the tail. Two-sided truncations are not sampled (the Gibbs sampler needs none).
func (t Truncated) Sample(u float64) float64 {
	s := t.SD()
	y := 1.0
	if math.IsInf(t.Lo, -1) {
		y = -1
	}
	// Standardised x = y (t - Mean)/s truncated to x > alpha, alpha = -y Mean/s;
	// x = -PhiInv(u Phi(-alpha)) by symmetry.
	alpha := -y * t.Mean / s
	var x float64
	if tail := Phi(-alpha); tail > 1e-300 {
		x = -PhiInv(u * tail)
	} else {
		// Beyond about 37 SD the tail is exponential with rate alpha to many digits.
		x = alpha - math.Log(u)/alpha
	}
	if x < alpha || math.IsNaN(x) { // rounding at the boundary
		x = alpha
	}
	return t.Mean + y*s*x
}

// AnalyticPosterior returns the posterior means and variances of s1 and s2 after one
// match by the closed-form moment-matching formulas (the TrueSkill update): with
// c^2 = sigma1^2 + sigma2^2 + sigmaT^2, z = y (mu1 - mu2)/c and lambda = phi(z)/Phi(z),
//
//	mean1 = mu1 + y sigma1^2 lambda / c      var1 = sigma1^2 (1 - sigma1^2 lambda (lambda + z) / c^2)
//	mean2 = mu2 - y sigma2^2 lambda / c      var2 = sigma2^2 (1 - sigma2^2 lambda (lambda + z) / c^2)
//
// For a single match these are the exact posterior moments. It is written separately
// from the message passing of EP so that each checks the other.
func AnalyticPosterior(p Params, y int) (Gaussian, Gaussian, error) {
	if err := p.Validate(); err != nil {
		return Gaussian{}, Gaussian{}, err
	}
	if err := checkOutcome(y); err != nil {
		return Gaussian{}, Gaussian{}, err
	}
	v1, v2 := p.Sigma1*p.Sigma1, p.Sigma2*p.Sigma2
	c2 := v1 + v2 + p.SigmaT*p.SigmaT
	c := math.Sqrt(c2)
	yf := float64(y)
	z := yf * (p.Mu1 - p.Mu2) / c
	l := millsInverse(z)
	w := l * (l + z)
	return Gaussian{p.Mu1 + yf*v1*l/c, v1 * (1 - v1*w/c2)}, Gaussian{p.Mu2 - yf*v2*l/c, v2 * (1 - v2*w/c2)}, nil
}
