package ddpm

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/nets"
)

// NoiseVariance names the variance sigma_t^2 of the ancestral sampler's noise.
type NoiseVariance string

const (
	// BetaVariance uses sigma_t^2 = beta_t (Ho et al. 2020; the course's sampler).
	BetaVariance NoiseVariance = "beta"
	// PosteriorVariance uses sigma_t^2 = beta-tilde_t, the variance of q(x_{t-1} | x_t, x_0).
	PosteriorVariance NoiseVariance = "posterior"
)

// Speed holds the sampler settings that trade memory and compile time for speed.
type Speed struct {
	// StepsPerCall is the number of time steps unrolled into one compiled graph (default 1:
	// one step graph called T times). See BenchmarkSampleStep for the trade-off.
	StepsPerCall int
	// Workers is the number of shards of the samples run concurrently (default 1). The go
	// backend runs element-wise ops on one core, so 2 workers use both cores of a 2-core
	// machine.
	Workers int
}

// SampleConfig configures ancestral DDPM sampling.
type SampleConfig struct {
	Seed int64
	// Speed: time steps per compiled graph and concurrent workers. Worker w draws its noise
	// with seed Seed+w, so the samples depend on Workers (the initial noise does not).
	Speed
	// RecordEvery, if > 0, records the points every RecordEvery steps (for animations).
	RecordEvery int
	// Variance of the added noise: BetaVariance (default) or PosteriorVariance.
	Variance NoiseVariance
	// Init, if set (flat n*D), are the points x_InitStep to start from instead of x_T ~ N(0, I);
	// sampling then takes InitStep+1 steps down to t = 0 (SDEdit-style partial denoising).
	Init []float32
	// InitStep is the time step of Init, in [0, T-1].
	InitStep int
}

// Samples are generated points.
type Samples struct {
	Points []float32 // flat N*D, row-major
	Labels []int     // the label requested for each point (guided sampling), else nil
	// Frames are the recorded intermediate states (if RecordEvery > 0): Frames[0] is the
	// initial noise x_T, the last is the final sample.
	Frames [][]float32
	// FrameSteps[i] is the number of denoising steps taken before Frames[i].
	FrameSteps []int
	Duration   time.Duration
}

// samplingStore returns a new store holding copies of the models' variables, seeded with seed,
// so sampling neither disturbs nor depends on the training state.
func samplingStore(d *Denoiser, c *Classifier, seed int64) (*model.Store, error) {
	s := model.NewStore()
	for v := range d.store.Scope("/" + DenoiserScope).IterVariables() {
		if _, err := v.CloneToStore(s); err != nil {
			return nil, err
		}
	}
	if c != nil {
		for v := range c.store.Scope("/" + ClassifierScope).IterVariables() {
			if _, err := v.CloneToStore(s); err != nil {
				return nil, err
			}
		}
	}
	if err := s.SetRNGStateFromSeed(seed); err != nil {
		return nil, err
	}
	return s, nil
}

// coefficient j of row i of a [k, C] coefficient node, as a scalar.
func coef(coefs *Node, i, j int) *Node {
	return Reshape(Slice(coefs, AxisElem(i), AxisElem(j)))
}

