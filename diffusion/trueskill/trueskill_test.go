package trueskill

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// testParams are one-match settings: the exam's, an upset, unequal uncertainties and a
// far-tail case (a very strong favourite loses).
var testParams = []struct {
	p Params
	y int
}{
	{DefaultParams(), 1},
	{DefaultParams(), -1},
	{Params{Mu1: 30, Sigma1: 4, Mu2: 20, Sigma2: 7, SigmaT: 3}, -1},
	{Params{Mu1: 10, Sigma1: 2, Mu2: 25, Sigma2: 1, SigmaT: 25.0 / 6}, 1},
	{Params{Mu1: 60, Sigma1: 1, Mu2: 0, Sigma2: 1, SigmaT: 1}, -1},
}

// quad integrates f against the N(g) density by the trapezoid rule over g.Mean +- 12 SD
// restricted to (lo, hi); it returns the normaliser, mean and variance.
func quad(g Gaussian, lo, hi float64, n int) (z, mean, variance float64) {
	a, b := math.Max(lo, g.Mean-12*g.SD()), math.Min(hi, g.Mean+12*g.SD())
	h := (b - a) / float64(n)
	var s0, s1, s2 float64
	for i := 0; i <= n; i++ {
		x := a + float64(i)*h
		w := g.Density(x)
		if i == 0 || i == n {
			w /= 2
		}
		s0 += w
		s1 += w * x
		s2 += w * x * x
	}
	m := s1 / s0
	return s0 * h, m, s2/s0 - m*m
}

func TestTruncatedMomentsMatchQuadrature(t *testing.T) {
	inf := math.Inf(1)
	cases := []Truncated{
		{Gaussian{0, 1}, 0, inf}, {Gaussian{2, 4}, 0, inf}, {Gaussian{-3, 1}, 0, inf}, {Gaussian{-8, 1}, 0, inf},
		{Gaussian{1, 2}, -inf, 0}, {Gaussian{5, 1}, -inf, 0}, {Gaussian{0, 9}, 1, 3}, {Gaussian{4, 1}, -2, 0.5},
		{Gaussian{-1, 0.25}, 2, 2.5}, {Gaussian{10, 4}, 0, 3}, {Gaussian{0, 1}, -inf, inf},
	}
	for _, c := range cases {
		got, err := c.Moments()
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		// Quadrature over the interval only (dense grid: the truncated density may be
		// concentrated near an end).
		_, m, v := quad(c.Gaussian, c.Lo, c.Hi, 400000)
		if math.Abs(got.Mean-m) > 1e-6*math.Max(1, math.Abs(m)) || math.Abs(got.Var-v) > 1e-5*v {
			t.Errorf("%+v: moments %v, quadrature N(%g, %g)", c, got, m, v)
		}
	}
	// Far in the tail the one-sided formulas stay finite and sensible: x > 40 for N(0,1)
	// has mean ~ 40.025 and variance ~ 1/40^2.
	g, err := Truncated{Gaussian{0, 1}, 40, inf}.Moments()
	if err != nil || math.Abs(g.Mean-40.02494) > 1e-4 || g.Var <= 0 || g.Var > 1.0/1500 {
		t.Errorf("far tail: %v, %v", g, err)
	}
	for _, u := range []float64{1e-12, 0.5, 1 - 1e-12} {
		for _, mean := range []float64{-20, -100, -1e4} {
			x := (Truncated{Gaussian{mean, 1}, 0, inf}).Sample(u)
			// x - 0 ~ Exp(rate |mean|) this far in the tail: x = -log(u)/|mean|.
			if want := -math.Log(u) / -mean; !(x >= 0) || math.Abs(x-want) > 0.05*want+1e-3 {
				t.Errorf("sample of N(%g, 1) | t > 0 at u = %g: %g", mean, u, x)
			}
		}
	}
	if _, err := (Truncated{Gaussian{0, 1}, 1, 1}).Moments(); err == nil {
		t.Error("empty interval accepted")
	}
	if _, err := (Truncated{Gaussian{0, 0}, 0, inf}).Moments(); err == nil {
		t.Error("zero variance accepted")
	}
}

