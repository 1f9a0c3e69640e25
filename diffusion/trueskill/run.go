package trueskill

import (
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/godiffusion/notebooks/diffusion/preset"
	"gonum.org/v1/gonum/stat"
)

// Config is one run of the notebook's (and the command's) tasks.
type Config struct {
	Preset  preset.Preset
	Seed    uint64
	Samples int    // Gibbs samples after the burn-in
	BurnIn  int    // Gibbs burn-in; 0 chooses it from a pilot chain (ChooseBurnIn)
	Orders  int    // random match orders of the shuffling study
	Seasons int    // synthetic seasons the prediction rates are averaged over
	Grid    int    // points per axis of the exact posterior
	Sweeps  int    // maximum EP sweeps over a season
	CSV     string // match results to read; "" generates synthetic seasons
	Params  Params // the one-match example
	Y       int    // its outcome
}

// PresetConfig returns the sizes of preset p. Presets change sizes only.
func PresetConfig(p preset.Preset) Config {
	return Config{
		Preset:  p,
		Seed:    1,
		Samples: preset.Pick(p, 4000, 10000, 100000),
		Orders:  preset.Pick(p, 5, 50, 200),
		Seasons: preset.Pick(p, 20, 100, 500),
		Grid:    preset.Pick(p, 201, 401, 801),
		Sweeps:  preset.Pick(p, 300, 1000, 2000),
		Params:  DefaultParams(),
		Y:       1,
	}
}

// MatchStudy is the one-match part: Gibbs (with the burn-in chosen from a pilot
// chain), message passing, the exact posterior and the closed form.
type MatchStudy struct {
	Params               Params
	Y                    int
	Pilot, Gibbs         *GibbsResult
	EP                   *Messages
	Exact                *GridPosterior
	Analytic1, Analytic2 Gaussian
	AnalyticTime         time.Duration
}

// StudyMatch runs the one-match part.
func StudyMatch(cfg Config) (*MatchStudy, error) {
	ms := &MatchStudy{Params: cfg.Params, Y: cfg.Y}
	var err error
	burn := cfg.BurnIn
	ms.Pilot, err = Gibbs(cfg.Params, cfg.Y, GibbsConfig{Samples: 1000, Seed: cfg.Seed + 1000})
	if err != nil {
		return nil, err
	}
	if burn <= 0 {
		burn = ChooseBurnIn(ms.Pilot.S1, ms.Pilot.S2)
	}
	ms.Pilot.BurnIn = burn // the trace figure marks it on the pilot chain
	if ms.Gibbs, err = Gibbs(cfg.Params, cfg.Y, GibbsConfig{Samples: cfg.Samples, BurnIn: burn, Seed: cfg.Seed}); err != nil {
		return nil, err
	}
	if ms.EP, err = EP(cfg.Params, cfg.Y); err != nil {
		return nil, err
	}
	if ms.Exact, err = ExactPosterior(cfg.Params, cfg.Y, cfg.Grid); err != nil {
		return nil, err
	}
	start := time.Now()
	ms.Analytic1, ms.Analytic2, err = AnalyticPosterior(cfg.Params, cfg.Y)
	ms.AnalyticTime = time.Since(start)
	return ms, err
}

// SamplesTable is the exam's table: the posterior means and variances of s1 and s2
// from independent Gibbs runs of n post-burn-in samples each, the wall time of each run
// and the exact values.
func (ms *MatchStudy) SamplesTable(ns []int, seed uint64) (string, error) {
	var b strings.Builder
	b.WriteString("| samples N | mean s1 | var s1 | mean s2 | var s2 | wall time |\n|---:|---:|---:|---:|---:|---:|\n")
	for i, n := range ns {
		g, err := Gibbs(ms.Params, ms.Y, GibbsConfig{Samples: n, BurnIn: ms.Gibbs.BurnIn, Seed: seed + uint64(i)})
		if err != nil {
			return "", err
		}
		q1, q2 := g.Posterior(0)
		fmt.Fprintf(&b, "| %d | %.3f | %.3f | %.3f | %.3f | %s |\n", n, q1.Mean, q1.Var, q2.Mean, q2.Var, g.Duration.Round(time.Microsecond))
	}
	e := ms.Exact
	fmt.Fprintf(&b, "| exact (grid %d²) | %.3f | %.3f | %.3f | %.3f | %s |\n", len(e.S1), e.Post1.Mean, e.Post1.Var, e.Post2.Mean, e.Post2.Var, e.Duration.Round(time.Microsecond))
	return b.String(), nil
}

