package sampling

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// setup is one process with a grid builder for the tests.
type setup struct {
	name string
	p    Process
	grid func(steps int) ([]float64, error)
	kind Prediction // the natural prediction of its models
}

func setups(t testing.TB) []setup {
	cos := mustSchedule(t, schedule.CosineConfig(1000))
	return []setup{
		{"discrete-cosine", Discrete{cos}, func(s int) ([]float64, error) { return EvenGrid(1000, s) }, Noise},
		{"vpsde", VPSDE{BetaMin: 0.1, BetaMax: 20}, func(s int) ([]float64, error) { return UniformGrid(1, 0, s) }, Score},
		{"flow", Flow{}, func(s int) ([]float64, error) { return UniformGrid(0, 1, s) }, Velocity},
	}
}

// TestDeterministicSamplersConverge runs the deterministic samplers on the exact Gaussian
// denoiser and checks them against the exact probability-flow map: the error must shrink
// with more steps and be small at 200 steps, and the second-order samplers must show their
// order (error / 10 steps ratio >= 25 from 20 to 200 steps; first order gives ~10). Euler
// and Heun on Discrete are not checked for order: its derivatives are per-unit-step
// differences of the schedule, consistent only to O(1/T) (use DDIM or DPM-Solver++ there).
func TestDeterministicSamplersConverge(t *testing.T) {
	samplers := []struct {
		name   string
		f      Sampler
		second bool
	}{
		{"ddim", func(m Model, o Options) ([]float32, error) { return DDIM(m, o, 0) }, false},
		{"euler", EulerODE, false}, {"heun", HeunODE, true}, {"dpm++2m", DPMSolverPP2M, true},
	}
	const n, d = 200, 2
	for _, su := range setups(t) {
		for _, sm := range samplers {
			var e []float64
			for _, steps := range []int{5, 20, 200} {
				grid := must[[]float64](t)(su.grid(steps))
				m := &gaussModel{p: su.p, mus: [][]float64{testMu()}, s: testS, kind: su.kind}
				var start []float32
				o := Options{N: n, Dim: d, Process: su.p, Grid: grid, Seed: 3, Callback: func(s *Step) error {
					if s.Index == 0 {
						start = slices.Clone(s.X)
					}
					return nil
				}}
				out, err := sm.f(m, o)
				if err != nil {
					t.Fatalf("%s %s %d steps: %v", su.name, sm.name, steps, err)
				}
				from := must[Scales](t)(su.p.Scales(grid[0]))
				to := must[Scales](t)(su.p.Scales(grid[len(grid)-1]))
				e = append(e, rmsDiff(out, exactFlowMap(start, d, testMu(), testS, from, to)))
			}
			t.Logf("%-15s %-8s rms error vs the exact flow map at 5/20/200 steps: %.2e %.2e %.2e", su.name, sm.name, e[0], e[1], e[2])
			if !(e[2] < e[1] && e[1] < e[0]) {
				t.Errorf("%s %s: the error does not shrink with steps: %v", su.name, sm.name, e)
			}
			if e[2] > 0.01 {
				t.Errorf("%s %s: error %g at 200 steps", su.name, sm.name, e[2])
			}
			if sm.second && !(su.name == "discrete-cosine" && sm.name == "heun") && e[1]/e[2] < 25 {
				t.Errorf("%s %s: error ratio %.1f from 20 to 200 steps, want >= 25 (second order)", su.name, sm.name, e[1]/e[2])
			}
		}
	}
}

// TestPredictionKindsAgree samples the same Gaussian with the four prediction kinds of its
// exact denoiser: the conversions must make the results equal.
func TestPredictionKindsAgree(t *testing.T) {
	for _, su := range setups(t) {
		grid := must[[]float64](t)(su.grid(20))
		var ref []float32
		for _, kind := range []Prediction{Noise, X0, Score, Velocity} {
			if su.name == "flow" && (kind == Noise || kind == Score) {
				continue // at tau = 0 (alpha = 0) x0 cannot be recovered from eps; tested in TestErrors
			}
			m := &gaussModel{p: su.p, mus: [][]float64{testMu()}, s: testS, kind: kind}
			out, err := DPMSolverPP2M(m, Options{N: 50, Dim: 2, Process: su.p, Grid: grid, Seed: 1})
			if err != nil {
				t.Fatalf("%s %s: %v", su.name, kind, err)
			}
			if ref == nil {
				ref = out
			} else if d := maxAbsDiff(ref, out); d > 2e-4 {
				t.Errorf("%s: %s prediction differs from the first kind by %g", su.name, kind, d)
			}
		}
	}
}

