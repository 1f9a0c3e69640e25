package spiral

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/godiffusion/notebooks/diffusion/dataparallel"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// Objective names a score-matching loss.
type Objective string

const (
	// Hyvarinen is implicit score matching on the noisy data x_t ~ p_t:
	// E[tr(d s / d x) + |s|^2 / 2], the trace computed exactly by autodiff (the exam's loss).
	// Its minimum is -E|grad log p_t|^2 / 2 (integration by parts), reached by the true score.
	Hyvarinen Objective = "hyvarinen"
	// DSM is denoising score matching: E[|s(x_t, t) + eps / sigma(t)|^2 / 2] with
	// x_t = alpha(t) x0 + sigma(t) eps, whose minimizer is the same score (Vincent 2011).
	DSM Objective = "dsm"
)

// Valid reports an unknown objective.
func (o Objective) Valid() error {
	switch o {
	case Hyvarinen, DSM:
		return nil
	}
	return fmt.Errorf("spiral: unknown objective %q (want %q or %q)", o, Hyvarinen, DSM)
}

// Weighting names the weight lambda(t) of each time in the loss.
type Weighting string

const (
	// Uniform weights every t by 1 (the exam's loss).
	Uniform Weighting = "none"
	// Sigma2 weights t by sigma(t)^2 (Song et al. 2021): every t contributes a loss of order
	// one instead of the 1/sigma^2 of the plain loss, which near the data drowns the rest.
	Sigma2 Weighting = "sigma2"
	// Sigma weights t by sigma(t), between the two: small t keep more weight than with
	// Sigma2, without Uniform's variance.
	Sigma Weighting = "sigma"
	// Importance is Uniform's objective (the exam's loss, the same expectation) estimated with
	// less variance: t is drawn log-uniformly on [TMin, 1] (density q(t) = 1 / (t ln(1/TMin)),
	// so the small times where the loss is of order 1/sigma^2 are drawn more often) and each
	// example is weighted by p(t)/q(t) = t ln(1/TMin) / (1 - TMin), p the uniform density.
	// TimeSkew must be 1.
	Importance Weighting = "importance"
)

// TrainConfig configures Train.
type TrainConfig struct {
	Objective Objective `json:"objective"`
	Weighting Weighting `json:"weighting"`
	Steps     int       `json:"steps"`
	BatchSize int       `json:"batch_size"`
	LR        float64   `json:"lr"`
	// LRSchedule is lrschedule.Constant ("", the exam) or Cosine / Exponential down to
	// FinalLRFraction of LR.
	LRSchedule      lrschedule.Kind `json:"lr_schedule"`
	FinalLRFraction float64         `json:"final_lr_fraction"`
	// TMin is the smallest training time; t ~ U[TMin, 1] (the exam's grid evaluates the score
	// at t = k/K, k >= 1, so TMin = 1/K).
	TMin float64 `json:"t_min"`
	// TimeSkew >= 1 draws t = TMin + (1 - TMin) u^TimeSkew, u ~ U[0, 1): 1 (or 0) is uniform
	// (the exam); larger values visit the small times, where the score has the fine structure
	// of p0 and samples get their last corrections, more often (with skew 3, t < 0.05 is drawn
	// 35% of the time instead of 4.5%).
	TimeSkew float64 `json:"time_skew"`
	Seed     int64   `json:"seed"`
	// EMADecay, if > 0 (e.g. 0.999), keeps an exponential moving average of the weights (with
	// ema.WarmupDecay) and sets the network to it at the end of Train. Validation losses during
	// training use the raw weights; the last one (after the average is applied) the average.
	EMADecay float64 `json:"ema_decay,omitempty"`
	// ValEvery is the number of steps between validation losses (0: only at the end).
	ValEvery int `json:"val_every"`
	// ValSize is the number of fixed (x0, t, eps) triples of the validation losses (default 4096).
	ValSize int `json:"val_size"`
	// PUncond is the probability with which a training example of a class-conditional network
	// has its label replaced by sampling.Null (classifier-free guidance's label dropout, Ho &
	// Salimans 2022; the exam: 0.2), so that one network learns the conditional and the
	// unconditional score. Ignored (must be 0) for unconditional data.
	PUncond float64 `json:"p_uncond,omitempty"`
	// Workers is the number of shards of each batch whose gradients are computed
	// concurrently (package dataparallel; 0 or 1: one). It changes the result only by float
	// rounding; the presets use 2 (both cores).
	Workers int `json:"workers,omitempty"`
	// Progress, if set, is called after every step with the step (1-based) and its loss.
	Progress func(step int, loss float64) `json:"-"`
	// Resume makes the training resumable (see Net.Train); not part of the configuration.
	Resume trainstate.Options `json:"-"`
}