// MethodsTable compares the posterior moments and the time of every method.
func (ms *MatchStudy) MethodsTable() string {
	var b strings.Builder
	b.WriteString("| method | mean s1 | var s1 | mean s2 | var s2 | wall time |\n|---|---:|---:|---:|---:|---:|\n")
	row := func(name string, a, c Gaussian, d time.Duration) {
		fmt.Fprintf(&b, "| %s | %.6f | %.6f | %.6f | %.6f | %s |\n", name, a.Mean, a.Var, c.Mean, c.Var, d)
	}
	g1, g2 := ms.Gibbs.Posterior(0)
	row(fmt.Sprintf("Gibbs, %d samples after %d burn-in", len(ms.Gibbs.S1)-ms.Gibbs.BurnIn, ms.Gibbs.BurnIn), g1, g2, ms.Gibbs.Duration.Round(time.Microsecond))
	row("message passing (EP), one pass", ms.EP.Post1, ms.EP.Post2, ms.EP.Duration)
	row("closed-form moment matching", ms.Analytic1, ms.Analytic2, ms.AnalyticTime)
	row(fmt.Sprintf("exact: grid %d x %d", len(ms.Exact.S1), len(ms.Exact.S2)), ms.Exact.Post1, ms.Exact.Post2, ms.Exact.Duration.Round(time.Microsecond))
	return b.String()
}

// Table lists the messages of EP on one match as Markdown.
func (m *Messages) Table() string {
	var b strings.Builder
	b.WriteString("| message | Gaussian |\n|---|---|\n")
	for _, r := range []struct {
		name string
		g    Gaussian
	}{{"f_s1 → s1 (prior)", m.PriorS1}, {"f_s2 → s2 (prior)", m.PriorS2}, {"f_t → t", m.FtToT}, {"q(t): f_y × (f_t → t), moment matched", m.Qt},
		{"f_y → t = q(t) / (f_t → t)", m.FyToT}, {"f_t → s1", m.FtToS1}, {"f_t → s2", m.FtToS2}, {"q(s1) = prior × (f_t → s1)", m.Post1}, {"q(s2) = prior × (f_t → s2)", m.Post2}} {
		fmt.Fprintf(&b, "| %s | N(%.4f, %.4f) |\n", r.name, r.g.Mean, r.g.Var)
	}
	return b.String()
}

// SeasonData is a season to rate, with its truth when synthetic.
type SeasonData struct {
	*Season
	True   []float64 // true skills (nil for a CSV season)
	Source string
}

// LoadSeason reads cfg.CSV, or generates the synthetic season number k (seed cfg.Seed + k).
func LoadSeason(cfg Config, k int) (*SeasonData, error) {
	if cfg.CSV != "" {
		f, err := os.Open(cfg.CSV)
		if err != nil {
			return nil, fmt.Errorf("trueskill: %w", err)
		}
		defer f.Close()
		s, err := ReadCSV(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.CSV, err)
		}
		return &SeasonData{Season: s, Source: cfg.CSV}, nil
	}
	sc := DefaultSynthetic()
	sc.Seed = cfg.Seed + uint64(k)
	syn, err := Generate(sc)
	if err != nil {
		return nil, err
	}
	return &SeasonData{Season: &syn.Season, True: syn.TrueSkills, Source: fmt.Sprintf("synthetic season, seed %d", sc.Seed)}, nil
}

// Describe summarises a season in one line.
func (d *SeasonData) Describe() string {
	h, a := 0, 0
	for _, m := range d.Matches {
		switch m.Outcome() {
		case 1:
			h++
		case -1:
			a++
		}
	}
	n := float64(len(d.Matches))
	return fmt.Sprintf("%s: %d teams, %d matches; team 1 (home) won %.0f%%, draws %.0f%% (skipped by ADF), team 2 won %.0f%%",
		d.Source, len(d.Teams), len(d.Matches), 100*float64(h)/n, 100*float64(d.Draws())/n, 100*float64(a)/n)
}

// ModelScore is the score of one observation model over one or more seasons.
type ModelScore struct {
	Model                 Model
	Method                string    // "ADF" or "EP"
	Rates                 []float64 // one-step-ahead prediction rate per season
	Spearman              []float64 // rank correlation with the true skills per season
	Brier                 float64   // pooled over seasons
	Calibration           []CalibrationBin
	Duration              time.Duration // total over seasons
	meanRate, seRate      float64
	meanSpearman, seSpear float64
}

