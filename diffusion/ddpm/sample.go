package ddpm

import (
	"fmt"
	"slices"
	"time"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/sampling"
)

// NoiseVariance names the variance sigma_t^2 of the ancestral sampler's noise.
type NoiseVariance string

const (
	// BetaVariance uses sigma_t^2 = beta_t (Ho et al. 2020; the course's sampler).
	BetaVariance NoiseVariance = "beta"
	// PosteriorVariance uses sigma_t^2 = beta-tilde_t, the variance of q(x_{t-1} | x_t, x_0).
	PosteriorVariance NoiseVariance = "posterior"
)

// Speed holds the sampler settings that trade memory for speed.
type Speed struct {
	// Workers is the number of shards of the points the network evaluates concurrently in
	// every step (default 1). The go backend runs element-wise ops on one core, so 2 workers
	// use both cores of a 2-core machine. The samples do not depend on it.
	Workers int
}

// SampleConfig configures ancestral DDPM sampling.
type SampleConfig struct {
	// Seed makes the samples deterministic: point i draws its noise from its own stream
	// (sampling.Options.Seed), so it depends neither on n nor on Workers.
	Seed int64
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
	// initial noise x_T (or Init), the last is the final sample.
	Frames [][]float32
	// FrameSteps[i] is the number of denoising steps taken before Frames[i].
	FrameSteps []int
	Duration   time.Duration
}

// Sample draws n points with the ancestral DDPM sampler (T steps):
// x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps(x_t, t)) / sqrt(alpha_t) + sigma_t z, with no
// noise added at the last step (t = 0): sampling.Ancestral on sampling.EvenGrid(T, T).
func (d *Denoiser) Sample(n int, cfg SampleConfig) (out *Samples, err error) {
	defer recoverError(&err, "ddpm.Denoiser.Sample")
	if n < 1 {
		return nil, fmt.Errorf("ddpm.Sample: n must be >= 1, got %d", n)
	}
	v := sampling.BetaVariance
	switch cfg.Variance {
	case "", BetaVariance:
	case PosteriorVariance:
		v = sampling.PosteriorVariance
	default:
		return nil, fmt.Errorf("ddpm.Sample: unknown variance %q", cfg.Variance)
	}
	T := d.Schedule.T()
	grid, err := sampling.EvenGrid(T, T)
	if err != nil {
		return nil, err
	}
	o := sampling.Options{N: n, Dim: d.Net.DataDim, Process: d.Process(), Grid: grid, Seed: cfg.Seed}
	if cfg.Init != nil {
		if len(cfg.Init) != n*d.Net.DataDim {
			return nil, fmt.Errorf("ddpm.Sample: Init has %d values, want n*D = %d", len(cfg.Init), n*d.Net.DataDim)
		}
		if cfg.InitStep < 0 || cfg.InitStep >= T {
			return nil, fmt.Errorf("ddpm.Sample: InitStep must be in [0, %d], got %d", T-1, cfg.InitStep)
		}
		o.XStart, o.XStartNoised, o.StartIndex = cfg.Init, true, T-1-cfg.InitStep
	}
	m, err := d.shardedModel(cfg.Workers)
	if err != nil {
		return nil, err
	}
	return run(n, cfg.RecordEvery, nil, &o, func() ([]float32, error) { return sampling.Ancestral(m, o, v) })
}

// DDIMConfig configures deterministic DDIM sampling (eta = 0), optionally classifier-guided.
type DDIMConfig struct {
	// Steps is the number S <= T of denoising steps, on time steps evenly spaced in [0, T-1]
	// (0 means T: every time step, which is exactly the assignment's guided sampler).
	Steps       int
	Seed        int64 // seed of the initial noise (point i from its own stream)
	RecordEvery int   // if > 0, record the points every RecordEvery steps
	Speed

	// Classifier, if set, guides the samples towards Labels (one per sample) with
	// eps_hat = eps - GuidanceScale * sqrt(1 - abar_t) * grad_x log softmax(classifier(x_t, t))_y.
	Classifier    *Classifier
	Labels        []int
	GuidanceScale float64
	// GuidanceInterval limits the classifier guidance to the time steps k in [Lo, Hi] (nil:
	// every step, the assignment's); the other steps follow the denoiser alone.
	GuidanceInterval *sampling.Interval

	// Weak, if set, guides the denoiser with this weaker version of itself before the
	// classifier guidance (autoguidance, Karras et al. 2024; see Denoiser.Autoguided):
	// eps = eps_weak + AutoguideScale (eps - eps_weak) for steps k in AutoguideInterval (nil:
	// every step), then eps_hat = eps - GuidanceScale sqrt(1 - abar_t) grad as above.
	Weak              *Denoiser
	AutoguideScale    float64
	AutoguideInterval *sampling.Interval
}