func TestExactMatchesAnalytic(t *testing.T) {
	for _, c := range testParams {
		e, err := ExactPosterior(c.p, c.y, 401)
		if err != nil {
			t.Fatal(err)
		}
		a1, a2, err := AnalyticPosterior(c.p, c.y)
		if err != nil {
			t.Fatal(err)
		}
		if d := MaxMomentDiff(e.Post1, e.Post2, a1, a2); d > 1e-7 {
			t.Errorf("%+v y=%d: grid %v %v, closed form %v %v (rel. diff %.2g)", c.p, c.y, e.Post1, e.Post2, a1, a2, d)
		}
		// The marginal densities integrate to one.
		h := e.S1[1] - e.S1[0]
		s := 0.0
		for _, v := range e.Marg1 {
			s += v * h
		}
		if math.Abs(s-1) > 1e-9 {
			t.Errorf("marginal of s1 integrates to %g", s)
		}
	}
}

func TestPWin(t *testing.T) {
	for _, c := range testParams[:4] {
		e, err := ExactPosterior(c.p, 1, 401)
		if err != nil {
			t.Fatal(err)
		}
		if got := PWin(c.p); math.Abs(got-e.PredictiveProb) > 1e-7 {
			t.Errorf("%+v: PWin %.10f, grid %.10f", c.p, got, e.PredictiveProb)
		}
	}
	if got := PWin(DefaultParams()); got != 0.5 {
		t.Errorf("equal players: PWin %g", got)
	}
}

func TestEPMatchesAnalytic(t *testing.T) {
	for _, c := range testParams {
		m, err := EP(c.p, c.y)
		if err != nil {
			t.Fatal(err)
		}
		a1, a2, err := AnalyticPosterior(c.p, c.y)
		if err != nil {
			t.Fatal(err)
		}
		if d := MaxMomentDiff(m.Post1, m.Post2, a1, a2); d > 1e-9 {
			t.Errorf("%+v y=%d: EP %v %v, closed form %v %v (rel. diff %.2g)", c.p, c.y, m.Post1, m.Post2, a1, a2, d)
		}
		// q(t) is the moment-matched truncation of the message to t.
		want, _ := SignTruncated(m.FtToT, c.y).Moments()
		if relDiff(m.Qt.Mean, want.Mean) > 1e-12 || relDiff(m.Qt.Var, want.Var) > 1e-12 {
			t.Errorf("q(t) = %v, want %v", m.Qt, want)
		}
		// The winner's skill goes up, the loser's down, both get more certain.
		if float64(c.y)*(m.Post1.Mean-c.p.Mu1) <= 0 || float64(c.y)*(m.Post2.Mean-c.p.Mu2) >= 0 || m.Post1.Var >= c.p.Sigma1*c.p.Sigma1 || m.Post2.Var >= c.p.Sigma2*c.p.Sigma2 {
			t.Errorf("%+v y=%d: posteriors %v %v move the wrong way", c.p, c.y, m.Post1, m.Post2)
		}
	}
	if _, err := EP(DefaultParams(), 0); err == nil {
		t.Error("outcome 0 accepted")
	}
	if _, err := EP(Params{Mu1: 0, Sigma1: -1, Sigma2: 1, SigmaT: 1}, 1); err == nil {
		t.Error("negative sigma accepted")
	}
}