func meanSE(x []float64) (float64, float64) {
	if len(x) == 0 {
		return math.NaN(), math.NaN()
	}
	m, sd := stat.MeanStdDev(x, nil)
	if len(x) < 2 {
		return m, math.NaN()
	}
	return m, sd / math.Sqrt(float64(len(x)))
}

// MeanRate returns the mean prediction rate over seasons and its standard error.
func (s *ModelScore) MeanRate() (float64, float64) { return meanSE(s.Rates) }

// MeanSpearman returns the mean rank correlation with the truth and its standard error.
func (s *ModelScore) MeanSpearman() (float64, float64) { return meanSE(s.Spearman) }

// CompareModels rates cfg.Seasons synthetic seasons (or the CSV season) with the basic
// model, home advantage only, margin only and both, by ADF, and the basic model by EP
// over the whole season.
func CompareModels(cfg Config) ([]*ModelScore, error) {
	home := BasicModel()
	home.Home, home.HomePrior = true, ExtendedModel().HomePrior
	margin := ExtendedModel()
	margin.Home = false
	scores := []*ModelScore{
		{Model: BasicModel(), Method: "ADF"}, {Model: home, Method: "ADF"}, {Model: margin, Method: "ADF"},
		{Model: ExtendedModel(), Method: "ADF"}, {Model: BasicModel(), Method: "EP"}, {Model: ExtendedModel(), Method: "EP"},
	}
	seasons := cfg.Seasons
	if cfg.CSV != "" {
		seasons = 1
	}
	ratings := make([][]*Rating, len(scores))
	for k := range seasons {
		d, err := LoadSeason(cfg, k)
		if err != nil {
			return nil, err
		}
		for i, sc := range scores {
			var r *Rating
			if sc.Method == "EP" {
				r, _, err = EPSeason(d.Season, sc.Model, cfg.Sweeps)
			} else {
				r, err = ADF(d.Season, nil, sc.Model)
			}
			if err != nil {
				return nil, err
			}
			ratings[i] = append(ratings[i], r)
			sc.Rates = append(sc.Rates, r.Rate())
			if d.True != nil {
				sc.Spearman = append(sc.Spearman, Spearman(r.Means(), d.True))
			}
			sc.Duration += r.Duration
		}
	}
	for i, sc := range scores {
		sc.Calibration, sc.Brier = Calibration(10, ratings[i]...)
	}
	return scores, nil
}

// RateGain returns the mean over seasons of s's prediction rate minus base's (paired by
// season) and its standard error.
func (s *ModelScore) RateGain(base *ModelScore) (float64, float64) {
	if len(s.Rates) != len(base.Rates) {
		return math.NaN(), math.NaN()
	}
	d := make([]float64, len(s.Rates))
	for i := range d {
		d[i] = s.Rates[i] - base.Rates[i]
	}
	return meanSE(d)
}