// chainMoments propagates the mean and variance of one coordinate (data N(mu, s^2)) exactly
// through a sampler made of Updates with the exact Gaussian denoiser: x0 and eps are affine
// in x, so x' = g x + c + Noise z.
func chainMoments(t *testing.T, p Process, grid []float64, upd func(cur, next Scales, dt float64, last bool) Update, mu, s float64) (mean, variance float64) {
	mean, variance = 0, 1
	for i := 0; i+1 < len(grid); i++ {
		cur, next := must[Scales](t)(p.Scales(grid[i])), must[Scales](t)(p.Scales(grid[i+1]))
		u := upd(cur, next, grid[i+1]-grid[i], i+2 == len(grid))
		v := cur.Alpha*cur.Alpha*s*s + cur.Sigma*cur.Sigma
		k, e := cur.Alpha*s*s/v, cur.Sigma/v // x0 = mu + k y, eps = e y, y = x - alpha mu
		g := u.X + u.X0*k + u.Eps*e
		mean = u.X*mean + u.X0*(mu+k*(mean-cur.Alpha*mu)) + u.Eps*e*(mean-cur.Alpha*mu)
		variance = g*g*variance + u.Noise*u.Noise
	}
	return mean, variance
}

// TestStochasticSamplersMatchData checks the output mean and variance of the stochastic
// samplers (4000 samples) against the exact moments of their discretized chain within
// Monte-Carlo error (mean: 5 standard errors; variance: 5 standard errors of a Gaussian
// sample variance), and the exact moments against the data N(mu, s^2 I): with many steps
// they agree; 50 strided ancestral steps lose ~15% of the variance (the posterior variance
// ignores Var[x0 | x_t]), which the test reports.
func TestStochasticSamplersMatchData(t *testing.T) {
	lin := Discrete{mustSchedule(t, schedule.DefaultConfig())}
	full := must[[]float64](t)(EvenGrid(500, 500))
	strided := must[[]float64](t)(StridedGrid(500, 10))
	vp := VPSDE{BetaMin: 0.1, BetaMax: 20}
	k500 := must[[]float64](t)(UniformGrid(1, 0, 500))
	ancestral := func(v Variance) func(cur, next Scales, dt float64, last bool) Update {
		return func(cur, next Scales, _ float64, last bool) Update {
			u := must[Update](t)(AncestralUpdate(cur, next, v))
			if last {
				u.Noise = 0
			}
			return u
		}
	}
	em := func(cur, _ Scales, dt float64, last bool) Update {
		u := must[Update](t)(EulerMaruyamaUpdate(cur, dt))
		if last {
			u.Noise = 0
		}
		return u
	}
	cases := []struct {
		name    string
		p       Process
		grid    []float64
		kind    Prediction
		f       Sampler
		upd     func(cur, next Scales, dt float64, last bool) Update
		dataTol float64 // |exact chain moments - data moments|
	}{
		{"ancestral-beta", lin, full, Noise, func(m Model, o Options) ([]float32, error) { return Ancestral(m, o, BetaVariance) }, ancestral(BetaVariance), 0.01},
		{"ancestral-posterior", lin, full, Noise, func(m Model, o Options) ([]float32, error) { return Ancestral(m, o, PosteriorVariance) }, ancestral(PosteriorVariance), 0.01},
		{"ancestral-strided", lin, strided, Noise, func(m Model, o Options) ([]float32, error) { return Ancestral(m, o, PosteriorVariance) }, ancestral(PosteriorVariance), 0.05},
		{"ddim-eta1-strided", lin, strided, X0, func(m Model, o Options) ([]float32, error) { return DDIM(m, o, 1) },
			func(cur, next Scales, _ float64, last bool) Update {
				return DDIMUpdate(cur, next, map[bool]float64{false: 1, true: 0}[last])
			}, 0.05},
		{"euler-maruyama-vpsde", vp, k500, Score, EulerMaruyama, em, 0.01},
		{"euler-maruyama-discrete", lin, full, Noise, EulerMaruyama, em, 0.01},
	}
	const n, d = 4000, 2
	for _, c := range cases {
		m := &gaussModel{p: c.p, mus: [][]float64{testMu()}, s: testS, kind: c.kind}
		out, err := c.f(m, Options{N: n, Dim: d, Process: c.p, Grid: c.grid, Seed: 11})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		mean, variance := moments(out, d)
		for j := range d {
			em, ev := chainMoments(t, c.p, c.grid, c.upd, testMu()[j], testS)
			t.Logf("%-24s dim %d: mean %.4f (chain %.4f, data %.2f)  var %.4f (chain %.4f, data %.4f)", c.name, j, mean[j], em, testMu()[j], variance[j], ev, testS*testS)
			if math.Abs(mean[j]-em) > 5*math.Sqrt(ev/n) || math.Abs(variance[j]-ev) > 5*ev*math.Sqrt(2.0/n) {
				t.Errorf("%s: dim %d mean %g var %g, the chain's exact moments are %g, %g", c.name, j, mean[j], variance[j], em, ev)
			}
			if math.Abs(em-testMu()[j]) > c.dataTol || math.Abs(ev-testS*testS) > c.dataTol {
				t.Errorf("%s: dim %d: the chain's moments %g, %g are far from the data's %g, %g", c.name, j, em, ev, testMu()[j], testS*testS)
			}
		}
	}
}