// ExamTrain is the exam's training: Hyvarinen, Adam 5e-3, batch 128, 8000 iterations,
// unweighted, constant rate.
func ExamTrain() TrainConfig {
	return TrainConfig{Objective: Hyvarinen, Weighting: Uniform, Steps: 8000, BatchSize: 128, LR: 5e-3, TMin: 1.0 / 200, Seed: 1}
}

// Validate reports a training configuration that cannot run, naming the problem (unset
// optional fields take their defaults, as in Train).
func (c TrainConfig) Validate() error { return c.check() }

func (c *TrainConfig) check() error {
	if err := c.Objective.Valid(); err != nil {
		return err
	}
	switch c.Weighting {
	case Uniform, Sigma2, Sigma, Importance:
	case "":
		c.Weighting = Uniform
	default:
		return fmt.Errorf("spiral: unknown weighting %q (want %q, %q, %q or %q)", c.Weighting, Uniform, Sigma, Sigma2, Importance)
	}
	if c.Steps < 1 || c.BatchSize < 1 {
		return fmt.Errorf("spiral: training needs steps >= 1 and batch size >= 1, got %d, %d", c.Steps, c.BatchSize)
	}
	if err := c.lr().Validate(); err != nil {
		return fmt.Errorf("spiral: %w", err)
	}
	if !(c.TMin > 0 && c.TMin < 1) {
		return fmt.Errorf("spiral: the smallest training time must be in (0, 1), got %g", c.TMin)
	}
	if c.TimeSkew == 0 {
		c.TimeSkew = 1
	}
	if !(c.TimeSkew >= 1) || math.IsInf(c.TimeSkew, 0) {
		return fmt.Errorf("spiral: the time skew must be a finite number >= 1 (1: uniform), got %g", c.TimeSkew)
	}
	if c.Weighting == Importance && c.TimeSkew != 1 {
		return fmt.Errorf("spiral: the %q weighting draws its own times: the time skew must be 1, got %g", Importance, c.TimeSkew)
	}
	if !(c.EMADecay >= 0 && c.EMADecay < 1) {
		return fmt.Errorf("spiral: the EMA decay must be in [0, 1), got %g", c.EMADecay)
	}
	if c.ValSize <= 0 {
		c.ValSize = 4096
	}
	if !(c.PUncond >= 0 && c.PUncond <= 1) {
		return fmt.Errorf("spiral: the label dropout p_uncond must be in [0, 1], got %g", c.PUncond)
	}
	if c.Workers < 0 || c.Workers > 64 {
		return fmt.Errorf("spiral: the number of data-parallel workers must be in [0, 64], got %d", c.Workers)
	}
	return nil
}

// Data is a training set of a score network: Draw returns n fresh examples x0 (n*D values,
// row by row) drawn with rng and, for class-conditional data, their labels (nil otherwise).
// *Mixture is one (fresh samples of p0, no labels); latent diffusion's encoded MNIST is
// another.
type Data interface {
	Draw(n int, rng *rand.Rand) (x0 []float32, labels []int, err error)
}

// Draw returns n fresh samples of the mixture (no labels): the mixture as training Data.
func (m *Mixture) Draw(n int, rng *rand.Rand) ([]float32, []int, error) {
	return m.Sample(n, rng), nil, nil
}

func (c *TrainConfig) lr() lrschedule.Schedule {
	return lrschedule.Schedule{Kind: c.LRSchedule, LR: c.LR, FinalFraction: c.FinalLRFraction, Steps: c.Steps}
}