// ScoresTable formats a model comparison as Markdown, with random guessing as the
// baseline; the gain is paired by season against the first score.
func ScoresTable(scores []*ModelScore) string {
	var b strings.Builder
	b.WriteString("| model | method | seasons | prediction rate | gain over basic (paired) | rank correlation with true skills | Brier score | wall time per season |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	b.WriteString("| random guess | - | - | 0.500 | - | - | 0.250 | - |\n")
	for _, s := range scores {
		gain := "-"
		if s != scores[0] && s.Method != "EP" {
			g, gse := s.RateGain(scores[0])
			gain = fmt.Sprintf("%+.3f", g)
			if !math.IsNaN(gse) {
				gain += fmt.Sprintf(" ± %.3f", gse)
			}
		}
		r, rse := s.MeanRate()
		c, cse := s.MeanSpearman()
		rate := fmt.Sprintf("%.3f", r)
		if !math.IsNaN(rse) {
			rate += fmt.Sprintf(" ± %.3f", rse)
		}
		corr := "-"
		if len(s.Spearman) > 0 {
			corr = fmt.Sprintf("%.3f", c)
			if !math.IsNaN(cse) {
				corr += fmt.Sprintf(" ± %.3f", cse)
			}
		}
		method := s.Method
		if method == "EP" {
			method = "EP (rates: its first pass, ADF)"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %.4f | %s |\n", s.Model.Name(), method, len(s.Rates), rate, gain, corr, s.Brier,
			(s.Duration / time.Duration(max(1, len(s.Rates)))).Round(time.Microsecond))
	}
	return b.String()
}

// ShuffleSummary describes a shuffle study in Markdown.
func ShuffleSummary(st *ShuffleStudy) string {
	r, rse := meanSE(st.Rates)
	return fmt.Sprintf("Over %d random orders: on average %.1f of %d teams change rank; the mean change is %.2f places, the largest %d; "+
		"rank correlation with the order played %.3f; prediction rate %.3f ± %.3f (as played: %.3f).",
		len(st.Ranks), st.Changed, len(st.BaseRanks), st.MeanAbsRankChange, st.MaxRankChange, st.Spearman, r, rse, st.Base.Rate())
}

// TableSizes are the sample counts of the exam's table of Gibbs estimates.
var TableSizes = []int{100, 200, 500, 1000, 2000, 4000}

// ModelSummary states the model of one match with p's numbers: p(y = 1) and the two
// conditionals of the Gibbs sampler at an example t.
func ModelSummary(p Params) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hyperparameters: s1 ~ N(%g, %.4g²), s2 ~ N(%g, %.4g²), t | s1, s2 ~ N(s1 - s2, %.4g²)\n", p.Mu1, p.Sigma1, p.Mu2, p.Sigma2, p.SigmaT)
	fmt.Fprintf(&b, "p(y = +1) = Phi((mu1 - mu2) / sqrt(sigma1² + sigma2² + sigmaT²)) = %.4f\n", PWin(p))
	q := p
	q.Mu1 += 5
	fmt.Fprintf(&b, "with mu1 = %g instead: p(y = +1) = %.4f\n", q.Mu1, PWin(q))
	t := 5.0
	m, c := SkillsGivenT(p, t)
	fmt.Fprintf(&b, "p(s1, s2 | t = %g) = N([%.4f, %.4f], [[%.4f, %.4f], [%.4f, %.4f]])\n", t, m[0], m[1], c[0][0], c[0][1], c[1][0], c[1][1])
	tr := TGivenSkills(p, 27, 24, 1)
	mm, _ := tr.Moments()
	fmt.Fprintf(&b, "p(t | s1 = 27, s2 = 24, y = +1) = N(3, %.4g²) truncated to t > 0: mean %.4f, variance %.4f\n", p.SigmaT, mm.Mean, mm.Var)
	return b.String()
}

// SeasonSummary states the prediction rate and, for a synthetic season, the recovery of
// the true skills by a rating.
func SeasonSummary(d *SeasonData, r *Rating) string {
	s := fmt.Sprintf("ADF over %d matches (%d draws skipped) in %s: one-step-ahead prediction rate %.3f (random guessing: 0.5).",
		len(d.Matches), r.Skipped, r.Duration.Round(time.Microsecond), r.Rate())
	if d.True != nil {
		s += fmt.Sprintf(" Rank correlation of the posterior means with the true skills: %.3f.", Spearman(r.Means(), d.True))
	}
	return s + "\n"
}

// Overrides are the flags of the notebook and of the command; a zero value keeps the
// preset's.
type Overrides struct {
	Preset                                 string
	Seed                                   uint64
	Samples, BurnIn, Orders, Seasons, Grid int
	CSV                                    string
}

// Config returns the preset's configuration with the overrides applied.
func (o Overrides) Config() (Config, error) {
	p, err := preset.Parse(o.Preset)
	if err != nil {
		return Config{}, err
	}
	cfg := PresetConfig(p)
	if o.Seed != 0 {
		cfg.Seed = o.Seed
	}
	cfg.CSV = o.CSV
	for _, v := range []struct {
		name string
		val  int
		dst  *int
	}{{"samples", o.Samples, &cfg.Samples}, {"burnin", o.BurnIn, &cfg.BurnIn}, {"orders", o.Orders, &cfg.Orders}, {"seasons", o.Seasons, &cfg.Seasons}, {"grid", o.Grid, &cfg.Grid}} {
		if v.val < 0 {
			return cfg, fmt.Errorf("trueskill: %s = %d: want >= 0 (0: the preset's)", v.name, v.val)
		}
		if v.val > 0 {
			*v.dst = v.val
		}
	}
	if cfg.Grid < 16 || cfg.Grid > 8192 {
		return cfg, fmt.Errorf("trueskill: grid = %d: want 16 to 8192", cfg.Grid)
	}
	if cfg.Samples > 10_000_000 {
		return cfg, fmt.Errorf("trueskill: samples = %d: want at most 10 million", cfg.Samples)
	}
	return cfg, nil
}