// runChunks runs T time steps in chunks of at most k steps: build(chunkLen) returns the
// executable for a chunk, coefs(step) the coefficients of one step (0 = first step taken).
// It records frames every recordEvery steps.
func runChunks(x *tensors.Tensor, total, k, recordEvery int,
	call func(x *tensors.Tensor, coefs *tensors.Tensor, extra []any) (*tensors.Tensor, error),
	coefs func(step int) []float32, extra []any, out *Samples) (*tensors.Tensor, error) {
	if k < 1 {
		k = 1
	}
	if recordEvery > 0 {
		k = gcd(k, recordEvery)
	}
	record := func(step int) error {
		flat, err := tensors.CopyFlatData[float32](x)
		if err != nil {
			return err
		}
		out.Frames = append(out.Frames, flat)
		out.FrameSteps = append(out.FrameSteps, step)
		return nil
	}
	if recordEvery > 0 {
		if err := record(0); err != nil {
			return nil, err
		}
	}
	for step := 0; step < total; {
		m := min(k, total-step)
		var cs []float32
		for i := range m {
			cs = append(cs, coefs(step+i)...)
		}
		ct := tensors.FromFlatDataAndDimensions(cs, m, len(cs)/m)
		next, err := call(x, ct, extra)
		if err != nil {
			return nil, fmt.Errorf("sampling step %d: %w", step+1, err)
		}
		x.FinalizeAll()
		x = next
		step += m
		if recordEvery > 0 && (step%recordEvery == 0 || step == total) {
			if err := record(step); err != nil {
				return nil, err
			}
		}
	}
	return x, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// initialNoise draws x_T ~ N(0, I) as a [n, dim] tensor, deterministically from seed.
func initialNoise(n, dim int, seed int64) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(normals(newRand(seed), n*dim), n, dim)
}

// Sample draws n points with the ancestral DDPM sampler (T steps):
// x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps(x_t, t)) / sqrt(alpha_t) + sigma_t z, with no
// noise added at the last step (t = 0).
func (d *Denoiser) Sample(n int, cfg SampleConfig) (out *Samples, err error) {
	defer recoverError(&err, "ddpm.Denoiser.Sample")
	if n < 1 {
		return nil, fmt.Errorf("ddpm.Sample: n must be >= 1, got %d", n)
	}
	switch cfg.Variance {
	case "", BetaVariance, PosteriorVariance:
	default:
		return nil, fmt.Errorf("ddpm.Sample: unknown variance %q", cfg.Variance)
	}
	dim, T, sch := d.Net.DataDim, d.Schedule.T(), d.Schedule
	init, top := cfg.Init, T-1
	if init != nil {
		if len(init) != n*dim {
			return nil, fmt.Errorf("ddpm.Sample: Init has %d values, want n*D = %d", len(init), n*dim)
		}
		if cfg.InitStep < 0 || cfg.InitStep >= T {
			return nil, fmt.Errorf("ddpm.Sample: InitStep must be in [0, %d], got %d", T-1, cfg.InitStep)
		}
		top = cfg.InitStep
	} else if init, err = tensors.CopyFlatData[float32](initialNoise(n, dim, cfg.Seed)); err != nil {
		return nil, err
	}
	start := time.Now()
	coefs := func(step int) []float32 {
		t := top - step
		sigma := 0.0
		if t > 0 {
			if cfg.Variance == PosteriorVariance {
				sigma = math.Sqrt(sch.PosteriorVariance(t))
			} else {
				sigma = math.Sqrt(sch.Betas[t])
			}
		}
		return []float32{float32(sch.TimeInput[t]), float32(1 / math.Sqrt(sch.Alphas[t])),
			float32(sch.Betas[t] / math.Sqrt(1-sch.AlphaBars[t])), float32(sigma)}
	}
	out = &Samples{}
	err = runSharded(init, dim, nil, cfg.Workers, out, func(w int, x *tensors.Tensor, _ []int32, shard *Samples) (*tensors.Tensor, error) {
		// Each worker draws its noise from its own store: worker w is seeded with Seed+w.
		store, err := samplingStore(d, nil, cfg.Seed+int64(w))
		if err != nil {
			return nil, err
		}
		exec, err := model.NewExec1(d.backend, store, func(scope *model.Scope, x, coefs *Node) *Node {
			for i := range coefs.Shape().Dimensions[0] {
				// Coefficients: normalized time, 1/sqrt(alpha_t), beta_t/sqrt(1-abar_t), sigma_t.
				eps := nets.Denoiser(scope.At(DenoiserScope), d.Net, x, coef(coefs, i, 0))
				mean := Mul(coef(coefs, i, 1), Sub(x, Mul(coef(coefs, i, 2), eps)))
				z := scope.RandomNormal(x.Graph(), x.Shape())
				x = Add(mean, Mul(coef(coefs, i, 3), z))
			}
			return x
		})
		if err != nil {
			return nil, err
		}
		call := func(x, c *tensors.Tensor, _ []any) (*tensors.Tensor, error) { return exec.Call(x, c) }
		return runChunks(x, top+1, cfg.StepsPerCall, cfg.RecordEvery, call, coefs, nil, shard)
	})
	if err != nil {
		return nil, err
	}
	out.Duration = time.Since(start)
	return out, nil
}