// History records a training run.
type History struct {
	Config    TrainConfig `json:"config"`
	TrainLoss []float64   `json:"train_loss"` // the training objective of every step (weighted)
	ValSteps  []int       `json:"val_steps"`
	// ValHyvarinen is the plain (unweighted) Hyvarinen loss on the validation set at ValSteps,
	// whatever the objective: the exam's reported loss.
	ValHyvarinen []float64 `json:"val_hyvarinen"`
	// ValDSM is the unweighted denoising loss on the validation set at ValSteps.
	ValDSM []float64 `json:"val_dsm"`
	// ExactHyvarinen and ExactDSM are the same losses of the exact score on the same
	// validation set: the minima the network approaches (0 when trained by TrainOn: no exact
	// score).
	ExactHyvarinen float64       `json:"exact_hyvarinen"`
	ExactDSM       float64       `json:"exact_dsm"`
	Duration       time.Duration `json:"duration"`
}

// trainer holds the compiled data-parallel training step.
type trainer struct {
	objective Objective
	weighting Weighting
	ema       bool
	workers   int
	step      *dataparallel.Stepper
}

// lossGraph returns the per-example losses of objective o (unweighted) at xt [B, D], t [B]
// with noise eps [B, D] and scales sigma [B] (eps and sigma only for DSM), for the classes c
// (nil for an unconditional network).
func (n *Net) lossGraph(scope *model.Scope, o Objective, xt, t, eps, sigma, c *Node) *Node {
	if o == Hyvarinen {
		return hyvarinenLoss(n.scoreAndTrace(scope, xt, t, c))
	}
	return dsmLoss(n.graph(scope, xt, t, c), eps, sigma)
}

// hyvarinenLoss is tr(d s / d x) + |s|^2 / 2 per example.
func hyvarinenLoss(s, trace *Node) *Node {
	return Add(trace, MulScalar(ReduceSum(Square(s), -1), 0.5))
}

// dsmLoss is |s + eps / sigma|^2 / 2 per example.
func dsmLoss(s, eps, sigma *Node) *Node {
	return MulScalar(ReduceSum(Square(Add(s, Div(eps, InsertAxes(sigma, -1)))), -1), 0.5)
}

// batch is one training batch on the host.
type batch struct {
	dim         int
	xt, eps     []float32
	t, sigma, w []float32
	labels      []int // nil for unconditional data; sampling.Null where dropped
}

// batchOptions are the draws of drawBatch.
type batchOptions struct {
	size       int
	tMin, skew float64
	weighting  Weighting
	pUncond    float64
}

// drawBatch draws x0 fresh from the data (dim values each), t = tMin + (1 - tMin) u^skew and
// eps ~ N(0, I), and with labelled data drops each label to sampling.Null with probability
// pUncond (after the other draws, so unlabelled data draws exactly as before labels existed).
func drawBatch(data Data, dim int, p Process, o batchOptions, rng *rand.Rand) (batch, error) {
	size, tMin, skew, weighting := o.size, o.tMin, o.skew, o.weighting
	x0, labels, err := data.Draw(size, rng)
	if err != nil {
		return batch{}, err
	}
	if len(x0) != size*dim || (labels != nil && len(labels) != size) {
		return batch{}, fmt.Errorf("spiral: the data returned %d values and %d labels for %d examples of dimension %d", len(x0), len(labels), size, dim)
	}
	b := batch{dim: dim, xt: x0, eps: make([]float32, size*dim), t: make([]float32, size),
		sigma: make([]float32, size), w: make([]float32, size), labels: labels}
	for i := range size {
		u := rng.Float64()
		if skew != 1 {
			u = math.Pow(u, skew)
		}
		t := tMin + (1-tMin)*u
		if weighting == Importance {
			t = tMin * math.Pow(1/tMin, u) // log-uniform on [tMin, 1)
		}
		a, s, err := p.Scales(t)
		if err != nil {
			return b, err
		}
		b.t[i], b.sigma[i] = float32(t), float32(s)
		b.w[i] = 1
		switch weighting {
		case Sigma2:
			b.w[i] = float32(s * s)
		case Sigma:
			b.w[i] = float32(s)
		case Importance:
			b.w[i] = float32(t * math.Log(1/tMin) / (1 - tMin))
		}
		for d := range dim {
			e := rng.NormFloat64()
			b.eps[i*dim+d] = float32(e)
			b.xt[i*dim+d] = float32(a*float64(b.xt[i*dim+d]) + s*e)
		}
	}
	if labels != nil && o.pUncond > 0 {
		b.labels = append([]int(nil), labels...)
		for i := range b.labels {
			if rng.Float64() < o.pUncond {
				b.labels[i] = sampling.Null
			}
		}
	}
	return b, nil
}

