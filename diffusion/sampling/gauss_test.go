package sampling

import (
	"math"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// gaussModel is the exact denoiser of Gaussian data N(mu_c, s^2 I) under a process: with
// v = alpha^2 s^2 + sigma^2 and y = x - alpha mu, E[eps | x_t] = sigma y / v,
// E[x0 | x_t] = mu + alpha s^2 y / v, score = -y / v, velocity = alpha' x0 + sigma' eps.
// mus[0] is the mean of unconditional calls (cond < 0 or nil), mus[c+1] that of class c.
type gaussModel struct {
	p     Process
	mus   [][]float64
	s     float64
	kind  Prediction
	calls int
	sizes []int // samples per call
}

func (g *gaussModel) Predicts() Prediction { return g.kind }

func (g *gaussModel) Predict(x []float32, t []float64, cond []int) ([]float32, error) {
	g.calls++
	g.sizes = append(g.sizes, len(t))
	d := len(x) / len(t)
	out := make([]float32, len(x))
	var sc Scales
	for i := range t {
		if i == 0 || t[i] != t[i-1] {
			var err error
			if sc, err = g.p.Scales(t[i]); err != nil {
				return nil, err
			}
		}
		mu := g.mus[0]
		if cond != nil && cond[i] >= 0 {
			mu = g.mus[cond[i]+1]
		}
		v := sc.Alpha*sc.Alpha*g.s*g.s + sc.Sigma*sc.Sigma
		for j := range d {
			y := float64(x[i*d+j]) - sc.Alpha*mu[j]
			eps, x0 := sc.Sigma*y/v, mu[j]+sc.Alpha*g.s*g.s*y/v
			var o float64
			switch g.kind {
			case Noise:
				o = eps
			case X0:
				o = x0
			case Score:
				o = -y / v
			case Velocity:
				o = sc.DAlpha*x0 + sc.DSigma*eps
			}
			out[i*d+j] = float32(o)
		}
	}
	return out, nil
}

// exactFlowMap is where the probability-flow ODE takes x (at scales from) for Gaussian data:
// the standardized coordinate (x - alpha mu) / sqrt(v) is constant along it.
func exactFlowMap(x []float32, d int, mu []float64, s float64, from, to Scales) []float64 {
	vf := from.Alpha*from.Alpha*s*s + from.Sigma*from.Sigma
	vt := to.Alpha*to.Alpha*s*s + to.Sigma*to.Sigma
	out := make([]float64, len(x))
	for i, v := range x {
		m := mu[i%d]
		out[i] = to.Alpha*m + math.Sqrt(vt/vf)*(float64(v)-from.Alpha*m)
	}
	return out
}

// moments returns the per-dimension mean and variance of n samples of d values.
func moments(x []float32, d int) (mean, variance []float64) {
	n := len(x) / d
	mean, variance = make([]float64, d), make([]float64, d)
	for i, v := range x {
		mean[i%d] += float64(v) / float64(n)
	}
	for i, v := range x {
		dv := float64(v) - mean[i%d]
		variance[i%d] += dv * dv / float64(n-1)
	}
	return mean, variance
}

func rmsDiff(a []float32, b []float64) float64 {
	s := 0.0
	for i := range a {
		d := float64(a[i]) - b[i]
		s += d * d
	}
	return math.Sqrt(s / float64(len(a)))
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

func mustSchedule(t testing.TB, cfg schedule.Config) *schedule.Schedule {
	t.Helper()
	s, err := schedule.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// testS is the standard deviation of the tests' data N(testMu(), testS^2 I).
const testS = 0.5

// testMu is the mean of the tests' data.
func testMu() []float64 { return []float64{1, -0.5} }
