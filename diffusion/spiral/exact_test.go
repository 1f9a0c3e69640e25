package spiral

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/metrics"
)

func testMixture(t testing.TB) *Mixture {
	m, err := NewMixture(DefaultMixture())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The exact score and its divergence are the gradient and Laplacian of log p_k: checked by
// central finite differences at several k of the exam's K = 200 grid.
func TestExactScoreMatchesFiniteDifferences(t *testing.T) {
	m := testMixture(t)
	p := DefaultProcess()
	rng := rand.New(rand.NewPCG(1, 1))
	for _, k := range []int{0, 1, 10, 50, 100, 200} {
		tk := float64(k) / 200
		a, s, err := p.Scales(tk)
		if err != nil {
			t.Fatal(err)
		}
		g := m.At(a, s)
		for range 20 {
			x, y := 2.5*(2*rng.Float64()-1), 2.5*(2*rng.Float64()-1)
			lp, sc, tr := g.Eval(x, y)
			h := 1e-4 * math.Sqrt(g.Variance)
			f := func(x, y float64) float64 { v, _, _ := g.Eval(x, y); return v }
			fx := (f(x+h, y) - f(x-h, y)) / (2 * h)
			fy := (f(x, y+h) - f(x, y-h)) / (2 * h)
			lap := (f(x+h, y) + f(x-h, y) + f(x, y+h) + f(x, y-h) - 4*lp) / (h * h)
			scale := math.Hypot(sc[0], sc[1]) + 1
			if math.Abs(fx-sc[0]) > 1e-4*scale || math.Abs(fy-sc[1]) > 1e-4*scale {
				t.Fatalf("k %d at (%.3f, %.3f): score %v, finite differences (%v, %v)", k, x, y, sc, fx, fy)
			}
			if math.Abs(lap-tr) > 1e-3*(math.Abs(tr)+1/g.Variance) {
				t.Fatalf("k %d at (%.3f, %.3f): trace %v, finite differences %v", k, x, y, tr, lap)
			}
		}
	}
	// The density integrates to 1 (a grid sum at k = 0).
	g := m.At(1, 0)
	sum, h := 0.0, 0.01
	for x := -3.0; x < 3; x += h {
		for y := -3.0; y < 3; y += h {
			v, _, _ := g.Eval(x, y)
			sum += math.Exp(v) * h * h
		}
	}
	if math.Abs(sum-1) > 1e-3 {
		t.Errorf("p0 integrates to %v", sum)
	}
}

// The exact model through the sampling core agrees with Eval, and the marginal at k = K is
// nearly N(0, I).
func TestExactModel(t *testing.T) {
	m := testMixture(t)
	e := Exact{Mixture: m, Process: DefaultProcess()}
	x := []float32{0.3, -0.2, 1.5, 0.1}
	s, err := e.Predict(x, []float64{0.1, 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// At t = 1 the score is -x up to alpha(1) mu ~ 0.013.
	if math.Abs(float64(s[2])+1.5) > 0.02 || math.Abs(float64(s[3])+0.1) > 0.02 {
		t.Errorf("score at t = 1: %v, want ~ -x", s[2:])
	}
	if _, err := e.Predict(x, []float64{0.1}, nil); err == nil {
		t.Error("mismatched times accepted")
	}
	if _, err := e.Predict(x[:2], []float64{1.5}, nil); err == nil {
		t.Error("time outside [0, 1] accepted")
	}
}

// Samples of the reverse SDE and of the PF-ODE with the exact score are as close to p0 as a
// fresh p0 set (distance within 1.5x the floor, mean log p0 within 0.05 nats); without the
// score they are not.
func TestExactSamplersReachP0(t *testing.T) {
	m := testMixture(t)
	p := DefaultProcess()
	n := 2000
	ref := m.Sample(n, rand.New(rand.NewPCG(10, 1)))
	fresh := m.Sample(n, rand.New(rand.NewPCG(11, 1)))
	floor, err := metrics.SlicedWasserstein(ref, fresh, Dim, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	floorLP, _ := m.MeanLogP0(fresh)
	for _, name := range []string{SDE, ODE, Heun} {
		run, err := Sample(Exact{Mixture: m, Process: p}, p, SampleOptions{N: n, K: 200, Sampler: name, Seed: 3, Snapshots: []int{200, 100, 0}})
		if err != nil {
			t.Fatal(err)
		}
		d, _ := metrics.SlicedWasserstein(ref, run.Points, Dim, 64, 1)
		lp, err := m.MeanLogP0(run.Points)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: SW %.4f (floor %.4f, ratio %.2f), mean log p0 %.3f (floor %.3f)", name, d, floor, d/floor, lp, floorLP)
		if d > 1.5*floor || math.Abs(lp-floorLP) > 0.05 {
			t.Errorf("%s: SW %.4f vs floor %.4f, mean log p0 %.3f vs %.3f", name, d, floor, lp, floorLP)
		}
		if len(run.Snapshots) != 3 || !equal(run.Snapshots[0], run.Points) {
			t.Errorf("%s: snapshots %d, last equal to the result: %v", name, len(run.Snapshots), equal(run.Snapshots[0], run.Points))
		}
	}
	run, err := Sample(NoScore{}, p, SampleOptions{N: n, K: 200, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := metrics.SlicedWasserstein(ref, run.Points, Dim, 64, 1)
	if d < 5*floor {
		t.Errorf("without the score: SW %.4f, floor %.4f", d, floor)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The PF-ODE log-likelihood of the exact score reproduces the mixture's log p0.
func TestExactLikelihoodMatchesLogP0(t *testing.T) {
	m := testMixture(t)
	p := DefaultProcess()
	x := m.Sample(200, rand.New(rand.NewPCG(4, 4)))
	// A few points off the spiral too.
	x = append(x, 0, 0, 1.2, -1.3, -2, 2)
	got, err := LogLikelihood(Exact{Mixture: m, Process: p}, p, x, LikelihoodOptions{Steps: 100})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.At(1, 0).LogDensity(x)
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(got[i]-want[i]))
	}
	t.Logf("worst |log-likelihood - log p0| over %d points: %.4f", len(got), worst)
	if worst > 0.02 {
		t.Errorf("PF-ODE log-likelihood differs from log p0 by up to %.4f nats", worst)
	}
}