// TestDDIMEta1IsAncestralPosterior: DDIM with eta = 1 is the ancestral sampler with the
// posterior variance, draw for draw.
func TestDDIMEta1IsAncestralPosterior(t *testing.T) {
	p := Discrete{mustSchedule(t, schedule.CosineConfig(1000))}
	grid := must[[]float64](t)(StridedGrid(1000, 30))
	m := &gaussModel{p: p, mus: [][]float64{testMu()}, s: testS, kind: Noise}
	o := Options{N: 100, Dim: 2, Process: p, Grid: grid, Seed: 5}
	a := must[[]float32](t)(DDIM(m, o, 1))
	b := must[[]float32](t)(Ancestral(m, o, PosteriorVariance))
	if d := maxAbsDiff(a, b); d > 2e-5 {
		t.Errorf("DDIM(eta=1) and Ancestral(posterior) differ by %g", d)
	}
}

// TestEulerIsDDIMOnFlow: on the straight flow path, an Euler step is the deterministic DDIM step.
func TestEulerIsDDIMOnFlow(t *testing.T) {
	grid := must[[]float64](t)(UniformGrid(0, 1, 10))
	m := &gaussModel{p: Flow{}, mus: [][]float64{testMu()}, s: testS, kind: Velocity}
	o := Options{N: 100, Dim: 2, Process: Flow{}, Grid: grid, Seed: 5}
	a := must[[]float32](t)(EulerODE(m, o))
	b := must[[]float32](t)(DDIM(m, o, 0))
	if d := maxAbsDiff(a, b); d > 1e-5 {
		t.Errorf("Euler and DDIM differ on Flow by %g", d)
	}
}

