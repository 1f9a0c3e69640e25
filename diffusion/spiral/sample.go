package spiral

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/godiffusion/notebooks/diffusion/sampling"
)

// Sampler names of Sample.
const (
	SDE  = "sde"  // Euler-Maruyama on the reverse-time SDE (the exam's sampler)
	ODE  = "ode"  // Euler on the probability-flow ODE (deterministic)
	Heun = "heun" // Heun on the probability-flow ODE
)

// SampleOptions configure Sample.
type SampleOptions struct {
	N       int    // number of samples
	K       int    // steps of the grid t = k/K (the exam: 200)
	Sampler string // SDE (default ""), ODE or Heun
	Seed    int64  // seed of the initial and step noise (per sample: see sampling.Options)
	// Snapshots are the steps k (K .. 0) at which to keep a copy of the samples (x_k, i.e. at
	// t = k/K; k = K is the initial noise, k = 0 the result).
	Snapshots []int
	// Dim is the dimension of the samples (0: Dim = 2, the spiral's).
	Dim int
	// Cond holds the condition of every sample (a class, or sampling.Null) for a conditional
	// (or guided: sampling.ClassifierFree) model; nil: unconditional.
	Cond []int
}

// SampleRun is the result of Sample.
type SampleRun struct {
	Points    []float32         // the N samples at t = 0 (N*Dim values)
	Snapshots map[int][]float32 // x_k at the steps asked for
	Duration  time.Duration
}