// DDIMConfig configures deterministic DDIM sampling (eta = 0), optionally classifier-guided.
type DDIMConfig struct {
	// Steps is the number S <= T of denoising steps, on time steps evenly spaced in [0, T-1]
	// (0 means T: every time step, which is exactly the assignment's guided sampler).
	Steps       int
	Seed        int64 // seed of the initial noise
	RecordEvery int   // if > 0, record the points every RecordEvery steps
	// Speed: time steps per compiled graph and concurrent workers; DDIM is deterministic, so
	// the result does not depend on them.
	Speed

	// Classifier, if set, guides the samples towards Labels (one per sample) with
	// eps_hat = eps - GuidanceScale * sqrt(1 - abar_t) * grad_x log softmax(classifier(x_t, t))_y.
	Classifier    *Classifier
	Labels        []int
	GuidanceScale float64
}

// DDIMTimeSteps returns the S time steps visited by DDIM, ascending, evenly spaced in
// [0, T-1] (both ends included).
func DDIMTimeSteps(T, S int) []int {
	if S >= T || S <= 0 {
		S = T
	}
	out := make([]int, S)
	for i := range S {
		if S == 1 {
			out[i] = T - 1
		} else {
			out[i] = int(math.Round(float64(i) * float64(T-1) / float64(S-1)))
		}
	}
	return out
}

