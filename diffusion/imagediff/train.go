package imagediff

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/godiffusion/notebooks/diffusion/dataparallel"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/seeded"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// TrainConfig configures a training run.
type TrainConfig struct {
	Steps     int     // optimizer steps
	BatchSize int     // images per step; batches walk through shuffled epochs of the data
	LR        float64 // Adam learning rate
	// LRSchedule is lrschedule.Constant (default when empty), Exponential or Cosine.
	LRSchedule lrschedule.Kind
	// FinalLRFraction is the last step's learning rate as a fraction of LR (Exponential,
	// Cosine; 0 means 0, which Exponential does not accept).
	FinalLRFraction float64
	// PUncond is the probability of replacing an example's class by the all-zero
	// "unconditional" vector (class-conditioned models; 0.1 in CS180).
	PUncond float64
	Seed    int64 // seed of the shuffles, noise, times and class dropout
	// EMADecay, if > 0 (e.g. 0.999), keeps an exponential moving average of the weights,
	// with the warm-up min(EMADecay, (1+k)/(10+k)) at step k; at the end of training the
	// weights are set to it (snapshots during training use the raw weights).
	EMADecay float64 `json:"ema_decay,omitempty"`
	// Workers is the number of shards of each batch whose gradients are computed concurrently
	// (package dataparallel; 0 or 1: one), which puts the cores to work on the go backend's
	// one-core element-wise ops and copies. Batch normalization then normalizes each shard by
	// its own statistics (ghost batch normalization) and updates its running statistics with
	// their mean, so the result depends on it (within the noise of training: docs/STATUS.md).
	Workers int `json:"workers,omitempty"`
	// Snapshots lists steps (1-based) after which OnSnapshot is called, e.g. to draw samples
	// at the ends of epochs 1, 5 and 10.
	Snapshots  []int                          `json:"snapshots,omitempty"`
	OnSnapshot func(step int, m *Model) error `json:"-"`
	// Progress, if set, is called after every step with the step (1-based) and its loss.
	Progress func(step int, loss float64) `json:"-"`
	// Resume makes the training resumable (see Train); not part of the saved configuration.
	Resume trainstate.Options `json:"-"`
}

func (c *TrainConfig) check(m *Model) error {
	if c.Steps < 1 || c.BatchSize < 1 || !(c.LR > 0) {
		return fmt.Errorf("imagediff: training needs Steps >= 1, BatchSize >= 1 and LR > 0, got Steps %d, BatchSize %d, LR %g", c.Steps, c.BatchSize, c.LR)
	}
	if err := c.lr().Validate(); err != nil {
		return fmt.Errorf("imagediff: %w", err)
	}
	if c.PUncond < 0 || c.PUncond > 1 {
		return fmt.Errorf("imagediff: PUncond %g outside [0, 1]", c.PUncond)
	}
	if c.EMADecay < 0 || c.EMADecay >= 1 {
		return fmt.Errorf("imagediff: EMADecay %g outside [0, 1)", c.EMADecay)
	}
	if c.Workers < 0 {
		return fmt.Errorf("imagediff: Workers %d < 0", c.Workers)
	}
	if c.PUncond > 0 && m.Net.NumClasses == 0 {
		return fmt.Errorf("imagediff: PUncond %g given for a model without classes", c.PUncond)
	}
	return nil
}

// lr returns the learning-rate schedule.
func (c TrainConfig) lr() lrschedule.Schedule {
	return lrschedule.Schedule{Kind: c.LRSchedule, LR: c.LR, FinalFraction: c.FinalLRFraction, Steps: c.Steps}
}

// LRAt returns the learning rate of step (0-based).
func (c TrainConfig) LRAt(step int) float64 { return c.lr().At(step) }

// History records a training run.
type History struct {
	Loss     []float64 // loss of every step
	LR       []float64 // learning rate of every step
	Epochs   float64   // passes over the data
	Duration time.Duration
}

// newTrainer builds the data-parallel training step (package dataparallel) with Adam: the
// inputs of a shard are clean, noise [b, S, S, C], coefs [b, 4] (a, b, c, d), tau [b] (when
// time-conditioned) and class vectors [b, K] (when class-conditioned); the loss of an
// example is the mean over its pixels of (u(a x0 + b eps) - (c x0 + d eps))^2.
func (m *Model) newTrainer(cfg TrainConfig) (*dataparallel.Stepper, error) {
	opt := optimizer.Adam().LearningRate(cfg.LR).Epsilon(1e-8).Done()
	dc := dataparallel.Config{Workers: cfg.Workers, EMADecay: cfg.EMADecay, EMAWarmup: true}
	return dataparallel.New(m.backend, m.store, opt, dc, func(scope *model.Scope, inputs []*Node) (*Node, []*Node) {
		g := inputs[0].Graph()
		scope.Store().SetTraining(g, true)
		clean, noise, coefs := inputs[0], inputs[1], inputs[2]
		var tau, c *Node
		if m.Net.TimeConditioned {
			tau = inputs[3]
		}
		if m.Net.NumClasses > 0 {
			c = inputs[len(inputs)-1]
		}
		coef := func(i int) *Node { return Reshape(Slice(coefs, AxisRange(), AxisElem(i)), -1, 1, 1, 1) }
		x := Add(Mul(coef(0), clean), Mul(coef(1), noise))
		target := Add(Mul(coef(2), clean), Mul(coef(3), noise))
		pred := m.graph(scope, x, tau, c)
		return ReduceMean(Square(Sub(pred, target)), 1, 2, 3), nil
	})
}