func TestADFMatchesAnalytic(t *testing.T) {
	d, err := adfVersusFormula(PresetConfig("smoke"))
	if err != nil {
		t.Fatal(err)
	}
	if d > 1e-9 {
		t.Errorf("ADF differs from the closed form by %.2g", d)
	}
	// With a home advantage and margins, each update equals Gaussian conditioning on t:
	// mean_k += w_k v_k (m_hat - mu_t)/c^2, var_k -= w_k^2 v_k^2 (c^2 - v_hat)/c^4.
	m := ExtendedModel()
	skills := []Gaussian{{27, 30}, {22, 50}}
	home := Gaussian{1.5, 4}
	mt := Match{Team1: 0, Team2: 1, Score1: 0, Score2: 2}
	obs, _ := m.observation(mt)
	c2 := skills[0].Var + skills[1].Var + home.Var + m.SigmaT*m.SigmaT
	mu := skills[0].Mean - skills[1].Mean + home.Mean
	obs.Gaussian = Gaussian{mu, c2}
	q, err := obs.Moments()
	if err != nil {
		t.Fatal(err)
	}
	want := []Gaussian{}
	for k, g := range []Gaussian{skills[0], skills[1], home} {
		w := []float64{1, -1, 1}[k]
		want = append(want, Gaussian{g.Mean + w*g.Var*(q.Mean-mu)/c2, g.Var - w*w*g.Var*g.Var*(c2-q.Var)/(c2*c2)})
	}
	if _, err := m.update(skills, &home, mt); err != nil {
		t.Fatal(err)
	}
	got := []Gaussian{skills[0], skills[1], home}
	for k := range got {
		if relDiff(got[k].Mean, want[k].Mean) > 1e-9 || relDiff(got[k].Var, want[k].Var) > 1e-9 {
			t.Errorf("variable %d: ADF %v, conditioning %v", k, got[k], want[k])
		}
	}
}

func TestTruncatedSamplerMatchesMoments(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, mean := range []float64{3, 0, -1, -4, -12} {
		for _, y := range []float64{1, -1} {
			const n = 40000
			var s, s2 float64
			for range n {
				x := sampleSignTruncated(rng, y*mean, 2, y)
				if y*x <= 0 {
					t.Fatalf("sample %g on the wrong side", x)
				}
				s += x
				s2 += x * x
			}
			m, v := s/n, s2/n-(s/n)*(s/n)
			want, _ := SignTruncated(Gaussian{y * mean, 4}, int(y)).Moments()
			if math.Abs(m-want.Mean) > 5*want.SD()/math.Sqrt(n) || math.Abs(v-want.Var) > 5*want.Var*math.Sqrt(3.0/n) {
				t.Errorf("mean %g, y %g: samples N(%g, %g), want %v", y*mean, y, m, v, want)
			}
		}
	}
}