// TestDeterministicInSeed: the same seed gives the same samples, another seed others, and
// sample i does not depend on the number of samples.
func TestDeterministicInSeed(t *testing.T) {
	p := Discrete{mustSchedule(t, schedule.DefaultConfig())}
	grid := must[[]float64](t)(EvenGrid(500, 50))
	m := &gaussModel{p: p, mus: [][]float64{testMu()}, s: testS, kind: Noise}
	for _, name := range SamplerNames() {
		f := must[Sampler](t)(SamplerByName(name, 0.5))
		o := Options{N: 20, Dim: 2, Process: p, Grid: grid, Seed: 7}
		a := must[[]float32](t)(f(m, o))
		b := must[[]float32](t)(f(m, o))
		if !slices.Equal(a, b) {
			t.Errorf("%s: two runs with one seed differ", name)
		}
		o.Seed = 8
		if c := must[[]float32](t)(f(m, o)); slices.Equal(a, c) {
			t.Errorf("%s: seeds 7 and 8 give the same samples", name)
		}
		o.Seed, o.N = 7, 10
		if c := must[[]float32](t)(f(m, o)); !slices.Equal(a[:20], c) {
			t.Errorf("%s: the first 10 samples depend on N", name)
		}
	}
}

// TestUpdateCoefficients checks the exported step coefficients against the formulas of the
// existing samplers (ddpm.Sample, ddpm.SampleDDIM, imagediff's ddimCoefficients), which a
// fused in-graph fast path can take from here.
func TestUpdateCoefficients(t *testing.T) {
	s := mustSchedule(t, schedule.DefaultConfig())
	p := Discrete{s}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*(1+math.Abs(b)) }
	for _, k := range []int{0, 1, 100, 499} {
		cur, next := must[Scales](t)(p.Scales(float64(k))), must[Scales](t)(p.Scales(float64(k-1)))
		u := must[Update](t)(AncestralUpdate(cur, next, BetaVariance))
		cx, ce, sd := u.NoiseForm(cur)
		if !near(cx, 1/math.Sqrt(s.Alphas[k])) || !near(ce, -s.Betas[k]/math.Sqrt(1-s.AlphaBars[k])/math.Sqrt(s.Alphas[k])) || !near(sd, math.Sqrt(s.Betas[k])) {
			t.Errorf("k=%d: ancestral (beta) noise form %g %g %g", k, cx, ce, sd)
		}
		u = must[Update](t)(AncestralUpdate(cur, next, PosteriorVariance))
		if _, _, sd = u.NoiseForm(cur); !near(sd, math.Sqrt(s.PosteriorVariance(k))) {
			t.Errorf("k=%d: posterior std %g want %g", k, sd, math.Sqrt(s.PosteriorVariance(k)))
		}
		// ddpm.SampleDDIM: x' = sqrt(abar_p) (x - sqrt(1-abar) eps) / sqrt(abar) + sqrt(1-abar_p) eps.
		sa, s1a, sp, s1p := math.Sqrt(s.AlphaBars[k]), math.Sqrt(1-s.AlphaBars[k]), math.Sqrt(s.AlphaBarPrev(k)), math.Sqrt(1-s.AlphaBarPrev(k))
		cx, ce, sd = DDIMUpdate(cur, next, 0).NoiseForm(cur)
		if !near(cx, sp/sa) || !near(ce, s1p-sp*s1a/sa) || sd != 0 {
			t.Errorf("k=%d: DDIM noise form %g %g %g", k, cx, ce, sd)
		}
	}
	// imagediff's strided DDIM with eta: sigma = eta sqrt((1-abar')/(1-abar) (1 - abar/abar')).
	cur, next := must[Scales](t)(p.Scales(400)), must[Scales](t)(p.Scales(300))
	abar, abarP, eta := s.AlphaBars[400], s.AlphaBars[300], 0.7
	u := DDIMUpdate(cur, next, eta)
	sig := eta * math.Sqrt((1-abarP)/(1-abar)*(1-abar/abarP))
	if !near(u.Noise, sig) || !near(u.Eps, math.Sqrt(1-abarP-sig*sig)) || !near(u.X0, math.Sqrt(abarP)) {
		t.Errorf("strided DDIM coefficients %+v, want noise %g", u, sig)
	}
	if _, err := AncestralUpdate(cur, next, "wide"); err == nil {
		t.Error("unknown variance: want an error")
	}
}