// Train trains the model with Adam on images, S x S x C values each (row-major, the model's
// ImageSize and Channels) in [0, 1], mapped to [PixelLo, PixelHi], with one label per image
// for class-conditioned models (labels may be nil otherwise). MNIST passes its Set's Images
// and Labels; a latent model passes its latents. Calling Train again continues from the
// current weights and optimizer state.
//
// With cfg.Resume.Dir set, training is resumable (package trainstate): the whole state (all
// the store's variables, step, random generators, epoch position, losses) is saved there
// every cfg.Resume.Every steps or Interval, and when cfg.Resume.Context is done, after which
// Train returns a *trainstate.InterruptedError; a later Train of a model fresh from New with
// the same configuration, data and seed continues from the saved state and ends with the
// same weights and History as an uninterrupted run. A state saved by another configuration
// or data is ignored (Train says so and starts fresh). A step whose loss or gradient is NaN
// or infinite stops training with a *trainstate.DivergedError naming the step and its
// learning rate; nothing is saved after it (the model's weights are then those of the failed
// step; the saved state, if any, is that of an earlier step and stays valid).
func (m *Model) Train(images []float32, labels []int, cfg TrainConfig) (hist *History, err error) {
	defer savedmodel.RecoverError(&err, "imagediff.Train")
	per := m.pixels()
	if len(images) == 0 || len(images)%per != 0 {
		return nil, fmt.Errorf("imagediff: %d training values are not a non-empty set of %dx%dx%d images", len(images), m.Net.ImageSize, m.Net.ImageSize, m.Net.Channels)
	}
	n := len(images) / per
	if labels != nil && len(labels) != n {
		return nil, fmt.Errorf("imagediff: %d labels for %d training images", len(labels), n)
	}
	if m.Net.NumClasses > 0 && labels == nil {
		return nil, fmt.Errorf("imagediff: a class-conditioned model needs the labels of its training images")
	}
	if err := cfg.check(m); err != nil {
		return nil, err
	}
	for _, y := range labels {
		if m.Net.NumClasses > 0 && (y < 0 || y >= m.Net.NumClasses) {
			return nil, fmt.Errorf("imagediff: label %d outside [0, %d)", y, m.Net.NumClasses)
		}
	}
	var identity any
	if cfg.Resume.Dir != "" {
		identity = runIdentity{Model: m.Config, Train: cfg, Data: trainstate.Fingerprint(images, labels)}
	}
	run, st, err := cfg.Resume.Start(resumeKind, identity, cfg.Steps)
	if err != nil {
		return nil, err
	}
	if m.train == nil {
		if m.train, err = m.newTrainer(cfg); err != nil {
			return nil, err
		}
	} else if m.train.Workers() != max(1, cfg.Workers) {
		return nil, fmt.Errorf("imagediff: Train with %d workers continues a training with %d", max(1, cfg.Workers), m.train.Workers())
	}
	snap := map[int]bool{}
	for _, s := range cfg.Snapshots {
		snap[s] = true
	}
	src := seeded.Source(cfg.Seed)
	rng := rand.New(src)
	b := &batchDrawer{images: images, labels: labels, n: n, per: per, rng: rng, src: src, lo: m.PixelLo, hi: m.PixelHi}
	s := m.Net.ImageSize
	hist = &History{}
	first, before := 0, 0.0
	if st != nil {
		ok, err := m.resume(run, st, b, cfg)
		if err != nil {
			return nil, err
		}
		if ok {
			hist.Loss, hist.LR = st.Loss, st.LR
			first, before = st.Step, st.Seconds
		}
	}
	start := time.Now()
	// save writes the resumable state after step completed steps.
	save := func(step int) error {
		main, err := src.MarshalBinary()
		if err != nil {
			return err
		}
		extra, err := json.Marshal(resumeExtra{Pos: b.pos, Shuffled: b.perm != nil})
		if err != nil {
			return err
		}
		return run.Save(m.store, &trainstate.State{Step: step, Loss: hist.Loss, LR: hist.LR,
			Seconds: before + time.Since(start).Seconds(), RNG: map[string][]byte{"main": main, "perm": b.permState}, Extra: extra})
	}
	for step := first; step < cfg.Steps; step++ {
		if err := run.Interrupted(step, save); err != nil {
			return hist, err
		}
		lr := cfg.LRAt(step)
		if err := lrschedule.Set(m.store, lr); err != nil {
			return nil, err
		}
		in := m.stepInputs(b, cfg, s)
		loss, _, gradOK, err := m.train.Step(in.size, dataparallel.Shards(in.size, m.train.Workers(), in.shard))
		if err != nil {
			return nil, err
		}
		if err := run.Diverged(step+1, lr, loss, gradOK); err != nil {
			// The weights are those of the failed step: nothing more is saved.
			return hist, fmt.Errorf("imagediff: %w", err)
		}
		hist.Loss = append(hist.Loss, loss)
		hist.LR = append(hist.LR, lr)
		if cfg.Progress != nil {
			cfg.Progress(step+1, loss)
		}
		if snap[step+1] && cfg.OnSnapshot != nil {
			if err := cfg.OnSnapshot(step+1, m); err != nil {
				return hist, err
			}
		}
		if run.Due(step + 1) {
			if err := save(step + 1); err != nil {
				return hist, err
			}
		}
	}
	if err := m.train.UseEMA(); err != nil {
		return hist, err
	}
	hist.Duration = time.Duration((before + time.Since(start).Seconds()) * float64(time.Second))
	hist.Epochs = float64(cfg.Steps*cfg.BatchSize) / float64(n)
	return hist, nil
}

