package trueskill

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/stat"
)

// maxGibbs bounds the length of a chain (three float64 slices of it are kept).
const maxGibbs = 50_000_000

// GibbsConfig sets up the Gibbs sampler of one match.
type GibbsConfig struct {
	Samples int    // samples kept after the burn-in (> 0)
	BurnIn  int    // samples discarded first (>= 0)
	Seed    uint64 // random seed
	// Start is the initial (s1, s2). The zero value means a deliberately bad start, three
	// prior standard deviations against the observed outcome, so that the trace shows
	// the burn-in.
	Start *[2]float64
}

// GibbsResult is the whole chain of a Gibbs run, burn-in included.
type GibbsResult struct {
	S1, S2, T []float64     // one value per iteration, BurnIn + Samples of each
	Start     [2]float64    // the initial (s1, s2)
	BurnIn    int           // the burn-in of the run
	Duration  time.Duration // wall time of the sampling
}

// Gibbs samples p(s1, s2, t | y) for one match by alternating the two conditionals:
// (s1, s2) | t from the Gaussian SkillsGivenT, and t | s1, s2 from the truncated Gaussian
// TGivenSkills. The chain starts at cfg.Start (t is drawn first).
func Gibbs(p Params, y int, cfg GibbsConfig) (*GibbsResult, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := checkOutcome(y); err != nil {
		return nil, err
	}
	if cfg.Samples <= 0 || cfg.BurnIn < 0 || cfg.Samples > maxGibbs || cfg.BurnIn > maxGibbs {
		return nil, fmt.Errorf("trueskill: Gibbs with %d samples and burn-in %d: want 0 < samples <= %d and 0 <= burn-in <= %d", cfg.Samples, cfg.BurnIn, maxGibbs, maxGibbs)
	}
	n := cfg.BurnIn + cfg.Samples
	res := &GibbsResult{S1: make([]float64, n), S2: make([]float64, n), T: make([]float64, n), BurnIn: cfg.BurnIn}
	start := time.Now()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7275657365656b73))

	// (s1, s2) | t = mean0 + meanT t + L z, L the Cholesky factor of the fixed covariance.
	m0, cov := SkillsGivenT(p, 0)
	m1, _ := SkillsGivenT(p, 1)
	slope := [2]float64{m1[0] - m0[0], m1[1] - m0[1]}
	l11 := math.Sqrt(cov[0][0])
	l21 := cov[1][0] / l11
	l22 := math.Sqrt(cov[1][1] - l21*l21)
	sdT := p.SigmaT
	yf := float64(y)

	var s1, s2 float64
	if cfg.Start != nil {
		s1, s2 = cfg.Start[0], cfg.Start[1]
	} else {
		s1, s2 = p.Mu1-3*yf*p.Sigma1, p.Mu2+3*yf*p.Sigma2
	}
	res.Start = [2]float64{s1, s2}
	for i := 0; i < n; i++ {
		t := sampleSignTruncated(rng, s1-s2, sdT, yf)
		z1, z2 := rng.NormFloat64(), rng.NormFloat64()
		s1 = m0[0] + slope[0]*t + l11*z1
		s2 = m0[1] + slope[1]*t + l21*z1 + l22*z2
		res.S1[i], res.S2[i], res.T[i] = s1, s2, t
	}
	res.Duration = time.Since(start)
	return res, nil
}

// sampleSignTruncated draws t ~ N(mean, sd^2) truncated to y t > 0. When the kept side
// has probability above about 0.3 it draws N(mean, sd^2) until the sign is right (the
// ziggurat normal: no exp or erf per draw); otherwise it inverts the CDF of the tail.
func sampleSignTruncated(rng *rand.Rand, mean, sd, y float64) float64 {
	if y*mean > -0.5*sd {
		for range 8 {
			t := mean + sd*rng.NormFloat64()
			if y*t > 0 {
				return t
			}
		}
	}
	u := rng.Float64()
	for u == 0 {
		u = rng.Float64()
	}
	g := Gaussian{mean, sd * sd}
	tr := Truncated{Gaussian: g, Lo: 0, Hi: math.Inf(1)}
	if y < 0 {
		tr = Truncated{Gaussian: g, Lo: math.Inf(-1), Hi: 0}
	}
	return tr.Sample(u)
}

// Kept returns the samples after the burn-in; n > 0 keeps only the first n of them.
func (r *GibbsResult) Kept(n int) (s1, s2 []float64) {
	s1, s2 = r.S1[r.BurnIn:], r.S2[r.BurnIn:]
	if n > 0 && n < len(s1) {
		s1, s2 = s1[:n], s2[:n]
	}
	return s1, s2
}

// Posterior returns the Gaussians fitted (by their sample mean and variance) to the
// first n post-burn-in samples of s1 and of s2 (n <= 0: all of them).
func (r *GibbsResult) Posterior(n int) (Gaussian, Gaussian) {
	s1, s2 := r.Kept(n)
	m1, v1 := stat.MeanVariance(s1, nil)
	m2, v2 := stat.MeanVariance(s2, nil)
	return Gaussian{m1, v1}, Gaussian{m2, v2}
}

// Correlation returns the sample correlation of s1 and s2 after the burn-in.
func (r *GibbsResult) Correlation() float64 {
	s1, s2 := r.Kept(0)
	return stat.Correlation(s1, s2, nil)
}

// ChooseBurnIn picks a burn-in from a pilot chain: the chain's centre and spread are
// estimated from its second half; the burn-in is the first iteration from which both
// s1 and s2 have stayed within 3 standard deviations of that centre for 10 iterations,
// times 5 for safety, at least 10. It returns the chosen burn-in.
func ChooseBurnIn(s1, s2 []float64) int {
	n := len(s1)
	if n < 20 || len(s2) != n {
		return 10
	}
	m1, sd1 := stat.MeanStdDev(s1[n/2:], nil)
	m2, sd2 := stat.MeanStdDev(s2[n/2:], nil)
	first, run := n, 0
	for i := range n {
		if math.Abs(s1[i]-m1) < 3*sd1 && math.Abs(s2[i]-m2) < 3*sd2 {
			run++
			if run == 10 {
				first = i - 9
				break
			}
		} else {
			run = 0
		}
	}
	return max(10, 5*first)
}

// ESS returns the effective sample size of a chain, n / (1 + 2 sum_k rho_k), with the
// autocorrelations rho_k summed in pairs while the pair sums stay positive (Geyer's
// initial positive sequence).
func ESS(x []float64) float64 {
	n := len(x)
	if n < 4 {
		return float64(n)
	}
	m, v := stat.PopMeanVariance(x, nil)
	if v == 0 {
		return float64(n)
	}
	rho := func(k int) float64 {
		s := 0.0
		for i := 0; i+k < n; i++ {
			s += (x[i] - m) * (x[i+k] - m)
		}
		return s / (float64(n) * v)
	}
	tau := -1.0 // 1 + 2 sum_{k>=1} rho_k = -rho_0 + 2 sum_{pairs}
	for k := 0; k+1 < n; k += 2 {
		pair := rho(k) + rho(k+1)
		if pair <= 0 {
			break
		}
		tau += 2 * pair
	}
	if tau < 1e-9 {
		tau = 1e-9
	}
	return math.Min(float64(n)/tau, float64(n)*10)
}