// TestStartFromInput: starting from an input at grid index 0 reproduces ordinary sampling
// (Flow: alpha = 0 there; Discrete: the initial noise passed as an already-noised start),
// SDEdit from a late index stays near its input and takes the remaining steps only.
func TestStartFromInput(t *testing.T) {
	grid := must[[]float64](t)(UniformGrid(0, 1, 10))
	fm := &gaussModel{p: Flow{}, mus: [][]float64{testMu()}, s: testS, kind: Velocity}
	o := Options{N: 30, Dim: 2, Process: Flow{}, Grid: grid, Seed: 2}
	plain := must[[]float32](t)(EulerODE(fm, o))
	o.XStart = make([]float32, 60)
	for i := range o.XStart {
		o.XStart[i] = 5
	}
	if got := must[[]float32](t)(EulerODE(fm, o)); !slices.Equal(plain, got) {
		t.Errorf("flow: start from an input at index 0 differs from plain sampling by %g", maxAbsDiff(plain, got))
	}

	p := Discrete{mustSchedule(t, schedule.DefaultConfig())}
	dgrid := must[[]float64](t)(EvenGrid(500, 500))
	m := &gaussModel{p: p, mus: [][]float64{testMu()}, s: testS, kind: Noise}
	var noise []float32
	o = Options{N: 30, Dim: 2, Process: p, Grid: dgrid, Seed: 2, Callback: func(s *Step) error {
		if s.Index == 0 {
			noise = slices.Clone(s.X)
		}
		return nil
	}}
	plain = must[[]float32](t)(Ancestral(m, o, BetaVariance))
	o.Callback, o.XStart, o.XStartNoised = nil, noise, true
	if got := must[[]float32](t)(Ancestral(m, o, BetaVariance)); !slices.Equal(plain, got) {
		t.Errorf("discrete: start from the noise at index 0 differs from plain sampling by %g", maxAbsDiff(plain, got))
	}

	// SDEdit: (3, 3) noised to k = 20 of 500 comes back near (3, 3), in 21 steps.
	o = Options{N: 30, Dim: 2, Process: p, Grid: dgrid, Seed: 2, XStart: make([]float32, 60), StartIndex: 479}
	for i := range o.XStart {
		o.XStart[i] = 3
	}
	steps, counted := 0, 0
	o.Callback = func(s *Step) error {
		steps = s.Steps
		if s.Index > 0 {
			counted++
		}
		return nil
	}
	out := must[[]float32](t)(Ancestral(m, o, BetaVariance))
	mean, _ := moments(out, 2)
	if steps != 21 || counted != 21 {
		t.Errorf("SDEdit from index 479 of 500: %d steps reported, %d taken; want 21", steps, counted)
	}
	if math.Abs(mean[0]-3) > 0.3 || math.Abs(mean[1]-3) > 0.3 {
		t.Errorf("SDEdit from a small noise level moved the input (3, 3) to %v", mean)
	}
	// From index 0 the input is forgotten: the output follows the data.
	o.StartIndex, o.N, o.XStart, o.Callback = 0, 2000, make([]float32, 4000), nil
	out = must[[]float32](t)(Ancestral(m, o, BetaVariance))
	if mean, _ = moments(out, 2); math.Abs(mean[0]-testMu()[0]) > 0.05 || math.Abs(mean[1]-testMu()[1]) > 0.05 {
		t.Errorf("SDEdit from index 0: mean %v, want the data's %v", mean, testMu())
	}
}