func TestGibbsMatchesExact(t *testing.T) {
	for i, c := range testParams[:4] {
		g, err := Gibbs(c.p, c.y, GibbsConfig{Samples: 20000, BurnIn: 100, Seed: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		e, err := ExactPosterior(c.p, c.y, 301)
		if err != nil {
			t.Fatal(err)
		}
		if z := GibbsZ(g, e); z > 4 {
			q1, q2 := g.Posterior(0)
			t.Errorf("%+v y=%d: Gibbs %v %v, exact %v %v: %.1f standard errors apart", c.p, c.y, q1, q2, e.Post1, e.Post2, z)
		}
		// The posterior correlation of s1 and s2 is positive (both explain the same t).
		if rho, want := g.Correlation(), e.Cov/math.Sqrt(e.Post1.Var*e.Post2.Var); math.Abs(rho-want) > 0.05 {
			t.Errorf("correlation %.3f, exact %.3f", rho, want)
		}
	}
	// A wrong sampler is caught: the prior alone is many standard errors away.
	e, _ := ExactPosterior(DefaultParams(), 1, 301)
	wrong, _ := Gibbs(DefaultParams(), -1, GibbsConfig{Samples: 20000, BurnIn: 100, Seed: 9})
	if z := GibbsZ(wrong, e); z < 10 {
		t.Errorf("Gibbs for y = -1 is only %.1f SE from the posterior for y = +1", z)
	}
}

func TestChooseBurnIn(t *testing.T) {
	g, err := Gibbs(DefaultParams(), 1, GibbsConfig{Samples: 1000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	b := ChooseBurnIn(g.S1, g.S2)
	if b < 10 || b > 200 {
		t.Errorf("burn-in %d for a chain that mixes in a few steps", b)
	}
	// A chain that sits far away for 300 steps needs at least that much burn-in.
	s1 := append(make([]float64, 0, 1300), g.S1...)
	s2 := append(make([]float64, 0, 1300), g.S2...)
	far1, far2 := make([]float64, 300), make([]float64, 300)
	for i := range far1 {
		far1[i], far2[i] = -100, 100
	}
	if b := ChooseBurnIn(append(far1, s1...), append(far2, s2...)); b < 300 {
		t.Errorf("burn-in %d for a chain stuck for 300 steps", b)
	}
	if _, err := Gibbs(DefaultParams(), 1, GibbsConfig{Samples: 0}); err == nil {
		t.Error("0 samples accepted")
	}
}

func TestESS(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	white := make([]float64, 5000)
	ar := make([]float64, 5000)
	for i := range white {
		white[i] = rng.NormFloat64()
		if i > 0 {
			ar[i] = 0.9*ar[i-1] + white[i]
		}
	}
	if e := ESS(white); e < 4000 || e > 6500 {
		t.Errorf("ESS of white noise %g of 5000", e)
	}
	// AR(1) with phi = 0.9: tau = (1 + phi)/(1 - phi) = 19.
	if e := ESS(ar); e < 5000/19.0/1.6 || e > 5000/19.0*1.6 {
		t.Errorf("ESS of AR(1) %g, want about %g", e, 5000/19.0)
	}
}

func TestRoundRobinAndGenerator(t *testing.T) {
	for _, n := range []int{2, 5, 20} {
		rounds := RoundRobin(n)
		seen := map[[2]int]bool{}
		for _, r := range rounds {
			inRound := map[int]bool{}
			for _, p := range r {
				if inRound[p[0]] || inRound[p[1]] {
					t.Fatalf("n=%d: a team plays twice in one round", n)
				}
				inRound[p[0]], inRound[p[1]] = true, true
				a, b := min(p[0], p[1]), max(p[0], p[1])
				if seen[[2]int{a, b}] {
					t.Fatalf("n=%d: pair %v twice", n, p)
				}
				seen[[2]int{a, b}] = true
			}
		}
		if len(seen) != n*(n-1)/2 {
			t.Errorf("n=%d: %d pairs, want %d", n, len(seen), n*(n-1)/2)
		}
	}
	syn, err := Generate(DefaultSynthetic())
	if err != nil {
		t.Fatal(err)
	}
	if len(syn.Matches) != 380 || len(syn.Teams) != 20 {
		t.Fatalf("%d matches of %d teams", len(syn.Matches), len(syn.Teams))
	}
	homeGames := map[[2]int]int{}
	hw, aw := 0, 0
	for _, m := range syn.Matches {
		homeGames[[2]int{m.Team1, m.Team2}]++
		switch m.Outcome() {
		case 1:
			hw++
		case -1:
			aw++
		}
	}
	if len(homeGames) != 380 {
		t.Errorf("every ordered pair should play once: %d distinct", len(homeGames))
	}
	if hw <= aw || syn.Draws() < 40 || syn.Draws() > 140 {
		t.Errorf("home wins %d, away wins %d, draws %d", hw, aw, syn.Draws())
	}
	if _, err := Generate(SyntheticConfig{Teams: 1, Legs: 1, GoalRate: 1}); err == nil {
		t.Error("one team accepted")
	}
	huge := DefaultSynthetic()
	huge.GoalScale = 50
	if _, err := Generate(huge); err == nil || !strings.Contains(err.Error(), "goal rates") {
		t.Errorf("overflowing goal rates: %v", err)
	}
}

// average runs f over seasons seeds and returns the mean of each of its results.
func average(t *testing.T, seasons int, f func(d *SeasonData) []float64) []float64 {
	t.Helper()
	var sum []float64
	cfg := PresetConfig("smoke")
	for k := range seasons {
		d, err := LoadSeason(cfg, k)
		if err != nil {
			t.Fatal(err)
		}
		r := f(d)
		if sum == nil {
			sum = make([]float64, len(r))
		}
		for i := range r {
			sum[i] += r[i] / float64(seasons)
		}
	}
	return sum
}

func TestPredictionBeatsRandom(t *testing.T) {
	rates := average(t, 20, func(d *SeasonData) []float64 {
		r, err := ADF(d.Season, nil, BasicModel())
		if err != nil {
			t.Fatal(err)
		}
		if r.Skipped != d.Draws() {
			t.Errorf("skipped %d of %d draws", r.Skipped, d.Draws())
		}
		return []float64{r.Rate()}
	})
	// 20 seasons of ~290 decided matches: random guessing gives 0.5 +- 0.007.
	if rates[0] < 0.6 {
		t.Errorf("basic ADF predicts %.3f of the winners", rates[0])
	}
}

func TestExtensionPredictsBetter(t *testing.T) {
	cfg := PresetConfig("smoke")
	cfg.Seasons = 60
	scores, err := CompareModels(cfg)
	if err != nil {
		t.Fatal(err)
	}
	basic, ext := scores[0], scores[3]
	if basic.Model.Name() != "basic" || ext.Model.Name() != "home advantage + margin" {
		t.Fatalf("scores in another order: %s, %s", basic.Model.Name(), ext.Model.Name())
	}
	// Paired by season: over 200 seasons the gain is +0.017 +- 0.002.
	if g, se := ext.RateGain(basic); g < 0.005 || g < 3*se {
		t.Errorf("home + margin predicts %+.4f +- %.4f better than basic", g, se)
	}
	if ext.Brier >= basic.Brier {
		t.Errorf("Brier score: home + margin %.4f, basic %.4f", ext.Brier, basic.Brier)
	}
	r := average(t, 20, func(d *SeasonData) []float64 {
		e, err := ADF(d.Season, nil, ExtendedModel())
		if err != nil {
			t.Fatal(err)
		}
		return []float64{e.Home.Mean}
	})
	if r[0] <= 0.5 {
		t.Errorf("learned home advantage %.2f: the synthetic seasons have one", r[0])
	}
}

func TestRecovery(t *testing.T) {
	r := average(t, 10, func(d *SeasonData) []float64 {
		b, _ := ADF(d.Season, nil, BasicModel())
		e, _ := ADF(d.Season, nil, ExtendedModel())
		ep, _, err := EPSeason(d.Season, BasicModel(), 50)
		if err != nil {
			t.Fatal(err)
		}
		return []float64{Spearman(b.Means(), d.True), Spearman(e.Means(), d.True), Spearman(ep.Means(), d.True)}
	})
	if r[0] < 0.8 || r[1] < r[0] || r[2] < 0.8 {
		t.Errorf("rank correlations: basic %.3f, extended %.3f, EP %.3f", r[0], r[1], r[2])
	}
}

func TestCalibration(t *testing.T) {
	var ratings []*Rating
	for k := range 20 {
		d, err := LoadSeason(PresetConfig("smoke"), k)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ADF(d.Season, nil, ExtendedModel())
		if err != nil {
			t.Fatal(err)
		}
		ratings = append(ratings, r)
	}
	bins, brier := Calibration(5, ratings...)
	if brier >= 0.23 {
		t.Errorf("Brier score %.4f", brier)
	}
	for _, b := range bins {
		if b.Count < 100 {
			continue
		}
		se := math.Sqrt(b.Observed*(1-b.Observed)/float64(b.Count)) + 0.01
		if math.Abs(b.Observed-b.Predicted) > 0.08+3*se {
			t.Errorf("bin %.1f-%.1f: predicted %.3f, observed %.3f of %d", b.Lo, b.Hi, b.Predicted, b.Observed, b.Count)
		}
	}
}

func TestEPSeasonIsOrderIndependent(t *testing.T) {
	d, err := LoadSeason(PresetConfig("smoke"), 0)
	if err != nil {
		t.Fatal(err)
	}
	shuffled := &Season{Teams: d.Teams}
	for _, i := range Shuffled(len(d.Matches), 7) {
		shuffled.Matches = append(shuffled.Matches, d.Matches[i])
	}
	a, na, err := EPSeason(d.Season, BasicModel(), 2000)
	if err != nil {
		t.Fatal(err)
	}
	b, nb, err := EPSeason(shuffled, BasicModel(), 2000)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range a.Skills {
		worst = max(worst, math.Abs(a.Skills[i].Mean-b.Skills[i].Mean))
	}
	if worst > 1e-4 || na >= 2000 || nb >= 2000 {
		t.Errorf("EP after %d and %d sweeps differs by %.2g between orders", na, nb, worst)
	}
	// ADF does depend on the order.
	st, err := StudyShuffles(d.Season, BasicModel(), 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if st.Changed == 0 || st.Spearman > 0.9999 || st.Spearman < 0.5 {
		t.Errorf("shuffling: %.1f teams changed rank, correlation %.3f", st.Changed, st.Spearman)
	}
}

func TestCSVRoundTripAndErrors(t *testing.T) {
	syn, err := Generate(DefaultSynthetic())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, &syn.Season); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Matches) != 380 || len(got.Teams) != 20 {
		t.Fatalf("read back %d matches of %d teams", len(got.Matches), len(got.Teams))
	}
	for i, m := range got.Matches {
		o := syn.Matches[i]
		if got.Teams[m.Team1] != syn.Teams[o.Team1] || got.Teams[m.Team2] != syn.Teams[o.Team2] || m.Score1 != o.Score1 || m.Score2 != o.Score2 {
			t.Fatalf("match %d: %+v, want %+v", i, m, o)
		}
	}
	// The exam's file layout: extra columns, another order.
	exam := "yyyy-mm-dd,HH:MM,team1,team2,score1,score2\n2018-08-18,18:00,Chievo,Juventus,2,3\n2018-08-18,20:30,Lazio,Napoli,1,2\n"
	s, err := ReadCSV(strings.NewReader(exam))
	if err != nil || len(s.Matches) != 2 || s.Teams[s.Matches[0].Team2] != "Juventus" || s.Matches[1].Score2 != 2 {
		t.Fatalf("exam layout: %+v, %v", s, err)
	}
	for _, c := range []struct{ in, want string }{
		{"", "empty"},
		{"team1,team2,score1\nA,B,1\n", `no column "score2"`},
		{"team1,team2,score1,score2\n", "no matches"},
		{"team1,team2,score1,score2\nA,B,1,x\n", `line 2: score2 = "x"`},
		{"team1,team2,score1,score2\nA,B,1,2\nA,B,-1,2\n", `line 3: score1 = "-1"`},
		{"team1,team2,score1,score2\nA,A,1,2\n", "both \"A\""},
		{"team1,team2,score1,score2\nA,,1,2\n", "line 2: empty team name"},
		{"team1,team2,score1,score2\nA,B,1\n", "wrong number of fields"},
		{"team1,team1,score1,score2\n", "twice"},
		{"team1,team2,score1,score2\nA,\"B,1,2\n", "quote"},
	} {
		_, err := ReadCSV(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.in, err, c.want)
		}
	}
}

// FuzzReadCSV checks that any input gives either a clear error or a valid season that
// writes and reads back unchanged, never a panic.
func FuzzReadCSV(f *testing.F) {
	f.Add("team1,team2,score1,score2\nA,B,1,0\nB,A,2,2\n")
	f.Add("yyyy-mm-dd,HH:MM,team1,team2,score1,score2\n2018-08-18,18:00,Chievo,Juventus,2,3\n")
	f.Add("team1,team2,score1,score2\nA,B,1\n")
	f.Add("score2,score1,team2,team1\n0,1,\"B \"\"x\"\"\",A\n")
	f.Add("\ufeffTeam1 , Team2,Score1,Score2\r\nA,B,01,+2\r\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ReadCSV(strings.NewReader(in))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted an invalid season: %v", err)
		}
		var buf bytes.Buffer
		if err := WriteCSV(&buf, s); err != nil {
			t.Fatal(err)
		}
		back, err := ReadCSV(&buf)
		if err != nil {
			t.Fatalf("written season does not read back: %v", err)
		}
		if len(back.Matches) != len(s.Matches) || len(back.Teams) != len(s.Teams) {
			t.Fatalf("round trip: %d/%d matches, %d/%d teams", len(back.Matches), len(s.Matches), len(back.Teams), len(s.Teams))
		}
		for i, m := range back.Matches {
			o := s.Matches[i]
			if back.Teams[m.Team1] != s.Teams[o.Team1] || back.Teams[m.Team2] != s.Teams[o.Team2] || m.Score1 != o.Score1 || m.Score2 != o.Score2 {
				t.Fatalf("match %d: %+v, want %+v", i, m, o)
			}
		}
	})
}

