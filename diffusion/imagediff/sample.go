package imagediff

import (
	"fmt"
	"math"
	"slices"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/savedmodel"
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
	Seed   int64
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
	plain, guided *model.Exec
}

func (m *Model) predictor() (*predictor, error) {
	if m.infer != nil {
		return &predictor{plain: m.infer, guided: m.guided}, nil
	}
	var err error
	m.infer, err = model.NewExec(m.backend, m.store, func(scope *model.Scope, inputs []*Node) *Node {
		x, tau, c := m.splitInputs(inputs)
		return m.graph(scope, x, tau, c)
	})
	if err != nil {
		return nil, err
	}
	if m.Net.NumClasses > 0 {
		m.guided, err = model.NewExec(m.backend, m.store, func(scope *model.Scope, inputs []*Node) *Node {
			x, tau, c := m.splitInputs(inputs[:len(inputs)-1])
			gamma := inputs[len(inputs)-1]
			u := m.graph(scope, Concatenate([]*Node{x, x}, 0), Concatenate([]*Node{tau, tau}, 0), Concatenate([]*Node{c, ZerosLike(c)}, 0))
			n := x.Shape().Dimensions[0]
			uc := Slice(u, AxisRange(0, n))
			u0 := Slice(u, AxisRange(n, 2*n))
			return Add(u0, Mul(gamma, Sub(uc, u0)))
		})
		if err != nil {
			return nil, err
		}
	}
	return &predictor{plain: m.infer, guided: m.guided}, nil
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
// vectors of labels, guided with scale gamma when gamma is not 0 or 1.
func (m *Model) predict(p *predictor, x []float32, n int, tau []float32, classes []float32, gamma float64) ([]float32, error) {
	s := m.Net.ImageSize
	inputs := []any{tensorOf(x, n, s, s, m.Net.Channels)}
	if m.Net.TimeConditioned {
		inputs = append(inputs, tensorOf(tau, n))
	}
	if m.Net.NumClasses > 0 {
		inputs = append(inputs, tensorOf(classes, n, m.Net.NumClasses))
	}
	exec := p.plain
	if m.Net.NumClasses > 0 && gamma != 0 && gamma != 1 {
		exec = p.guided
		inputs = append(inputs, tensors.FromScalar(float32(gamma)))
	}
	out, err := exec.Exec(inputs...)
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
		y, err := m.predict(p, noisy[lo*per:hi*per], hi-lo, nil, nil, 0)
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
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 250
	}
	p, err := m.predictor()
	if err != nil {
		return nil, err
	}
	per := m.pixels()
	// The initial noise and each step's noise of image i come from its own stream, so the
	// result does not depend on the batching.
	out = &Samples{N: n, Images: make([]float32, n*per), Labels: slices.Clone(labels)}
	record := map[int]int{}
	for _, s := range cfg.Record {
		if s < 0 || s > cfg.Steps {
			return nil, fmt.Errorf("imagediff: record step %d outside [0, %d]", s, cfg.Steps)
		}
		if _, dup := record[s]; !dup {
			record[s] = len(out.FrameSteps)
			out.FrameSteps = append(out.FrameSteps, s)
			out.Frames = append(out.Frames, make([]float32, n*per))
		}
	}
	for lo := 0; lo < n; lo += cfg.BatchSize {
		hi := min(n, lo+cfg.BatchSize)
		var lab []int
		if labels != nil {
			lab = labels[lo:hi]
		}
		frame := func(step int, x []float32) {
			if f, ok := record[step]; ok {
				copy(out.Frames[f][lo*per:hi*per], x)
			}
		}
		var x []float32
		if m.Objective == Flow {
			x, err = m.sampleFlow(p, lo, hi, lab, cfg, frame)
		} else {
			x, err = m.sampleDDPM(p, lo, hi, lab, cfg, frame)
		}
		if err != nil {
			return nil, err
		}
		copy(out.Images[lo*per:hi*per], x)
	}
	return out, nil
}

// imageRand returns the noise stream of image i.
func imageNoise(seed int64, i, per int) func() []float32 {
	rng := newRand(seed*1_000_003 + int64(i))
	return func() []float32 { return normals(rng, per) }
}

// batchNoise returns a function drawing the next noise of images lo..hi-1, each from its own stream.
func batchNoise(seed int64, lo, hi, per int) func() []float32 {
	streams := make([]func() []float32, hi-lo)
	for i := range streams {
		streams[i] = imageNoise(seed, lo+i, per)
	}
	return func() []float32 {
		out := make([]float32, 0, (hi-lo)*per)
		for _, s := range streams {
			out = append(out, s()...)
		}
		return out
	}
}