// resumeKind is the kind of imagediff's resumable training states.
const resumeKind = "imagediff.Train"

// runIdentity is what defines a training run for resuming: a state is resumed only by a run
// with an equal one (callbacks and checkpointing options do not count).
type runIdentity struct {
	Model Config          `json:"model"`
	Train TrainConfig     `json:"train"`
	Data  trainstate.Data `json:"data"`
}

// resumeExtra is imagediff's part of a resumable state: the position in the current epoch.
type resumeExtra struct {
	Pos      int  `json:"pos"`
	Shuffled bool `json:"shuffled"` // an epoch's shuffle was drawn (from the "perm" RNG state)
}

// resume restores a saved state: it compiles the training step (creating the optimizer's
// variables), loads every variable, and puts the batch drawer and its generator where they
// were. ok is false when the state's variables could not be loaded (the run starts fresh).
func (m *Model) resume(run *trainstate.Run, st *trainstate.State, b *batchDrawer, cfg TrainConfig) (ok bool, err error) {
	in := m.stepInputs(nil, cfg, m.Net.ImageSize)
	if err := m.train.Compile(in.size, func(k int) []shapes.Shape {
		var out []shapes.Shape
		for _, t := range in.shard(0, k) {
			out = append(out, t.(*tensors.Tensor).Shape())
		}
		return out
	}); err != nil {
		return false, err
	}
	if !run.Restore(m.store) {
		return false, nil
	}
	m.train.SetSteps(st.Step) // the EMA warm-up
	var extra resumeExtra
	if err := json.Unmarshal(st.Extra, &extra); err != nil {
		return false, fmt.Errorf("imagediff: resuming: invalid state: %w", err)
	}
	if extra.Shuffled {
		if err := b.src.UnmarshalBinary(st.RNG["perm"]); err != nil {
			return false, fmt.Errorf("imagediff: resuming: invalid RNG state: %w", err)
		}
		b.permState = st.RNG["perm"]
		b.perm = b.rng.Perm(b.n)
		if extra.Pos < 0 || extra.Pos > len(b.perm) {
			return false, fmt.Errorf("imagediff: resuming: invalid epoch position %d", extra.Pos)
		}
		b.pos = extra.Pos
	}
	if err := b.src.UnmarshalBinary(st.RNG["main"]); err != nil {
		return false, fmt.Errorf("imagediff: resuming: invalid RNG state: %w", err)
	}
	return true, nil
}

// stepBatch is the inputs of one training step: the clean images, noise, coefficients, times
// and class vectors of size examples.
type stepBatch struct {
	size                              int
	s, k                              int // image size; classes (0: none)
	time                              bool
	clean, noise, coefs, tau, classes []float32
}

// shard returns the step's inputs for examples [lo, hi) (the order newTrainer takes them).
func (b stepBatch) shard(lo, hi int) []any {
	px := b.s * b.s
	n := hi - lo
	in := []any{tensorOf(b.clean[lo*px:hi*px], n, b.s, b.s, 1), tensorOf(b.noise[lo*px:hi*px], n, b.s, b.s, 1), tensorOf(b.coefs[4*lo:4*hi], n, 4)}
	if b.time {
		in = append(in, tensorOf(b.tau[lo:hi], n))
	}
	if b.k > 0 {
		in = append(in, tensorOf(b.classes[lo*b.k:hi*b.k], n, b.k))
	}
	return in
}