// slice returns examples [lo, hi) of the batch (sharing its values).
func (b batch) slice(lo, hi int) batch {
	out := batch{dim: b.dim, xt: b.xt[lo*b.dim : hi*b.dim], eps: b.eps[lo*b.dim : hi*b.dim], t: b.t[lo:hi], sigma: b.sigma[lo:hi], w: b.w[lo:hi]}
	if b.labels != nil {
		out.labels = b.labels[lo:hi]
	}
	return out
}

// tensors returns xt, t, eps, sigma and w as tensors.
func (b batch) tensors() []any {
	n := len(b.t)
	return []any{tensors.FromFlatDataAndDimensions(b.xt, n, b.dim), tensors.FromFlatDataAndDimensions(b.t, n),
		tensors.FromFlatDataAndDimensions(b.eps, n, b.dim), tensors.FromFlatDataAndDimensions(b.sigma, n),
		tensors.FromFlatDataAndDimensions(b.w, n)}
}

// classes returns the batch's class indices for network n (nil if n is unconditional);
// labelled data is required by a conditional network, and unlabelled by an unconditional one.
func (n *Net) classes(b batch) ([]int32, error) {
	if !n.Conditional() {
		if b.labels != nil {
			return nil, fmt.Errorf("spiral: labelled data for an unconditional network (set NetConfig.Classes)")
		}
		return nil, nil
	}
	if b.labels == nil {
		return nil, fmt.Errorf("spiral: a class-conditional network needs labelled data")
	}
	return n.classIndices(b.labels, len(b.t))
}

// classTensor is classes as a tensor (nil if n is unconditional).
func (n *Net) classTensor(b batch) (*tensors.Tensor, error) {
	c, err := n.classes(b)
	if c == nil || err != nil {
		return nil, err
	}
	return tensors.FromFlatDataAndDimensions(c, len(c)), nil
}

// newTrainer compiles the training step of cfg (Adam; the rate is set per step).
func (n *Net) newTrainer(cfg TrainConfig) (*trainer, error) {
	opt := optimizer.Adam().LearningRate(cfg.LR).Epsilon(1e-8).Done()
	step, err := dataparallel.New(n.backend, n.store, opt, dataparallel.Config{Workers: cfg.Workers, EMADecay: cfg.EMADecay, EMAWarmup: true},
		func(scope *model.Scope, in []*Node) (*Node, []*Node) {
			xt, t, eps, sigma, w := in[0], in[1], in[2], in[3], in[4]
			return Mul(w, n.lossGraph(scope, cfg.Objective, xt, t, eps, sigma, n.classNode(in, 5))), nil
		})
	if err != nil {
		return nil, err
	}
	return &trainer{objective: cfg.Objective, weighting: cfg.Weighting, ema: cfg.EMADecay > 0, workers: max(1, cfg.Workers), step: step}, nil
}

// ensureTrainer builds the training step of cfg unless the one built last fits (n.mu held).
func (n *Net) ensureTrainer(cfg TrainConfig) (err error) {
	if n.train == nil || n.train.objective != cfg.Objective || n.train.weighting != cfg.Weighting || n.train.ema != (cfg.EMADecay > 0) ||
		n.train.workers != max(1, cfg.Workers) {
		n.train, err = n.newTrainer(cfg)
	}
	return err
}