func (m *Model) classVectors(labels []int) []float32 {
	if m.Net.NumClasses == 0 {
		return nil
	}
	return oneHot(labels, m.Net.NumClasses, nil, 0)
}

func filled(n int, v float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// sampleFlow integrates dx/dtau = u(x, tau) from noise at tau = 0 to tau = 1 with Euler steps.
func (m *Model) sampleFlow(p *predictor, lo, hi int, labels []int, cfg SampleConfig, frame func(int, []float32)) ([]float32, error) {
	n := hi - lo
	x := batchNoise(cfg.Seed, lo, hi, m.pixels())()
	frame(0, x)
	classes := m.classVectors(labels)
	dt := 1 / float64(cfg.Steps)
	for i := range cfg.Steps {
		u, err := m.predict(p, x, n, filled(n, float32(float64(i)*dt)), classes, cfg.Guidance)
		if err != nil {
			return nil, err
		}
		for j := range x {
			x[j] += float32(dt) * u[j]
		}
		frame(i+1, x)
	}
	return x, nil
}

// DDPMTimeSteps returns the diffusion steps (0-based, descending) a DDPM sampler with the given
// number of steps visits: all T, or steps evenly spaced ones ending at 0.
func DDPMTimeSteps(T, steps int) []int {
	out := make([]int, steps)
	for i := range steps {
		// Evenly spaced from T-1 down to 0.
		if steps == 1 {
			out[i] = T - 1
			continue
		}
		out[i] = int(math.Round(float64(T-1) * float64(steps-1-i) / float64(steps-1)))
	}
	return out
}

// sampleDDPM runs the ancestral (eta = 1) or deterministic (eta = 0) sampler over the visited
// steps: x0 = (x - sqrt(1-abar) eps) / sqrt(abar), clipped to the pixel range (eps is then
// recomputed from it), and x' = sqrt(abar') x0 + sqrt(1 - abar' - s^2) eps + s z with
// s^2 = eta^2 (1-abar')/(1-abar) (1 - abar/abar'); with all steps this is DDPM's posterior.
func (m *Model) sampleDDPM(p *predictor, lo, hi int, labels []int, cfg SampleConfig, frame func(int, []float32)) ([]float32, error) {
	n := hi - lo
	noise := batchNoise(cfg.Seed, lo, hi, m.pixels())
	x := noise()
	frame(0, x)
	classes := m.classVectors(labels)
	ts := DDPMTimeSteps(m.sched.T(), cfg.Steps)
	eta := 1.0
	if cfg.Deterministic {
		eta = 0
	}
	for i, t := range ts {
		eps, err := m.predict(p, x, n, filled(n, float32(m.ddpmTau(t))), classes, cfg.Guidance)
		if err != nil {
			return nil, err
		}
		abar := m.sched.AlphaBars[t]
		abarPrev := 1.0
		if i+1 < len(ts) {
			abarPrev = m.sched.AlphaBars[ts[i+1]]
		}
		sigma, dirCoef := ddimCoefficients(abar, abarPrev, eta)
		var z []float32
		if sigma > 0 {
			z = noise()
		}
		sa, s1a := math.Sqrt(abar), math.Sqrt(1-abar)
		for j := range x {
			xj := float64(x[j])
			x0 := (xj - s1a*float64(eps[j])) / sa
			e := float64(eps[j])
			if !cfg.NoClip {
				if c := min(max(x0, float64(m.PixelLo)), float64(m.PixelHi)); c != x0 {
					x0 = c
					e = (xj - sa*x0) / s1a
				}
			}
			v := math.Sqrt(abarPrev)*x0 + dirCoef*e
			if z != nil {
				v += sigma * float64(z[j])
			}
			x[j] = float32(v)
		}
		frame(i+1, x)
	}
	return x, nil
}

// ddimCoefficients returns the noise scale s and the coefficient of the predicted noise of the
// update x' = sqrt(abarPrev) x0 + dirCoef eps + s z from a step with alpha-bar abar to one with
// abarPrev (Song et al. 2021, eq. 12 and 16).
func ddimCoefficients(abar, abarPrev, eta float64) (sigma, dirCoef float64) {
	sigma = eta * math.Sqrt((1-abarPrev)/(1-abar)*(1-abar/abarPrev))
	return sigma, math.Sqrt(max(0, 1-abarPrev-sigma*sigma))
}
