package spiral

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/godiffusion/notebooks/diffusion/ema"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
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
	// Progress, if set, is called after every step with the step (1-based) and its loss.
	Progress func(step int, loss float64) `json:"-"`
}

// ExamTrain is the exam's training: Hyvarinen, Adam 5e-3, batch 128, 8000 iterations,
// unweighted, constant rate.
func ExamTrain() TrainConfig {
	return TrainConfig{Objective: Hyvarinen, Weighting: Uniform, Steps: 8000, BatchSize: 128, LR: 5e-3, TMin: 1.0 / 200, Seed: 1}
}

func (c *TrainConfig) check() error {
	if err := c.Objective.Valid(); err != nil {
		return err
	}
	switch c.Weighting {
	case Uniform, Sigma2, Sigma:
	case "":
		c.Weighting = Uniform
	default:
		return fmt.Errorf("spiral: unknown weighting %q (want %q, %q or %q)", c.Weighting, Uniform, Sigma, Sigma2)
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
	if !(c.EMADecay >= 0 && c.EMADecay < 1) {
		return fmt.Errorf("spiral: the EMA decay must be in [0, 1), got %g", c.EMADecay)
	}
	if c.ValSize <= 0 {
		c.ValSize = 4096
	}
	return nil
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
	// validation set: the minima the network approaches.
	ExactHyvarinen float64       `json:"exact_hyvarinen"`
	ExactDSM       float64       `json:"exact_dsm"`
	Duration       time.Duration `json:"duration"`
}

// trainer holds the compiled training step.
type trainer struct {
	objective Objective
	weighting Weighting
	ema       bool
	step      *model.Exec
	avg       *ema.Averages // with ema
	count     int           // steps taken (the EMA warm-up)
}

// lossGraph returns the per-example losses of objective o (unweighted) at xt [B, 2], t [B]
// with noise eps [B, 2] and scales sigma [B] (eps and sigma only for DSM).
func (n *Net) lossGraph(scope *model.Scope, o Objective, xt, t, eps, sigma *Node) *Node {
	if o == Hyvarinen {
		return hyvarinenLoss(n.scoreAndTrace(scope, xt, t))
	}
	return dsmLoss(n.graph(scope, xt, t), eps, sigma)
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
	xt, eps     []float32
	t, sigma, w []float32
}

// drawBatch draws x0 fresh from the mixture, t = tMin + (1 - tMin) u^skew and eps ~ N(0, I).
func drawBatch(mix *Mixture, p Process, size int, tMin, skew float64, weighting Weighting, rng *rand.Rand) (batch, error) {
	b := batch{xt: mix.Sample(size, rng), eps: make([]float32, size*Dim), t: make([]float32, size),
		sigma: make([]float32, size), w: make([]float32, size)}
	for i := range size {
		u := rng.Float64()
		if skew != 1 {
			u = math.Pow(u, skew)
		}
		t := tMin + (1-tMin)*u
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
		}
		for d := range Dim {
			e := rng.NormFloat64()
			b.eps[i*Dim+d] = float32(e)
			b.xt[i*Dim+d] = float32(a*float64(b.xt[i*Dim+d]) + s*e)
		}
	}
	return b, nil
}

func (b batch) tensors() []any {
	n := len(b.t)
	return []any{tensors.FromFlatDataAndDimensions(b.xt, n, Dim), tensors.FromFlatDataAndDimensions(b.t, n),
		tensors.FromFlatDataAndDimensions(b.eps, n, Dim), tensors.FromFlatDataAndDimensions(b.sigma, n),
		tensors.FromFlatDataAndDimensions(b.w, n)}
}

// newTrainer compiles the training step of cfg (Adam; the rate is set per step).
func (n *Net) newTrainer(cfg TrainConfig) (*trainer, error) {
	tr := &trainer{objective: cfg.Objective, weighting: cfg.Weighting, ema: cfg.EMADecay > 0}
	if tr.ema {
		var err error
		if tr.avg, err = ema.NewForScope(n.store, "/"+NetScope); err != nil {
			return nil, err
		}
	}
	opt := optimizer.Adam().LearningRate(cfg.LR).Epsilon(1e-8).Done()
	var err error
	tr.step, err = model.NewExec(n.backend, n.store, func(scope *model.Scope, in []*Node) *Node {
		xt, t, eps, sigma, w, decay := in[0], in[1], in[2], in[3], in[4], in[5]
		loss := ReduceAllMean(Mul(w, n.lossGraph(scope, cfg.Objective, xt, t, eps, sigma)))
		opt.UpdateGraph(scope, xt.Graph(), loss)
		if tr.avg != nil {
			tr.avg.Update(xt.Graph(), decay)
		}
		return loss
	})
	return tr, err
}