// stepInputs draws the inputs of a training step from b; with b nil it returns all-zero
// inputs of the same shapes (to compile the step).
func (m *Model) stepInputs(b *batchDrawer, cfg TrainConfig, s int) stepBatch {
	in := stepBatch{s: s, k: m.Net.NumClasses, time: m.Net.TimeConditioned}
	if b == nil {
		bs := cfg.BatchSize
		in.size = bs
		in.clean, in.noise, in.coefs, in.tau = make([]float32, bs*s*s), make([]float32, bs*s*s), make([]float32, 4*bs), make([]float32, bs)
		in.classes = make([]float32, bs*m.Net.NumClasses)
		return in
	}
	var labels []int
	in.clean, labels = b.next(cfg.BatchSize)
	in.size = len(labels)
	in.noise = seeded.Normals(b.rng, len(in.clean))
	in.coefs, in.tau = m.drawCoefficients(b.rng, in.size)
	if m.Net.NumClasses > 0 {
		in.classes = oneHot(labels, m.Net.NumClasses, b.rng, cfg.PUncond)
	}
	return in
}

// drawCoefficients draws each example's (a, b, c, d) and time fraction tau (see the package
// documentation).
func (m *Model) drawCoefficients(rng *rand.Rand, n int) (coefs, tau []float32) {
	coefs = make([]float32, 4*n)
	tau = make([]float32, n)
	for i := range n {
		var a, b, c, d, t float64
		switch m.Objective {
		case Denoise:
			a, b, c, d = 1, m.Sigma, 1, 0
			if m.PureNoise {
				a = 0
			}
		case Flow:
			t = rng.Float64()
			a, b, c, d = t, 1-t, 1, -1
		case DDPM:
			k := rng.IntN(m.sched.T())
			abar := m.sched.AlphaBars[k]
			a, b, c, d = math.Sqrt(abar), math.Sqrt(1-abar), 0, 1
			t = m.ddpmTau(k)
		}
		coefs[4*i], coefs[4*i+1], coefs[4*i+2], coefs[4*i+3] = float32(a), float32(b), float32(c), float32(d)
		tau[i] = float32(t)
	}
	return coefs, tau
}

// ddpmTau is the network's time input of diffusion step k (0-based): (k+1)/T.
func (m *Model) ddpmTau(k int) float64 { return float64(k+1) / float64(m.sched.T()) }

// batchDrawer walks through shuffled epochs of the training images.
type batchDrawer struct {
	images []float32 // n images of per values, in [0, 1]
	labels []int     // nil or one per image
	n, per int
	rng    *rand.Rand
	src    *rand.PCG // rng's source
	// permState is src's state before the current epoch's shuffle (nil before the first).
	permState []byte
	perm      []int
	pos       int
	lo, hi    float32
}

// next returns the next batch of k images (mapped to [lo, hi]) and their labels (-1 without
// labels); a batch that reaches the end of an epoch is completed from the next shuffle.
func (b *batchDrawer) next(k int) ([]float32, []int) {
	images := make([]float32, 0, k*b.per)
	labels := make([]int, 0, k)
	scale := b.hi - b.lo
	for len(labels) < k {
		if b.pos >= len(b.perm) {
			if b.src != nil {
				b.permState, _ = b.src.MarshalBinary()
			}
			b.perm, b.pos = b.rng.Perm(b.n), 0
		}
		i := b.perm[b.pos]
		b.pos++
		for _, v := range b.images[i*b.per : (i+1)*b.per] {
			images = append(images, b.lo+v*scale)
		}
		y := -1
		if b.labels != nil {
			y = b.labels[i]
		}
		labels = append(labels, y)
	}
	return images, labels
}

// oneHot returns one-hot rows for labels, each replaced by zeros with probability pUncond
// (rng may be nil when pUncond is 0). A label < 0 also gives a zero row.
func oneHot(labels []int, k int, rng *rand.Rand, pUncond float64) []float32 {
	out := make([]float32, len(labels)*k)
	for i, y := range labels {
		if y < 0 || (pUncond > 0 && rng.Float64() < pUncond) {
			continue
		}
		out[i*k+y] = 1
	}
	return out
}

// tensorOf wraps flat data as a tensor of the given dimensions.
func tensorOf(data []float32, dims ...int) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(data, dims...)
}

// shapeOf returns the float shape of the given dimensions.
func shapeOf(dims ...int) shapes.Shape { return shapes.Make(DType, dims...) }