// SampleDDIM draws n points with the deterministic DDIM update
// x_prev = sqrt(abar_prev) (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t) + sqrt(1 - abar_prev) eps_hat,
// where eps_hat is the (optionally classifier-guided) predicted noise and abar_prev is
// alpha-bar of the next visited time step (1 after the last one).
func (d *Denoiser) SampleDDIM(n int, cfg DDIMConfig) (out *Samples, err error) {
	defer recoverError(&err, "ddpm.Denoiser.SampleDDIM")
	if n < 1 {
		return nil, fmt.Errorf("ddpm.SampleDDIM: n must be >= 1, got %d", n)
	}
	T, dim, sch := d.Schedule.T(), d.Net.DataDim, d.Schedule
	if cfg.Steps < 0 || cfg.Steps > T {
		return nil, fmt.Errorf("ddpm.SampleDDIM: Steps must be in [0, %d], got %d", T, cfg.Steps)
	}
	c := cfg.Classifier
	if c != nil {
		if c.Net.DataDim != dim {
			return nil, fmt.Errorf("ddpm.SampleDDIM: classifier is for %d-D points, denoiser for %d-D", c.Net.DataDim, dim)
		}
		if c.Schedule.T() != T {
			return nil, fmt.Errorf("ddpm.SampleDDIM: classifier has T=%d, denoiser T=%d", c.Schedule.T(), T)
		}
		if len(cfg.Labels) != n {
			return nil, fmt.Errorf("ddpm.SampleDDIM: guidance needs one label per sample: %d labels for %d samples", len(cfg.Labels), n)
		}
		if _, err = labelsTensor(cfg.Labels, c.Net.NumClasses); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	store, err := samplingStore(d, c, cfg.Seed)
	if err != nil {
		return nil, err
	}
	steps := DDIMTimeSteps(T, cfg.Steps)
	scale := float32(cfg.GuidanceScale)
	// step builds one DDIM update. Coefficients: normalized time, sqrt(abar_t), sqrt(1-abar_t),
	// sqrt(abar_prev), sqrt(1-abar_prev).
	step := func(scope *model.Scope, x, y, coefs *Node, i int) *Node {
		tn := coef(coefs, i, 0)
		sa, s1a, sp, s1p := coef(coefs, i, 1), coef(coefs, i, 2), coef(coefs, i, 3), coef(coefs, i, 4)
		eps := nets.Denoiser(scope.At(DenoiserScope), d.Net, x, tn)
		if y != nil {
			grad := GuidanceGradient(scope, c, x, y, tn)
			eps = Sub(eps, Mul(MulScalar(s1a, scale), grad))
		}
		x0 := Div(Sub(x, Mul(s1a, eps)), sa)
		return Add(Mul(sp, x0), Mul(s1p, eps))
	}
	var exec *model.Exec
	if c != nil {
		exec, err = model.NewExec(d.backend, store, func(scope *model.Scope, x, coefs, y *Node) *Node {
			for i := range coefs.Shape().Dimensions[0] {
				x = step(scope, x, y, coefs, i)
			}
			return x
		})
	} else {
		exec, err = model.NewExec(d.backend, store, func(scope *model.Scope, x, coefs *Node) *Node {
			for i := range coefs.Shape().Dimensions[0] {
				x = step(scope, x, nil, coefs, i)
			}
			return x
		})
	}
	if err != nil {
		return nil, err
	}
	coefs := func(k int) []float32 {
		i := len(steps) - 1 - k
		t := steps[i]
		abar, abarPrev := sch.AlphaBars[t], 1.0
		if i > 0 {
			abarPrev = sch.AlphaBars[steps[i-1]]
		}
		return []float32{float32(sch.TimeInput[t]), float32(math.Sqrt(abar)), float32(math.Sqrt(1 - abar)),
			float32(math.Sqrt(abarPrev)), float32(math.Sqrt(1 - abarPrev))}
	}
	call := func(x, cs *tensors.Tensor, extra []any) (*tensors.Tensor, error) {
		res, err := exec.Call(append([]any{x, cs}, extra...)...)
		if err != nil {
			return nil, err
		}
		return res[0], nil
	}
	out = &Samples{}
	if c != nil {
		out.Labels = append([]int(nil), cfg.Labels...)
	}
	init, err := tensors.CopyFlatData[float32](initialNoise(n, dim, cfg.Seed))
	if err != nil {
		return nil, err
	}
	err = runSharded(init, dim, cfg.Labels, cfg.Workers, out, func(_ int, x *tensors.Tensor, labels []int32, shard *Samples) (*tensors.Tensor, error) {
		var extra []any
		if c != nil {
			extra = []any{tensors.FromFlatDataAndDimensions(labels, len(labels))}
		}
		return runChunks(x, len(steps), cfg.StepsPerCall, cfg.RecordEvery, call, coefs, extra, shard)
	})
	if err != nil {
		return nil, err
	}
	out.Duration = time.Since(start)
	return out, nil
}

// runSharded splits the points init (flat n*dim) and their labels (may be nil) into
// workers contiguous shards, runs run on each shard concurrently and gathers the final points
// and recorded frames of the shards, in order, into out.
func runSharded(init []float32, dim int, labels []int, workers int, out *Samples,
	run func(w int, x *tensors.Tensor, labels []int32, shard *Samples) (*tensors.Tensor, error)) error {
	n := len(init) / dim
	workers = max(1, min(workers, n))
	shards := make([]Samples, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		var ys []int32
		if labels != nil {
			ys = make([]int32, hi-lo)
			for i := range ys {
				ys[i] = int32(labels[lo+i])
			}
		}
		x := tensors.FromFlatDataAndDimensions(append([]float32(nil), init[lo*dim:hi*dim]...), hi-lo, dim)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer recoverError(&errs[w], "ddpm sampler worker")
			final, err := run(w, x, ys, &shards[w])
			if err != nil {
				errs[w] = err
				return
			}
			shards[w].Points, errs[w] = tensors.CopyFlatData[float32](final)
			final.FinalizeAll()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	out.Points = make([]float32, 0, len(init))
	for w := range shards {
		out.Points = append(out.Points, shards[w].Points...)
	}
	out.FrameSteps = shards[0].FrameSteps
	for f := range shards[0].Frames {
		frame := make([]float32, 0, len(init))
		for w := range shards {
			frame = append(frame, shards[w].Frames[f]...)
		}
		out.Frames = append(out.Frames, frame)
	}
	return nil
}

// SampleGuided draws perLabel points for each of labels with classifier guidance of the given
// scale (the assignment uses 1), using DDIM with cfg.Steps steps (0: all T steps, the
// assignment's deterministic guided sampler). cfg.Classifier, Labels and GuidanceScale are
// set by this function.
func (d *Denoiser) SampleGuided(c *Classifier, labels []int, perLabel int, scale float64, cfg DDIMConfig) (*Samples, error) {
	if c == nil {
		return nil, fmt.Errorf("ddpm.SampleGuided: nil classifier")
	}
	if perLabel < 1 || len(labels) == 0 {
		return nil, fmt.Errorf("ddpm.SampleGuided: need labels and perLabel >= 1")
	}
	cfg.Classifier, cfg.GuidanceScale = c, scale
	cfg.Labels = make([]int, 0, perLabel*len(labels))
	for _, y := range labels {
		for range perLabel {
			cfg.Labels = append(cfg.Labels, y)
		}
	}
	return d.SampleDDIM(len(cfg.Labels), cfg)
}

// GuidanceGradient returns grad_x log softmax(classifier(x, tNorm))_y for every point of x
// [B, D] (labels y [B] int32; tNorm scalar, [B] or [B, 1]), built in scope's store, which must
// hold the classifier's variables under ClassifierScope.
func GuidanceGradient(scope *model.Scope, c *Classifier, x, y, tNorm *Node) *Node {
	logits := nets.Classifier(scope.At(ClassifierScope), c.Net, x, tNorm)
	logp := Mul(OneHot(y, c.Net.NumClasses, logits.DType()), LogSoftmax(logits, -1))
	return Gradient(ReduceAllSum(logp), x)[0]
}

// GuidanceGradientValues evaluates GuidanceGradient for the points x (flat N*D) with labels y
// at time step t; for tests and visualizations (a vector field of the guidance).
func (c *Classifier) GuidanceGradientValues(x []float32, y []int, t int) (grad []float32, err error) {
	defer recoverError(&err, "ddpm.Classifier.GuidanceGradientValues")
	n, err := numPoints(x, c.Net.DataDim)
	if err != nil {
		return nil, err
	}
	if len(y) != n {
		return nil, fmt.Errorf("ddpm: %d points but %d labels", n, len(y))
	}
	if t < 0 || t >= c.Schedule.T() {
		return nil, fmt.Errorf("ddpm: time step %d out of range [0, %d)", t, c.Schedule.T())
	}
	yT, err := labelsTensor(y, c.Net.NumClasses)
	if err != nil {
		return nil, err
	}
	exec, err := model.NewExec1(c.backend, c.store, func(scope *model.Scope, x, y, tn *Node) *Node {
		return GuidanceGradient(scope, c, x, y, tn)
	})
	if err != nil {
		return nil, err
	}
	out, err := exec.Call(tensors.FromFlatDataAndDimensions(x, n, c.Net.DataDim), yT, float32(c.Schedule.TimeInput[t]))
	if err != nil {
		return nil, err
	}
	return tensors.CopyFlatData[float32](out)
}