func TestFigures(t *testing.T) {
	cfg := PresetConfig("smoke")
	ms, err := StudyMatch(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := LoadSeason(cfg, 0)
	st, err := StudyShuffles(d.Season, BasicModel(), 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	bins, _ := Calibration(10, st.Base)
	for name, f := range map[string]func() ([]byte, error){
		"factor graph": FactorGraphFigure,
		"trace":        func() ([]byte, error) { return TraceFigure(ms.Gibbs, 300) },
		"histogram":    func() ([]byte, error) { return HistogramFigure(ms.Gibbs) },
		"compare":      func() ([]byte, error) { return CompareFigure(ms.Gibbs, ms.EP, ms.Exact) },
		"shuffle":      func() ([]byte, error) { return ShuffleFigure(st, "orders") },
		"calibration":  func() ([]byte, error) { return CalibrationFigure("c", 1, CalibrationCurve{"basic", bins}) },
	} {
		png, err := f()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG")) || len(png) < 5000 {
			t.Errorf("%s: %d bytes, not a PNG figure", name, len(png))
		}
	}
}

func BenchmarkADFSeason(b *testing.B) {
	syn, err := Generate(DefaultSynthetic())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ADF(&syn.Season, nil, BasicModel()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGibbs4000(b *testing.B) {
	for b.Loop() {
		if _, err := Gibbs(DefaultParams(), 1, GibbsConfig{Samples: 4000, BurnIn: 100, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSkillsGivenTIsGaussianConditioning(t *testing.T) {
	for _, c := range testParams {
		p := c.p
		v1, v2, vt := p.Sigma1*p.Sigma1, p.Sigma2*p.Sigma2, p.SigmaT*p.SigmaT
		// (s1, s2, t) is jointly Gaussian: cov(s, t) = (v1, -v2), var t = v1 + v2 + vt.
		ct := [2]float64{v1, -v2}
		vtt := v1 + v2 + vt
		for _, tv := range []float64{-7, 0, 3.5} {
			mean, cov := SkillsGivenT(p, tv)
			mu := [2]float64{p.Mu1, p.Mu2}
			for i := range 2 {
				want := mu[i] + ct[i]/vtt*(tv-(p.Mu1-p.Mu2))
				if relDiff(mean[i], want) > 1e-12 {
					t.Errorf("%+v t=%g: mean[%d] %g, want %g", p, tv, i, mean[i], want)
				}
				for j := range 2 {
					w := -ct[i] * ct[j] / vtt
					if i == j {
						w += []float64{v1, v2}[i]
					}
					if relDiff(cov[i][j], w) > 1e-12 {
						t.Errorf("%+v: cov[%d][%d] %g, want %g", p, i, j, cov[i][j], w)
					}
				}
			}
		}
	}
}