// TestInpaint: the known values are exactly the originals after the last step, the hook runs
// after every step, and the generated values follow the model.
func TestInpaint(t *testing.T) {
	p := Discrete{mustSchedule(t, schedule.DefaultConfig())}
	grid := must[[]float64](t)(StridedGrid(500, 25))
	const n, d = 500, 4
	m := &gaussModel{p: p, mus: [][]float64{{1, -0.5, 1, -0.5}}, s: testS, kind: Noise}
	known, mask := make([]float32, n*d), make([]float32, n*d)
	for i := range known {
		known[i] = float32(i%7) * 0.37
		mask[i] = float32(i % 2) // odd values generated
	}
	project := must[Hook](t)(Inpaint(known, mask))
	var idx []int
	o := Options{N: n, Dim: d, Process: p, Grid: grid, Seed: 4, Project: func(s *Step) error {
		idx = append(idx, s.Index)
		return project(s)
	}}
	out := must[[]float32](t)(Ancestral(m, o, PosteriorVariance))
	for i := range out {
		if mask[i] == 0 && out[i] != known[i] {
			t.Fatalf("known value %d is %g, want exactly %g", i, out[i], known[i])
		}
	}
	if len(idx) != len(grid)-1 || idx[0] != 1 || idx[len(idx)-1] != len(grid)-1 {
		t.Errorf("projection called at steps %v, want 1 .. %d", idx, len(grid)-1)
	}
	var gen []float32
	for i, v := range out {
		if mask[i] == 1 {
			gen = append(gen, v)
		}
	}
	mean, _ := moments(gen, 2)
	if math.Abs(mean[0]+0.5) > 0.1 || math.Abs(mean[1]+0.5) > 0.1 {
		t.Errorf("generated values: mean %v, want -0.5", mean)
	}
	if _, err := Inpaint(known, mask[:3]); err == nil {
		t.Error("Inpaint with a short mask: want an error")
	}
}

// TestCallback: frames at Index 0 .. S with the grid times, X0 after every step, and an
// error from the callback stops the sampler and is returned.
func TestCallback(t *testing.T) {
	grid := must[[]float64](t)(UniformGrid(0, 1, 8))
	m := &gaussModel{p: Flow{}, mus: [][]float64{testMu()}, s: testS, kind: Velocity}
	var got []string
	o := Options{N: 3, Dim: 2, Process: Flow{}, Grid: grid, Callback: func(s *Step) error {
		got = append(got, fmt.Sprintf("%d/%d@%g:%v", s.Index, s.Steps, s.T, s.X0 != nil))
		return nil
	}}
	must[[]float32](t)(HeunODE(m, o))
	if len(got) != 9 || got[0] != "0/8@0:false" || got[8] != "8/8@1:true" {
		t.Errorf("callback steps %v", got)
	}
	stop := errors.New("stop")
	o.Callback = func(s *Step) error {
		if s.Index == 3 {
			return stop
		}
		return nil
	}
	if _, err := HeunODE(m, o); !errors.Is(err, stop) {
		t.Errorf("callback error: got %v", err)
	}
}

// TestClip: clipped x0 estimates keep every final sample in the range.
func TestClip(t *testing.T) {
	p := Discrete{mustSchedule(t, schedule.DefaultConfig())}
	grid := must[[]float64](t)(EvenGrid(500, 20))
	m := &gaussModel{p: p, mus: [][]float64{{0, 0}}, s: 2, kind: Noise}
	out := must[[]float32](t)(DDIM(m, Options{N: 500, Dim: 2, Process: p, Grid: grid, Clip: &Range{-1, 1}}, 0))
	for i, v := range out {
		if v < -1-1e-5 || v > 1+1e-5 {
			t.Fatalf("sample value %d = %g outside the clip range", i, v)
		}
	}
}

// A model that returns NaN makes every sampler fail with an error naming the sample, instead
// of returning NaN samples.
func TestNonFiniteSamplesAreErrors(t *testing.T) {
	p := Discrete{mustSchedule(t, schedule.DefaultConfig())}
	grid := must[[]float64](t)(EvenGrid(500, 10))
	nan := FuncModel{Kind: Noise, Func: func(x []float32, ts []float64, _ []int) ([]float32, error) {
		out := make([]float32, len(x))
		out[len(out)-1] = float32(math.NaN())
		return out, nil
	}}
	for _, name := range SamplerNames() {
		s := must[Sampler](t)(SamplerByName(name, 0))
		_, err := s(nan, Options{N: 3, Dim: 2, Process: p, Grid: grid, Seed: 1})
		if err == nil || !strings.Contains(err.Error(), "sample 2") || !strings.Contains(err.Error(), "non-finite") {
			t.Errorf("%s: %v, want a non-finite error naming sample 2", name, err)
		}
	}
}
