package imagediff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/dataparallel"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/seeded"
)

// SampleConfig configures sampling.
type SampleConfig struct {
	// Steps is the number of network evaluations per image: Euler steps for Flow (CS180:
	// num_ts = 50); for DDPM the number of time steps visited (T: the full ancestral sampler;
	// fewer: a strided DDIM-style sampler, Song et al. 2021).
	Steps int
	// Guidance is the classifier-free guidance scale gamma of class-conditioned models:
	// prediction = u(x, none) + gamma * (u(x, class) - u(x, none)) (CS180: 5). 0 or 1 means
	// no guidance (the conditional prediction alone, half the cost).
	Guidance float64
	// Deterministic makes the DDPM sampler deterministic (DDIM, eta = 0) instead of ancestral
	// (eta = 1: with every step it is exactly DDPM's ancestral sampler with the posterior
	// variance).
	Deterministic bool
	// NoClip turns off the clipping of DDPM's predicted clean image to the pixel range.
	NoClip bool
	// Sampler, if set, names the sampler of diffusion/sampling to use instead of the
	// model's own (Flow: "euler"; DDPM: DDIM with eta 1, or 0 when Deterministic): one of
	// sampling.SamplerNames as SamplerByName defines them with eta 0, e.g. "heun" for Flow,
	// "ddim" (deterministic), "ddpm-posterior" (= eta 1), "ddpm" or "dpm++2m" for DDPM.
	Sampler string
	Seed    int64
	// BatchSize is the number of images per network call (default 250); the results do not
	// depend on it.
	BatchSize int
	// Record lists the steps (1-based, after the step's update) whose images are kept in
	// Samples.Frames, e.g. for a denoising animation; 0 records the initial noise.
	Record []int
}

// Samples are generated images.
type Samples struct {
	Images []float32 // N images of S x S x C values, in the model's pixel range (not clipped)
	N      int
	Labels []int // requested class of each image (-1: unconditional); nil for unconditional models
	// Frames[i] holds the N images after step FrameSteps[i] (0: the initial noise).
	Frames     [][]float32
	FrameSteps []int
}

// predictor evaluates the network in inference mode (batch norm with running statistics).
type predictor struct {
	plain *model.Exec
}

func (m *Model) predictor() (*predictor, error) {
	if m.infer == nil {
		var err error
		m.infer, err = model.NewExec(m.backend, m.store, func(scope *model.Scope, inputs []*Node) *Node {
			x, tau, c := m.splitInputs(inputs)
			return m.graph(scope, x, tau, c)
		})
		if err != nil {
			return nil, err
		}
	}
	return &predictor{plain: m.infer}, nil
}

// splitInputs returns x and, as the config requires, tau and the class vectors.
func (m *Model) splitInputs(inputs []*Node) (x, tau, c *Node) {
	x = inputs[0]
	i := 1
	if m.Net.TimeConditioned {
		tau = inputs[i]
		i++
	}
	if m.Net.NumClasses > 0 {
		c = inputs[i]
	}
	return
}

// predict runs the network on n images x at time fractions tau (per image) with the class
// vectors classes.
func (m *Model) predict(p *predictor, x []float32, n int, tau []float32, classes []float32) ([]float32, error) {
	s := m.Net.ImageSize
	inputs := []any{tensorOf(x, n, s, s, m.Net.Channels)}
	if m.Net.TimeConditioned {
		inputs = append(inputs, tensorOf(tau, n))
	}
	if m.Net.NumClasses > 0 {
		inputs = append(inputs, tensorOf(classes, n, m.Net.NumClasses))
	}
	out, err := p.plain.Exec(inputs...)
	if err != nil {
		return nil, err
	}
	defer out[0].FinalizeAll()
	return tensors.CopyFlatData[float32](out[0])
}

// Denoise returns the Denoise model's prediction of the clean images for n noisy images
// (S x S x C values each, in the pixel range), in batches of batchSize (0: 250).
func (m *Model) Denoise(noisy []float32, n, batchSize int) (out []float32, err error) {
	defer savedmodel.RecoverError(&err, "imagediff.Denoise")
	if m.Objective != Denoise {
		return nil, fmt.Errorf("imagediff: Denoise needs a %q model, this one is %q", Denoise, m.Objective)
	}
	per := m.pixels()
	if n < 0 || len(noisy) != n*per {
		return nil, fmt.Errorf("imagediff: Denoise: %d values for %d images of %d pixels", len(noisy), n, per)
	}
	if err := checkFinite(noisy); err != nil {
		return nil, err
	}
	p, err := m.predictor()
	if err != nil {
		return nil, err
	}
	if batchSize <= 0 {
		batchSize = 250
	}
	out = make([]float32, 0, len(noisy))
	for lo := 0; lo < n; lo += batchSize {
		hi := min(n, lo+batchSize)
		y, err := m.predictShards(hi-lo, func(a, b int) ([]float32, error) {
			return m.predict(p, noisy[(lo+a)*per:(lo+b)*per], b-a, nil, nil)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, y...)
	}
	return out, nil
}

func (m *Model) pixels() int { return m.Net.ImageSize * m.Net.ImageSize * m.Net.Channels }

func checkFinite(x []float32) error {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("imagediff: input value %d is %g", i, v)
		}
	}
	return nil
}