// compileTrainer builds and compiles the training step of cfg for batches of its size, so
// that the optimizer's variables exist (to load a saved state into them).
func (n *Net) compileTrainer(cfg TrainConfig) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ensureTrainer(cfg); err != nil {
		return err
	}
	d := n.Dimension()
	return n.train.step.Compile(cfg.BatchSize, func(b int) []shapes.Shape {
		in := []shapes.Shape{shapes.Make(dtypes.Float32, b, d), shapes.Make(dtypes.Float32, b), shapes.Make(dtypes.Float32, b, d),
			shapes.Make(dtypes.Float32, b), shapes.Make(dtypes.Float32, b)}
		if n.Conditional() {
			in = append(in, shapes.Make(dtypes.Int32, b))
		}
		return in
	})
}

// TrainStep runs one optimizer step of cfg on a fresh batch from data and returns its loss
// (the benchmarks' unit; Train calls the same step).
func (n *Net) TrainStep(data Data, cfg TrainConfig, rng *rand.Rand) (loss float64, err error) {
	loss, _, err = n.trainStep(data, cfg, rng)
	return loss, err
}

// trainStep is TrainStep, also reporting whether every gradient value was finite.
func (n *Net) trainStep(data Data, cfg TrainConfig, rng *rand.Rand) (loss float64, gradOK bool, err error) {
	defer savedmodel.RecoverError(&err, "spiral.Net.TrainStep")
	if n == nil || n.store == nil || data == nil || rng == nil {
		return 0, false, fmt.Errorf("spiral.Net.TrainStep: needs an initialized network, data and a random stream")
	}
	if err := cfg.check(); err != nil {
		return 0, false, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.ensureTrainer(cfg); err != nil {
		return 0, false, err
	}
	b, err := drawBatch(data, n.Dimension(), n.Process, batchOptions{size: cfg.BatchSize, tMin: cfg.TMin, skew: cfg.TimeSkew,
		weighting: cfg.Weighting, pUncond: cfg.PUncond}, rng)
	if err != nil {
		return 0, false, err
	}
	c, err := n.classes(b)
	if err != nil {
		return 0, false, err
	}
	shards := dataparallel.Shards(len(b.t), n.train.workers, func(lo, hi int) []any {
		shard := b.slice(lo, hi).tensors()
		if c != nil {
			shard = append(shard, tensors.FromFlatDataAndDimensions(c[lo:hi], hi-lo))
		}
		return shard
	})
	loss, _, gradOK, err = n.train.step.Step(len(b.t), shards)
	return loss, gradOK, err
}

// Train trains the network on samples drawn fresh from the mixture at every step (p0 is
// known exactly, so there is no finite training set) with Adam on cfg's objective. Calling it
// again continues from the current weights (and Adam state, for the same objective). The
// history holds the exact score's validation losses too.
//
// With cfg.Resume.Dir set, training is resumable (package trainstate), as imagediff's: the
// whole state (every variable of the store — weights, Adam moments, EMA averages, learning
// rate — the step, the random generator, the losses and validation losses so far) is saved
// there every cfg.Resume.Every steps or Interval, and when cfg.Resume.Context is done, after
// which Train returns a *trainstate.InterruptedError; a later Train of a network fresh from
// NewNet with the same configuration, data and seed continues from the saved state and ends
// with the same weights and History (but Duration) as an uninterrupted run. A state of
// another configuration or data is ignored (Train says so and starts fresh). A step whose
// loss or gradient is NaN or infinite stops training with a *trainstate.DivergedError naming
// the step and its learning rate; nothing is saved after it.
func (n *Net) Train(mix *Mixture, cfg TrainConfig) (hist *History, err error) {
	if mix == nil {
		return nil, fmt.Errorf("spiral.Net.Train: nil mixture")
	}
	return n.trainWith(mix, cfg, &Exact{Mixture: mix, Process: n.Process})
}

// TrainOn trains the network on examples drawn from data at every step, as Train does on the
// mixture (latent diffusion trains on encoded MNIST); no exact score is known, so the history's
// ExactHyvarinen and ExactDSM are 0 (not measured). The validation losses are those of a fixed batch drawn
// from data with labels kept (no dropout), conditional for a conditional network. It is
// resumable as Train (cfg.Resume); data implementing Fingerprinter is identified by its
// fingerprint, other data by that of the validation batch drawn from it.
func (n *Net) TrainOn(data Data, cfg TrainConfig) (hist *History, err error) {
	if data == nil {
		return nil, fmt.Errorf("spiral.Net.TrainOn: nil data")
	}
	return n.trainWith(data, cfg, nil)
}

// Fingerprinter is implemented by training Data that identifies itself for resuming: a saved
// training state is resumed only on data with the same fingerprint.
type Fingerprinter interface {
	Fingerprint() trainstate.Data
}

// resumeKind is the kind of spiral's resumable training states.
const resumeKind = "spiral.Train"

// runIdentity is what defines a training run for resuming (callbacks and checkpointing
// options do not count).
type runIdentity struct {
	Net     NetConfig       `json:"net"`
	Process Process         `json:"process"`
	Train   TrainConfig     `json:"train"`
	Exact   bool            `json:"exact"` // Train (on a mixture) rather than TrainOn
	Data    trainstate.Data `json:"data"`
}

// resumeExtra is spiral's part of a resumable state: the validation losses so far.
type resumeExtra struct {
	ValSteps     []int     `json:"val_steps"`
	ValHyvarinen []float64 `json:"val_hyvarinen"`
	ValDSM       []float64 `json:"val_dsm"`
}

// trainWith is Train and TrainOn; exact, if set, scores the validation set too.
func (n *Net) trainWith(data Data, cfg TrainConfig, exact *Exact) (hist *History, err error) {
	defer savedmodel.RecoverError(&err, "spiral.Net.Train")
	if n == nil || n.store == nil {
		return nil, fmt.Errorf("spiral.Net.Train: nil or uninitialized network (use NewNet or Load)")
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	src := rand.NewPCG(uint64(cfg.Seed), 0x5c07e)
	rng := rand.New(src)
	val, err := drawBatch(data, n.Dimension(), n.Process, batchOptions{size: cfg.ValSize, tMin: cfg.TMin, skew: 1, weighting: Uniform},
		rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7a1)))
	if err != nil {
		return nil, err
	}
	valClass, err := n.classTensor(val)
	if err != nil {
		return nil, err
	}
	var identity any
	if cfg.Resume.Dir != "" {
		fp := trainstate.Fingerprint(val.xt, val.labels)
		if f, ok := data.(Fingerprinter); ok {
			fp = f.Fingerprint()
		}
		identity = runIdentity{Net: n.Config, Process: n.Process, Train: cfg, Exact: exact != nil, Data: fp}
	}
	run, st, err := cfg.Resume.Start(resumeKind, identity, cfg.Steps)
	if err != nil {
		return nil, err
	}
	hist = &History{Config: cfg, TrainLoss: make([]float64, 0, cfg.Steps)}
	if exact != nil {
		hist.ExactHyvarinen, hist.ExactDSM, err = exactLosses(*exact, val)
		if err != nil {
			return nil, err
		}
	}
	first, before := 0, 0.0
	if st != nil {
		// Compile the step (creating the optimizer's variables), then load every variable and
		// put the generator, the EMA warm-up and the histories where they were.
		if err := n.compileTrainer(cfg); err != nil {
			return nil, err
		}
		if run.Restore(n.store) {
			var extra resumeExtra
			if err := json.Unmarshal(st.Extra, &extra); err != nil {
				return nil, fmt.Errorf("spiral: resuming: invalid state: %w", err)
			}
			if err := src.UnmarshalBinary(st.RNG["main"]); err != nil {
				return nil, fmt.Errorf("spiral: resuming: invalid RNG state: %w", err)
			}
			hist.TrainLoss = append(hist.TrainLoss, st.Loss...)
			hist.ValSteps, hist.ValHyvarinen, hist.ValDSM = extra.ValSteps, extra.ValHyvarinen, extra.ValDSM
			first, before = st.Step, st.Seconds
			n.train.step.SetSteps(st.Step)
		}
	}
	valExec, err := model.NewExec(n.backend, n.store, func(scope *model.Scope, in []*Node) (*Node, *Node) {
		xt, t, eps, sigma := in[0], in[1], in[2], in[3]
		s, tr := n.scoreAndTrace(scope, xt, t, n.classNode(in, 4))
		return ReduceAllMean(hyvarinenLoss(s, tr)), ReduceAllMean(dsmLoss(s, eps, sigma))
	})
	if err != nil {
		return nil, err
	}
	valArgs := val.tensors()[:4]
	if valClass != nil {
		valArgs = append(valArgs, valClass)
	}
	validate := func(step int) error {
		n.mu.Lock()
		h, d, err := valExec.Call2(valArgs...)
		n.mu.Unlock()
		if err != nil {
			return err
		}
		hist.ValSteps = append(hist.ValSteps, step)
		hist.ValHyvarinen = append(hist.ValHyvarinen, float64(tensors.ToScalar[float32](h)))
		hist.ValDSM = append(hist.ValDSM, float64(tensors.ToScalar[float32](d)))
		return nil
	}
	start := time.Now()
	// save writes the resumable state after step completed steps.
	save := func(step int) error {
		main, err := src.MarshalBinary()
		if err != nil {
			return err
		}
		extra, err := json.Marshal(resumeExtra{ValSteps: hist.ValSteps, ValHyvarinen: hist.ValHyvarinen, ValDSM: hist.ValDSM})
		if err != nil {
			return err
		}
		return run.Save(n.store, &trainstate.State{Step: step, Loss: hist.TrainLoss, Seconds: before + time.Since(start).Seconds(),
			RNG: map[string][]byte{"main": main}, Extra: extra})
	}
	sched := cfg.lr()
	for step := first; step < cfg.Steps; step++ {
		if err := run.Interrupted(step, save); err != nil {
			return hist, err
		}
		lr := sched.At(step)
		if step == first || sched.Varies() {
			if err := lrschedule.Set(n.store, lr); err != nil {
				return nil, err
			}
		}
		loss, gradOK, err := n.trainStep(data, cfg, rng)
		if err != nil {
			return hist, fmt.Errorf("spiral: step %d: %w", step+1, err)
		}
		if err := run.Diverged(step+1, lr, loss, gradOK); err != nil {
			// The weights are those of the failed step: nothing more is saved.
			return hist, fmt.Errorf("spiral: %w", err)
		}
		hist.TrainLoss = append(hist.TrainLoss, loss)
		if cfg.Progress != nil {
			cfg.Progress(step+1, loss)
		}
		if (cfg.ValEvery > 0 && (step+1)%cfg.ValEvery == 0) || step+1 == cfg.Steps {
			if step+1 == cfg.Steps {
				if err := n.train.step.UseEMA(); err != nil {
					return hist, err
				}
			}
			if err := validate(step + 1); err != nil {
				return hist, err
			}
		}
		if run.Due(step + 1) {
			if err := save(step + 1); err != nil {
				return hist, err
			}
		}
	}
	hist.Duration = time.Duration((before + time.Since(start).Seconds()) * float64(time.Second))
	return hist, nil
}

// exactLosses returns the unweighted Hyvarinen and DSM losses of the exact score on b.
func exactLosses(e Exact, b batch) (hyv, dsm float64, err error) {
	x := b.xt
	t := make([]float64, len(b.t))
	for i, v := range b.t {
		t[i] = float64(v)
	}
	s, tr, err := e.ScoreAndTrace(x, t)
	if err != nil {
		return 0, 0, err
	}
	for i := range t {
		s0, s1 := float64(s[2*i]), float64(s[2*i+1])
		hyv += tr[i] + (s0*s0+s1*s1)/2
		sg := float64(b.sigma[i])
		d0, d1 := s0+float64(b.eps[2*i])/sg, s1+float64(b.eps[2*i+1])/sg
		dsm += (d0*d0 + d1*d1) / 2
	}
	return hyv / float64(len(t)), dsm / float64(len(t)), nil
}