// Sample draws samples from a score model with the sampling core: x_K ~ N(0, I) at t = 1,
// then K steps of the chosen sampler down to t = 0 on sampling.UniformGrid(1, 0, K). With
// sampling.EulerMaruyama on the VPSDE a step is exactly the exam's
// x_{k-1} = x_k + (beta_k x_k / 2 + beta_k s_k(x_k)) dt + sqrt(beta_k dt) xi, dt = 1/K, with
// beta_k = beta(k/K), except that the last step (k = 1 -> 0) adds no noise.
func Sample(m sampling.Model, p Process, o SampleOptions) (*SampleRun, error) {
	if m == nil {
		return nil, fmt.Errorf("spiral.Sample: nil model")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if o.N < 1 {
		return nil, fmt.Errorf("spiral.Sample: need N >= 1 samples, got %d", o.N)
	}
	grid, err := Grid(o.K)
	if err != nil {
		return nil, err
	}
	var sampler sampling.Sampler
	switch o.Sampler {
	case SDE, "":
		sampler = sampling.EulerMaruyama
	case ODE:
		sampler = sampling.EulerODE
	case Heun:
		sampler = sampling.HeunODE
	default:
		return nil, fmt.Errorf("spiral.Sample: unknown sampler %q (want %q, %q or %q)", o.Sampler, SDE, ODE, Heun)
	}
	for _, k := range o.Snapshots {
		if k < 0 || k > o.K {
			return nil, fmt.Errorf("spiral.Sample: snapshot step %d outside [0, %d]", k, o.K)
		}
	}
	run := &SampleRun{Snapshots: map[int][]float32{}}
	start := time.Now()
	dim := o.Dim
	if dim == 0 {
		dim = Dim
	}
	if dim < 1 {
		return nil, fmt.Errorf("spiral.Sample: the sample dimension must be >= 1, got %d", dim)
	}
	pts, err := sampler(m, sampling.Options{N: o.N, Dim: dim, Process: p.VPSDE(), Grid: grid, Seed: o.Seed, Cond: o.Cond,
		Callback: func(s *sampling.Step) error {
			if k := o.K - s.GridIndex; slices.Contains(o.Snapshots, k) {
				run.Snapshots[k] = slices.Clone(s.X)
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	run.Points, run.Duration = pts, time.Since(start)
	return run, nil
}

// LikelihoodOptions configure LogLikelihood.
type LikelihoodOptions struct {
	// Steps of the RK4 integration from t = 0 to 1, on the grid t_i = (i/Steps)^2 (denser near
	// the data, where the score changes fastest). Default 100.
	Steps int
	// Batch is the number of points integrated together (default all).
	Batch int
}

// LogLikelihood returns log p_0(x) of each point x (flat n*2 values) under the model's
// probability-flow ODE dx/dt = v(x, t) = -beta(t)/2 (x + s(x, t)), by the instantaneous change
// of variables: integrating x from t = 0 to 1 together with
// d/dt log p_t(x_t) = -div v = beta(t)/2 (D + tr(d s / d x)), then
// log p_0(x_0) = log N(x_1; 0, I) + int_0^1 div v dt. With the exact score it reproduces the
// mixture's log p0 up to the integration error and the prior's mismatch (p_1 is N(0, I) up
// to abar(1) = exp(-(BetaMin + BetaMax)/2)).
func LogLikelihood(m ScoreModel, p Process, x []float32, o LikelihoodOptions) ([]float64, error) {
	if m == nil {
		return nil, fmt.Errorf("spiral.LogLikelihood: nil model")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(x) == 0 || len(x)%Dim != 0 {
		return nil, fmt.Errorf("spiral.LogLikelihood: %d values are not a non-empty set of 2-D points", len(x))
	}
	if o.Steps == 0 {
		o.Steps = 100
	}
	if o.Steps < 1 {
		return nil, fmt.Errorf("spiral.LogLikelihood: need >= 1 steps, got %d", o.Steps)
	}
	n := len(x) / Dim
	if o.Batch <= 0 || o.Batch > n {
		o.Batch = n
	}
	out := make([]float64, 0, n)
	for lo := 0; lo < n; lo += o.Batch {
		hi := min(n, lo+o.Batch)
		lp, err := logLikelihoodBatch(m, p, x[lo*Dim:hi*Dim], o.Steps)
		if err != nil {
			return nil, err
		}
		out = append(out, lp...)
	}
	return out, nil
}

// logLikelihoodBatch integrates the augmented ODE (x, delta) with RK4 for one batch.
func logLikelihoodBatch(m ScoreModel, p Process, x0 []float32, steps int) ([]float64, error) {
	n := len(x0) / Dim
	x := make([]float64, len(x0))
	for i, v := range x0 {
		x[i] = float64(v)
	}
	delta := make([]float64, n)
	xf := make([]float32, len(x))
	ts := make([]float64, n)
	// f evaluates dx/dt into dx and div v into div at state xs and time t.
	f := func(xs []float64, t float64, dx, div []float64) error {
		for i, v := range xs {
			xf[i] = float32(v)
		}
		for i := range ts {
			ts[i] = t
		}
		s, tr, err := m.ScoreAndTrace(xf, ts)
		if err != nil {
			return err
		}
		if len(s) != len(xs) || len(tr) != n {
			return fmt.Errorf("spiral: the model returned %d scores and %d traces for %d points", len(s), len(tr), n)
		}
		b := p.Beta(t)
		for i := range xs {
			dx[i] = -b / 2 * (xs[i] + float64(s[i]))
		}
		for i := range div {
			div[i] = -b / 2 * (Dim + tr[i])
		}
		return nil
	}
	k := make([][]float64, 4)
	kd := make([][]float64, 4)
	for j := range k {
		k[j], kd[j] = make([]float64, len(x)), make([]float64, n)
	}
	tmp := make([]float64, len(x))
	for i := range steps {
		t0 := math.Pow(float64(i)/float64(steps), 2)
		t1 := math.Pow(float64(i+1)/float64(steps), 2)
		h := t1 - t0
		stage := func(j int, t, c float64) error {
			if j == 0 {
				return f(x, t, k[0], kd[0])
			}
			for q := range tmp {
				tmp[q] = x[q] + c*h*k[j-1][q]
			}
			return f(tmp, t, k[j], kd[j])
		}
		for j, st := range []struct{ t, c float64 }{{t0, 0}, {t0 + h/2, 0.5}, {t0 + h/2, 0.5}, {t1, 1}} {
			if err := stage(j, st.t, st.c); err != nil {
				return nil, err
			}
		}
		for q := range x {
			x[q] += h / 6 * (k[0][q] + 2*k[1][q] + 2*k[2][q] + k[3][q])
		}
		for q := range delta {
			// d log p_t(x_t) / dt = -div v, so log p_0 = log p_1 + int_0^1 div v dt.
			delta[q] += h / 6 * (kd[0][q] + 2*kd[1][q] + 2*kd[2][q] + kd[3][q])
		}
	}
	out := make([]float64, n)
	for i := range out {
		a, b := x[2*i], x[2*i+1]
		logPrior := -math.Log(2*math.Pi) - (a*a+b*b)/2
		out[i] = logPrior + delta[i]
	}
	return out, nil
}
