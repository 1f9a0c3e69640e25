package trueskill

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Check is one verified claim: what was measured, the bound it is held to, and the test
// that asserts it.
type Check struct {
	Name, Measured, Want string
	OK                   bool
	Command              string
}

const testCmd = "go test -run '^%s$' ./diffusion/trueskill/"

func relDiff(a, b float64) float64 { return math.Abs(a-b) / math.Max(1, math.Abs(b)) }

// MaxMomentDiff returns the largest relative difference between the means and
// variances of two pairs of Gaussians.
func MaxMomentDiff(a1, a2, b1, b2 Gaussian) float64 {
	return max(relDiff(a1.Mean, b1.Mean), relDiff(a1.Var, b1.Var), relDiff(a2.Mean, b2.Mean), relDiff(a2.Var, b2.Var))
}

// GibbsZ returns the largest |Gibbs - exact| / (Monte Carlo standard error) over the
// means and variances of s1 and s2, the standard errors from the effective sample size
// of each chain (for a variance: var sqrt(2/ESS), as for Gaussian samples).
func GibbsZ(g *GibbsResult, exact *GridPosterior) float64 {
	s1, s2 := g.Kept(0)
	q1, q2 := g.Posterior(0)
	z := 0.0
	for _, c := range []struct {
		x    []float64
		q, e Gaussian
	}{{s1, q1, exact.Post1}, {s2, q2, exact.Post2}} {
		ess := ESS(c.x)
		sq := make([]float64, len(c.x))
		for i, v := range c.x {
			sq[i] = (v - c.q.Mean) * (v - c.q.Mean)
		}
		essVar := ESS(sq)
		z = max(z, math.Abs(c.q.Mean-c.e.Mean)/math.Sqrt(c.e.Var/ess))
		z = max(z, math.Abs(c.q.Var-c.e.Var)/(c.e.Var*math.Sqrt(2/essVar)))
	}
	return z
}

// RunChecks measures every claim of the notebook's closing note at cfg's sizes.
func RunChecks(cfg Config) ([]Check, error) {
	var out []Check
	add := func(name, measured, want string, ok bool, test string) {
		cmd := fmt.Sprintf(testCmd, test)
		if strings.HasPrefix(test, "Benchmark") {
			cmd = fmt.Sprintf("go test -run '^$' -bench '^%s$' ./diffusion/trueskill/", test)
		}
		out = append(out, Check{name, measured, want, ok, cmd})
	}
	ms, err := StudyMatch(cfg)
	if err != nil {
		return nil, err
	}
	z := GibbsZ(ms.Gibbs, ms.Exact)
	add("Gibbs moments vs exact (grid) posterior", fmt.Sprintf("max abs z = %.2f (%d samples)", z, len(ms.Gibbs.S1)-ms.Gibbs.BurnIn), "< 4 Monte Carlo standard errors", z < 4, "TestGibbsMatchesExact")
	d := MaxMomentDiff(ms.EP.Post1, ms.EP.Post2, ms.Analytic1, ms.Analytic2)
	add("EP message passing vs closed-form moment matching", fmt.Sprintf("max rel. diff %.1e", d), "≤ 1e-9", d <= 1e-9, "TestEPMatchesAnalytic")
	d = MaxMomentDiff(ms.Exact.Post1, ms.Exact.Post2, ms.Analytic1, ms.Analytic2)
	add("exact (grid) vs closed form (exact for one match)", fmt.Sprintf("max rel. diff %.1e", d), "≤ 1e-7", d <= 1e-7, "TestExactMatchesAnalytic")
	// p(y = 1) for unequal players (equal ones give 0.5 by symmetry, which proves little).
	q := Params{Mu1: 30, Sigma1: 5, Mu2: 25, Sigma2: 25.0 / 3, SigmaT: 25.0 / 6}
	eq, err := ExactPosterior(q, 1, cfg.Grid)
	if err != nil {
		return nil, err
	}
	pw := PWin(q)
	add("p(y = 1) = Phi((mu1 - mu2)/sqrt(...)) vs grid, N(30, 5²) vs N(25, (25/3)²)", fmt.Sprintf("%.10f vs %.10f", pw, eq.PredictiveProb), "equal to 1e-7", math.Abs(pw-eq.PredictiveProb) < 1e-7, "TestPWin")

	dADF, err := adfVersusFormula(cfg)
	if err != nil {
		return nil, err
	}
	add("ADF over a season vs closed-form updates", fmt.Sprintf("max rel. diff %.1e", dADF), "≤ 1e-9", dADF <= 1e-9, "TestADFMatchesAnalytic")

	scores, err := CompareModels(cfg)
	if err != nil {
		return nil, err
	}
	basic, ext := scores[0], scores[3]
	rb, rbse := basic.MeanRate()
	re, rese := ext.MeanRate()
	add("prediction rate, basic model (ADF)", fmt.Sprintf("%.3f ± %.3f", rb, rbse), "> 0.5 (random)", rb > 0.55, "TestPredictionBeatsRandom")
	g, gse := ext.RateGain(basic)
	add("prediction rate, home + margin (ADF)", fmt.Sprintf("%.3f ± %.3f; gain %+.3f ± %.3f (paired, %d seasons)", re, rese, g, gse, len(ext.Rates)), "gain > 0", g > 0, "TestExtensionPredictsBetter")
	if len(basic.Spearman) > 0 {
		cb, _ := basic.MeanSpearman()
		ce, _ := ext.MeanSpearman()
		add("rank correlation with true skills", fmt.Sprintf("basic %.3f, home + margin %.3f", cb, ce), "> 0.8", cb > 0.8 && ce > 0.8, "TestRecovery")
	}
	add("calibration: Brier score of predicted win probabilities", fmt.Sprintf("basic %.4f, home + margin %.4f", basic.Brier, ext.Brier), "< 0.25 (coin)", basic.Brier < 0.25 && ext.Brier < 0.25, "TestCalibration")

	tADF, tGibbs, err := Timings(cfg.Seed)
	if err != nil {
		return nil, err
	}
	add("ADF over a 380-match season (wall time)", tADF.String(), "well under 1 s", tADF < 100*time.Millisecond, "BenchmarkADFSeason")
	add("Gibbs, 4000 samples for one match (wall time)", tGibbs.String(), "< 1 s", tGibbs < time.Second, "BenchmarkGibbs4000")
	return out, nil
}