// Sample generates n images with a Flow or DDPM model. labels (length n; -1 for
// "unconditional") are required by class-conditioned models and must be nil otherwise.
// The images depend on the seed and each image's index, not on BatchSize.
//
// It runs the shared samplers of diffusion/sampling on SamplingModel: Flow models on the
// grid tau = 0, 1/Steps, ..., 1 (sampling.EulerODE unless cfg.Sampler names another); DDPM
// models on sampling.EvenGrid(T, Steps), x0 clipped to the pixel range unless NoClip
// (sampling.DDIM with eta 1, which is the ancestral sampler with the posterior variance, or 0
// when Deterministic, unless cfg.Sampler names another); guidance with
// sampling.ClassifierFree.
func (m *Model) Sample(n int, labels []int, cfg SampleConfig) (out *Samples, err error) {
	defer savedmodel.RecoverError(&err, "imagediff.Sample")
	if m.Objective == Denoise {
		return nil, fmt.Errorf("imagediff: a %q model does not sample; use Denoise", Denoise)
	}
	if n < 1 {
		return nil, fmt.Errorf("imagediff: Sample needs n >= 1, got %d", n)
	}
	k := m.Net.NumClasses
	if k > 0 && len(labels) != n {
		return nil, fmt.Errorf("imagediff: a class-conditioned model needs %d labels, got %d", n, len(labels))
	}
	if k == 0 && labels != nil {
		return nil, fmt.Errorf("imagediff: labels given to a model without classes")
	}
	for _, y := range labels {
		if y < -1 || y >= k {
			return nil, fmt.Errorf("imagediff: label %d outside [-1, %d)", y, k)
		}
	}
	if cfg.Steps < 1 || (m.Objective == DDPM && cfg.Steps > m.sched.T()) {
		return nil, fmt.Errorf("imagediff: %d sampling steps (want 1 .. %d)", cfg.Steps, map[bool]int{true: m.sched.T(), false: math.MaxInt}[m.Objective == DDPM])
	}
	if math.IsNaN(cfg.Guidance) || math.IsInf(cfg.Guidance, 0) {
		return nil, fmt.Errorf("imagediff: guidance scale %g", cfg.Guidance)
	}
	per := m.pixels()
	out = &Samples{N: n, Labels: slices.Clone(labels)}
	record := map[int]int{}
	for _, s := range cfg.Record {
		if s < 0 || s > cfg.Steps {
			return nil, fmt.Errorf("imagediff: record step %d outside [0, %d]", s, cfg.Steps)
		}
		if _, dup := record[s]; !dup {
			record[s] = len(out.FrameSteps)
			out.FrameSteps = append(out.FrameSteps, s)
			out.Frames = append(out.Frames, nil)
		}
	}
	sm, err := m.SamplingModel(cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	if k > 0 && cfg.Guidance != 0 && cfg.Guidance != 1 {
		if sm, err = sampling.ClassifierFree(sm, cfg.Guidance, nil); err != nil {
			return nil, fmt.Errorf("imagediff: %w", err)
		}
	}
	o := sampling.Options{N: n, Dim: per, Process: m.Process(), Cond: labels, Seed: cfg.Seed,
		// Each image's noise comes from its own stream (as before the shared samplers), so the
		// result depends on the seed and the image's index only.
		Stream: func(i int) *rand.Rand { return seeded.New(cfg.Seed*1_000_003 + int64(i)) },
		Callback: func(s *sampling.Step) error {
			if f, ok := record[s.Index]; ok {
				out.Frames[f] = slices.Clone(s.X)
			}
			return nil
		}}
	eta := 1.0
	if cfg.Deterministic {
		eta = 0
	}
	name, samplerEta := cfg.Sampler, 0.0
	if m.Objective == Flow {
		if o.Grid, err = sampling.UniformGrid(0, 1, cfg.Steps); err != nil {
			return nil, err
		}
		if name == "" {
			name = "euler"
		}
	} else {
		if o.Grid, err = sampling.EvenGrid(m.sched.T(), cfg.Steps); err != nil {
			return nil, err
		}
		if !cfg.NoClip {
			o.Clip = &sampling.Range{Lo: float64(m.PixelLo), Hi: float64(m.PixelHi)}
		}
		if name == "" {
			name, samplerEta = "ddim", eta
		}
	}
	sampler, err := sampling.SamplerByName(name, samplerEta)
	if err != nil {
		return nil, fmt.Errorf("imagediff: %w", err)
	}
	if out.Images, err = sampler(sm, o); err != nil {
		return nil, fmt.Errorf("imagediff: %w", err)
	}
	return out, nil
}

// Process returns the forward process of a Flow or DDPM model in the time variable of
// SamplingModel: sampling.Flow (tau in [0, 1], 1 the data) or sampling.Discrete on the
// model's schedule (step index k, -1 the data); nil for Denoise models.
func (m *Model) Process() sampling.Process {
	switch m.Objective {
	case Flow:
		return sampling.Flow{}
	case DDPM:
		return sampling.Discrete{Schedule: m.sched}
	}
	return nil
}

// SamplingModel returns a Flow or DDPM model as a sampling.Model: it predicts the velocity
// (Flow, at tau) or the noise (DDPM, at step index k, fed to the network as (k + 1) / T),
// with the network in inference mode, batchSize images per network call (0: 250; results do
// not depend on it). The condition of an image is its class (sampling.Null for none; models
// without classes take nil). Times are per image.
func (m *Model) SamplingModel(batchSize int) (sampling.Model, error) {
	if m.Objective != Flow && m.Objective != DDPM {
		return nil, fmt.Errorf("imagediff: a %q model has no sampling model", m.Objective)
	}
	p, err := m.predictor()
	if err != nil {
		return nil, err
	}
	if batchSize <= 0 {
		batchSize = 250
	}
	return &samplingModel{m: m, p: p, batch: batchSize}, nil
}

// samplingModel is the sampling.Model of SamplingModel.
type samplingModel struct {
	m     *Model
	p     *predictor
	batch int
}

// Predicts returns sampling.Velocity for Flow models and sampling.Noise for DDPM models.
func (s *samplingModel) Predicts() sampling.Prediction {
	if s.m.Objective == Flow {
		return sampling.Velocity
	}
	return sampling.Noise
}

// Predict evaluates the network on len(t) images x at times t with conditions cond.
func (s *samplingModel) Predict(x []float32, t []float64, cond []int) ([]float32, error) {
	m, per, n, k := s.m, s.m.pixels(), len(t), s.m.Net.NumClasses
	if len(x) != n*per {
		return nil, fmt.Errorf("imagediff: %d values for %d images of %d pixels", len(x), n, per)
	}
	if cond != nil && len(cond) != n {
		return nil, fmt.Errorf("imagediff: %d conditions for %d images", len(cond), n)
	}
	if k == 0 && cond != nil {
		for _, c := range cond {
			if c != sampling.Null {
				return nil, fmt.Errorf("imagediff: condition %d given to a model without classes", c)
			}
		}
	}
	tau := make([]float32, n)
	for i, ti := range t {
		if m.Objective == DDPM {
			ti = m.ddpmTau(int(ti))
		}
		tau[i] = float32(ti)
	}
	var classes []float32
	if k > 0 {
		labels := cond
		if labels == nil {
			labels = slices.Repeat([]int{sampling.Null}, n)
		}
		for _, y := range labels {
			if y < -1 || y >= k {
				return nil, fmt.Errorf("imagediff: label %d outside [-1, %d)", y, k)
			}
		}
		classes = oneHot(labels, k, nil, 0)
	}
	out := make([]float32, 0, len(x))
	for lo := 0; lo < n; lo += s.batch {
		hi := min(n, lo+s.batch)
		y, err := m.predictShards(hi-lo, func(a, b int) ([]float32, error) {
			a, b = lo+a, lo+b
			var c []float32
			if classes != nil {
				c = classes[a*k : b*k]
			}
			return m.predict(s.p, x[a*per:b*per], b-a, tau[a:b], c)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, y...)
	}
	return out, nil
}

// predictShards runs predict (a call of the network on images [a, b) of a batch of n) on
// concurrent shards of the batch (dataparallel.InferenceWorkers: both cores of the go
// backend, whose element-wise ops run on one core per call); the answers do not depend on
// the split.
func (m *Model) predictShards(n int, predict func(a, b int) ([]float32, error)) ([]float32, error) {
	return dataparallel.Concat(n, dataparallel.InferenceWorkers(m.backend), predict)
}

func (m *Model) classVectors(labels []int) []float32 {
	if m.Net.NumClasses == 0 {
		return nil
	}
	return oneHot(labels, m.Net.NumClasses, nil, 0)
}