// TrainStep runs one optimizer step of cfg on a fresh batch from mix and returns its loss
// (the benchmarks' unit; Train calls the same step).
func (n *Net) TrainStep(mix *Mixture, cfg TrainConfig, rng *rand.Rand) (loss float64, err error) {
	defer savedmodel.RecoverError(&err, "spiral.Net.TrainStep")
	if n == nil || n.store == nil || mix == nil || rng == nil {
		return 0, fmt.Errorf("spiral.Net.TrainStep: needs an initialized network, a mixture and a random stream")
	}
	if err := cfg.check(); err != nil {
		return 0, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.train == nil || n.train.objective != cfg.Objective || n.train.weighting != cfg.Weighting || n.train.ema != (cfg.EMADecay > 0) {
		if n.train, err = n.newTrainer(cfg); err != nil {
			return 0, err
		}
	}
	b, err := drawBatch(mix, n.Process, cfg.BatchSize, cfg.TMin, cfg.TimeSkew, cfg.Weighting, rng)
	if err != nil {
		return 0, err
	}
	decay := float32(ema.WarmupDecay(cfg.EMADecay, n.train.count))
	out, err := n.train.step.Call1(append(b.tensors(), decay)...)
	if err != nil {
		return 0, err
	}
	n.train.count++
	defer out.FinalizeAll()
	return float64(tensors.ToScalar[float32](out)), nil
}

// Train trains the network on samples drawn fresh from the mixture at every step (p0 is
// known exactly, so there is no finite training set) with Adam on cfg's objective. Calling it
// again continues from the current weights (and Adam state, for the same objective).
func (n *Net) Train(mix *Mixture, cfg TrainConfig) (hist *History, err error) {
	defer savedmodel.RecoverError(&err, "spiral.Net.Train")
	if n == nil || n.store == nil {
		return nil, fmt.Errorf("spiral.Net.Train: nil or uninitialized network (use NewNet or Load)")
	}
	if mix == nil {
		return nil, fmt.Errorf("spiral.Net.Train: nil mixture")
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5c07e))
	val, err := drawBatch(mix, n.Process, cfg.ValSize, cfg.TMin, 1, Uniform, rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7a1)))
	if err != nil {
		return nil, err
	}
	hist = &History{Config: cfg, TrainLoss: make([]float64, 0, cfg.Steps)}
	hist.ExactHyvarinen, hist.ExactDSM, err = exactLosses(Exact{Mixture: mix, Process: n.Process}, val)
	if err != nil {
		return nil, err
	}
	valExec, err := model.NewExec(n.backend, n.store, func(scope *model.Scope, in []*Node) (*Node, *Node) {
		xt, t, eps, sigma := in[0], in[1], in[2], in[3]
		s, tr := n.scoreAndTrace(scope, xt, t)
		return ReduceAllMean(hyvarinenLoss(s, tr)), ReduceAllMean(dsmLoss(s, eps, sigma))
	})
	if err != nil {
		return nil, err
	}
	validate := func(step int) error {
		n.mu.Lock()
		h, d, err := valExec.Call2(val.tensors()[:4]...)
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
	sched := cfg.lr()
	for step := range cfg.Steps {
		if step == 0 || sched.Varies() {
			if err := lrschedule.Set(n.store, sched.At(step)); err != nil {
				return nil, err
			}
		}
		loss, err := n.TrainStep(mix, cfg, rng)
		if err != nil {
			return hist, fmt.Errorf("spiral: step %d: %w", step+1, err)
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return hist, fmt.Errorf("spiral: training diverged at step %d (loss %v); lower the learning rate", step+1, loss)
		}
		hist.TrainLoss = append(hist.TrainLoss, loss)
		if cfg.Progress != nil {
			cfg.Progress(step+1, loss)
		}
		if (cfg.ValEvery > 0 && (step+1)%cfg.ValEvery == 0) || step+1 == cfg.Steps {
			if step+1 == cfg.Steps && n.train.avg != nil {
				if err := n.train.avg.Apply(); err != nil {
					return hist, err
				}
			}
			if err := validate(step + 1); err != nil {
				return hist, err
			}
		}
	}
	hist.Duration = time.Since(start)
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