// adfVersusFormula filters one synthetic season with the basic model and compares each
// match's posteriors with the closed form applied to the skills before it.
func adfVersusFormula(cfg Config) (float64, error) {
	sc := DefaultSynthetic()
	sc.Seed = cfg.Seed
	syn, err := Generate(sc)
	if err != nil {
		return 0, err
	}
	m := BasicModel()
	skills := make([]Gaussian, len(syn.Teams))
	for i := range skills {
		skills[i] = m.Prior
	}
	worst := 0.0
	for _, mt := range syn.Matches {
		y := mt.Outcome()
		if y == 0 {
			continue
		}
		a, b := skills[mt.Team1], skills[mt.Team2]
		p := Params{Mu1: a.Mean, Sigma1: a.SD(), Mu2: b.Mean, Sigma2: b.SD(), SigmaT: m.SigmaT}
		f1, f2, err := AnalyticPosterior(p, y)
		if err != nil {
			return 0, err
		}
		var home Gaussian
		if _, err := m.update(skills, &home, mt); err != nil {
			return 0, err
		}
		worst = max(worst, MaxMomentDiff(skills[mt.Team1], skills[mt.Team2], f1, f2))
	}
	return worst, nil
}

// Timings returns the best of three wall times of ADF over a 380-match synthetic season
// and of a Gibbs run of 4000 samples (after 100 burn-in) for one match.
func Timings(seed uint64) (adf, gibbs time.Duration, err error) {
	sc := DefaultSynthetic()
	sc.Seed = seed
	syn, err := Generate(sc)
	if err != nil {
		return 0, 0, err
	}
	adf, gibbs = time.Hour, time.Hour
	for range 3 {
		r, err := ADF(&syn.Season, nil, BasicModel())
		if err != nil {
			return 0, 0, err
		}
		adf = min(adf, r.Duration)
		g, err := Gibbs(DefaultParams(), 1, GibbsConfig{Samples: 4000, BurnIn: 100, Seed: seed})
		if err != nil {
			return 0, 0, err
		}
		gibbs = min(gibbs, g.Duration)
	}
	return adf, gibbs, nil
}

// ChecksMarkdown formats checks as a Markdown table.
func ChecksMarkdown(checks []Check) string {
	var b strings.Builder
	b.WriteString("| check | measured | held to | ok | test |\n|---|---|---|---|---|\n")
	for _, c := range checks {
		ok := "yes"
		if !c.OK {
			ok = "**NO**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | `%s` |\n", c.Name, c.Measured, c.Want, ok, c.Command)
	}
	return b.String()
}

// AllOK returns an error naming the first failed check, or nil.
func AllOK(checks []Check) error {
	for _, c := range checks {
		if !c.OK {
			return fmt.Errorf("trueskill: check failed: %s: measured %s, want %s", c.Name, c.Measured, c.Want)
		}
	}
	return nil
}