// SampleDDIM draws n points with the deterministic DDIM update
// x_prev = sqrt(abar_prev) (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t) + sqrt(1 - abar_prev) eps_hat,
// where eps_hat is the (optionally classifier-guided) predicted noise and abar_prev is
// alpha-bar of the next visited time step (1 after the last one): sampling.DDIM (eta 0) on
// sampling.EvenGrid(T, Steps), guided by sampling.ClassifierGuidance.
func (d *Denoiser) SampleDDIM(n int, cfg DDIMConfig) (out *Samples, err error) {
	defer recoverError(&err, "ddpm.Denoiser.SampleDDIM")
	if n < 1 {
		return nil, fmt.Errorf("ddpm.SampleDDIM: n must be >= 1, got %d", n)
	}
	T, dim := d.Schedule.T(), d.Net.DataDim
	if cfg.Steps < 0 || cfg.Steps > T {
		return nil, fmt.Errorf("ddpm.SampleDDIM: Steps must be in [0, %d], got %d", T, cfg.Steps)
	}
	S := cfg.Steps
	if S == 0 {
		S = T
	}
	grid, err := sampling.EvenGrid(T, S)
	if err != nil {
		return nil, err
	}
	var m sampling.Model
	if cfg.Weak != nil {
		m, err = d.Autoguided(cfg.Weak, cfg.AutoguideScale, cfg.AutoguideInterval, cfg.Speed)
	} else {
		m, err = d.shardedModel(cfg.Workers)
	}
	if err != nil {
		return nil, err
	}
	o := sampling.Options{N: n, Dim: dim, Process: d.Process(), Grid: grid, Seed: cfg.Seed}
	var labels []int
	if c := cfg.Classifier; c != nil {
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
		grad, err := c.shardedGrad(cfg.Workers)
		if err != nil {
			return nil, err
		}
		if m, err = sampling.ClassifierGuidance(m, d.Process(), grad, cfg.GuidanceScale, cfg.GuidanceInterval); err != nil {
			return nil, err
		}
		labels = slices.Clone(cfg.Labels)
		o.Cond = labels
	}
	return run(n, cfg.RecordEvery, labels, &o, func() ([]float32, error) { return sampling.DDIM(m, o, 0) })
}

// run runs sample with the frame recording of every recordEvery steps set in o and returns
// the samples with their labels and duration.
func run(n, recordEvery int, labels []int, o *sampling.Options, sample func() ([]float32, error)) (*Samples, error) {
	out := &Samples{Labels: labels}
	if recordEvery > 0 {
		o.Callback = func(s *sampling.Step) error {
			if s.Index%recordEvery == 0 || s.Index == s.Steps {
				out.Frames = append(out.Frames, slices.Clone(s.X))
				out.FrameSteps = append(out.FrameSteps, s.Index)
			}
			return nil
		}
	}
	start := time.Now()
	points, err := sample()
	if err != nil {
		return nil, fmt.Errorf("ddpm: %w", err)
	}
	out.Points, out.Duration = points, time.Since(start)
	return out, nil
}

// SampleWith draws n points with any sampler of diffusion/sampling (e.g. from
// sampling.SamplerByName: "dpm++2m", "heun", "ddim", ...) on steps evenly spaced time steps
// (sampling.EvenGrid(T, steps)); speed shards the network calls.
func (d *Denoiser) SampleWith(sampler sampling.Sampler, n, steps int, seed int64, speed Speed) (*Samples, error) {
	m, err := d.shardedModel(speed.Workers)
	if err != nil {
		return nil, err
	}
	return d.SampleModel(m, sampler, n, steps, seed)
}

// SampleModel draws n points from m, a model over the denoiser's process and points (the
// denoiser itself, or a guided version of it such as Autoguided), with a sampler on steps
// evenly spaced time steps.
func (d *Denoiser) SampleModel(m sampling.Model, sampler sampling.Sampler, n, steps int, seed int64) (out *Samples, err error) {
	return d.SampleModelRecorded(m, sampler, n, steps, seed, 0)
}

// SampleModelRecorded is SampleModel recording the points every recordEvery steps (0: none)
// in the Frames of the samples, as SampleConfig.RecordEvery.
func (d *Denoiser) SampleModelRecorded(m sampling.Model, sampler sampling.Sampler, n, steps int, seed int64, recordEvery int) (out *Samples, err error) {
	defer recoverError(&err, "ddpm.Denoiser.SampleModel")
	if m == nil || sampler == nil {
		return nil, fmt.Errorf("ddpm.SampleModel: needs a model and a sampler")
	}
	if n < 1 {
		return nil, fmt.Errorf("ddpm.SampleModel: n must be >= 1, got %d", n)
	}
	grid, err := sampling.EvenGrid(d.Schedule.T(), steps)
	if err != nil {
		return nil, err
	}
	o := sampling.Options{N: n, Dim: d.Net.DataDim, Process: d.Process(), Grid: grid, Seed: seed}
	return run(n, recordEvery, nil, &o, func() ([]float32, error) { return sampler(m, o) })
}

// Autoguided returns the denoiser guided by a weaker version of itself (Karras et al. 2024,
// sampling.Autoguidance): eps_weak + scale (eps - eps_weak) for steps k in the interval iv
// (nil: every step), e.g. with weak an early checkpoint of the same training run. Both
// must share the schedule and the data dimension.
func (d *Denoiser) Autoguided(weak *Denoiser, scale float64, iv *sampling.Interval, speed Speed) (sampling.Model, error) {
	if weak == nil {
		return nil, fmt.Errorf("ddpm.Autoguided: nil weak model")
	}
	if weak.Net.DataDim != d.Net.DataDim || weak.Schedule.T() != d.Schedule.T() {
		return nil, fmt.Errorf("ddpm.Autoguided: the weak model is for %d-D points and T=%d, the main one for %d-D and T=%d",
			weak.Net.DataDim, weak.Schedule.T(), d.Net.DataDim, d.Schedule.T())
	}
	main, err := d.shardedModel(speed.Workers)
	if err != nil {
		return nil, err
	}
	w, err := weak.shardedModel(speed.Workers)
	if err != nil {
		return nil, err
	}
	return sampling.Autoguidance(main, w, scale, iv)
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
