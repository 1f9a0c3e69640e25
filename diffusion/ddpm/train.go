package ddpm

import (
	"fmt"
	"math"
	"time"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/godiffusion/notebooks/diffusion/dataparallel"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/seeded"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// TrainConfig configures the training of a denoiser or a classifier.
type TrainConfig struct {
	Steps     int     // optimizer steps
	BatchSize int     // examples per step, drawn with replacement from the data
	LR        float64 // Adam learning rate
	// LRSchedule is lrschedule.Constant (default when empty), Cosine or Exponential.
	LRSchedule lrschedule.Kind
	// FinalLRFraction is the last step's learning rate as a fraction of LR (Cosine,
	// Exponential; 0 means 0).
	FinalLRFraction float64
	AdamEpsilon     float64 // Adam epsilon; 0 means 1e-8 (PyTorch's default)
	Seed            int64   // seed of batches, time steps and noise
	// ValEvery is the number of steps between validation losses (0: only at the end).
	ValEvery int
	// ValSize is the number of held-out (point, t, noise) triples of the validation loss,
	// drawn once with Seed from the validation points (default 2000).
	ValSize int
	// Workers is the number of shards of each batch whose gradients are computed
	// concurrently (default 1; 2 uses both cores of a 2-core machine with the go backend).
	// The update is the whole batch's gradient however the batch is split.
	Workers int
	// EMADecay, if > 0 (e.g. 0.999), keeps an exponential moving average of the weights
	// during training; at the end the network's weights are set to the average (a further
	// Train continues from it). Validation losses during training use the raw weights.
	EMADecay float64
	// TimeSkew, if > 1, draws the denoiser's training time steps as t = floor(T u^TimeSkew)
	// with u uniform in [0, 1), so small t (where the samples get their last, finest
	// corrections) are drawn more often: P(t < k) = (k/T)^(1/TimeSkew). 0 or 1 draws t
	// uniformly (the assignment). The validation loss always uses uniform t.
	TimeSkew float64
	// Progress, if set, is called after every step with the step number (1-based) and the
	// step's training loss; return quickly.
	Progress func(step int, trainLoss float64) `json:"-"`
	// Resume makes the training resumable (package trainstate): with Resume.Dir set, the
	// state (every variable of the store, the step, the batches' generator, the history) is
	// saved there every Resume.Every steps or Interval and at an interrupt of
	// Resume.Context (Train then returns a *trainstate.InterruptedError), and a Train of a
	// model fresh from New (same seed) with the same configuration and data continues from
	// it to the same weights and history. Not part of the configuration.
	Resume trainstate.Options `json:"-"`
}

// Validate reports a configuration Train would refuse, naming the field.
func (c TrainConfig) Validate() error { return c.check() }

func (c *TrainConfig) check() error {
	if c.Steps < 1 || c.BatchSize < 1 || !(c.LR > 0) {
		return fmt.Errorf("ddpm: training needs Steps >= 1, BatchSize >= 1 and LR > 0, got %+v", *c)
	}
	if err := c.lr().Validate(); err != nil {
		return fmt.Errorf("ddpm: %w", err)
	}
	if (c.TimeSkew != 0 && !(c.TimeSkew >= 1)) || math.IsInf(c.TimeSkew, 0) {
		return fmt.Errorf("ddpm: TimeSkew must be 0 (uniform) or a finite exponent >= 1, got %v", c.TimeSkew)
	}
	if c.ValSize <= 0 {
		c.ValSize = 2000
	}
	if c.AdamEpsilon <= 0 {
		c.AdamEpsilon = 1e-8
	}
	return nil
}

// lr returns the learning-rate schedule.
func (c *TrainConfig) lr() lrschedule.Schedule {
	return lrschedule.Schedule{Kind: c.LRSchedule, LR: c.LR, FinalFraction: c.FinalLRFraction, Steps: c.Steps}
}

// History records a training run.
type History struct {
	TrainLoss []float64 // loss of every step
	TrainAcc  []float64 // classifier only: batch accuracy of every step
	ValSteps  []int     // steps (1-based) at which validation ran
	ValLoss   []float64 // validation loss at ValSteps
	ValAcc    []float64 // classifier only: validation accuracy at ValSteps
	Duration  time.Duration
}

// validationSet draws a fixed set of (x0, t, noise) from points.
func validationSet(points []float32, dim, size, T int, seed int64) (x0 []float32, ts []int32, noise []float32, idx []int) {
	rng := seeded.New(seed ^ 0x5eed)
	n := len(points) / dim
	x0 = make([]float32, 0, size*dim)
	ts = make([]int32, size)
	idx = make([]int, size)
	for i := range size {
		j := rng.IntN(n)
		idx[i] = j
		x0 = append(x0, points[j*dim:(j+1)*dim]...)
		ts[i] = int32(rng.IntN(T))
	}
	noise = seeded.Normals(rng, size*dim)
	return
}

// Train trains the denoiser on points (flat N*D) with the DDPM loss: random t per example,
// Gaussian noise, MSE between the true and predicted noise; Adam. valPoints (may be nil: then
// a random subset of points) provide the held-out validation loss. Calling Train again
// continues training (Adam state included). A step whose loss or gradient is NaN or infinite
// is not applied and stops training with a *trainstate.DivergedError naming the step and its
// learning rate (the weights stay those before it; nothing more is saved). The same holds
// for Classifier.Train.
func (d *Denoiser) Train(points, valPoints []float32, cfg TrainConfig) (hist *History, err error) {
	defer recoverError(&err, "ddpm.Denoiser.Train")
	if err := cfg.check(); err != nil {
		return nil, err
	}
	dim := d.Net.DataDim
	if _, err := numPoints(points, dim); err != nil {
		return nil, err
	}
	if valPoints == nil {
		valPoints = points
	} else if _, err := numPoints(valPoints, dim); err != nil {
		return nil, fmt.Errorf("validation points: %w", err)
	}
	T := d.Schedule.T()
	opt := optimizer.Adam().LearningRate(cfg.LR).Epsilon(cfg.AdamEpsilon).Done()
	trainer, err := dataparallel.New(d.backend, d.store, opt, dataparallel.Config{Workers: cfg.Workers, EMADecay: cfg.EMADecay}, func(scope *model.Scope, in []*Node) (*Node, []*Node) {
		x0, t, noise := in[0], in[1], in[2]
		eps := d.Graph(scope, d.Schedule.QSample(x0, t, noise), t)
		return ReduceMean(Square(Sub(eps, noise)), -1), nil
	})
	if err != nil {
		return nil, err
	}
	batches := newBatcher(points, nil, dim, T, cfg.Seed)
	batches.timeSkew = cfg.TimeSkew
	valX0, valT, valNoise, _ := validationSet(valPoints, dim, cfg.ValSize, T, cfg.Seed)
	valExec, err := model.NewExec1(d.backend, d.store, func(scope *model.Scope, x0, t, noise *Node) *Node {
		xt := d.Schedule.QSample(x0, t, noise)
		return ReduceAllMean(Square(Sub(d.Graph(scope, xt, t), noise)))
	})
	if err != nil {
		return nil, err
	}
	valX0T := tensors.FromFlatDataAndDimensions(valX0, cfg.ValSize, dim)
	valTT := tensors.FromFlatDataAndDimensions(valT, cfg.ValSize)
	valNoiseT := tensors.FromFlatDataAndDimensions(valNoise, cfg.ValSize, dim)
	validate := func(step int) error {
		out, err := valExec.Call(valX0T, valTT, valNoiseT)
		if err != nil {
			return err
		}
		hist.ValSteps = append(hist.ValSteps, step)
		hist.ValLoss = append(hist.ValLoss, float64(tensors.ToScalar[float32](out)))
		return nil
	}

	hist = &History{TrainLoss: make([]float64, 0, cfg.Steps)}
	run, st, err := startResume(cfg, func() runIdentity {
		return runIdentity{Model: "denoiser", Net: d.Net, Schedule: d.Schedule.Config, Train: cfg, Data: trainstate.Fingerprint(points, nil), Val: trainstate.Fingerprint(valPoints, nil)}
	})
	if err != nil {
		return nil, err
	}
	first, before := 0, 0.0
	if st != nil {
		ok, err := resumeLoop(run, st, d.store, trainer, batches, hist, cfg.BatchSize)
		if err != nil {
			return nil, err
		}
		if ok {
			first, before = st.Step, st.Seconds
		}
	}
	start := time.Now()
	save := func(step int) error {
		return saveLoop(run, d.store, step, batches, hist, before+time.Since(start).Seconds())
	}
	for step := first; step < cfg.Steps; step++ {
		if err := run.Interrupted(step, save); err != nil {
			return hist, err
		}
		if step == first || cfg.lr().Varies() {
			// (On the first Train the variable is created by the first step with cfg.LR.)
			if err := lrschedule.Set(d.store, cfg.lr().At(step)); err != nil {
				return nil, err
			}
		}
		loss, _, gradOK, err := trainer.Step(cfg.BatchSize, batches.shards(cfg.BatchSize, trainer.Workers()))
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", step+1, err)
		}
		if err := run.Diverged(step+1, cfg.lr().At(step), loss, gradOK); err != nil {
			return hist, fmt.Errorf("ddpm: denoiser: %w", err)
		}
		hist.TrainLoss = append(hist.TrainLoss, loss)
		if cfg.Progress != nil {
			cfg.Progress(step+1, loss)
		}
		if (cfg.ValEvery > 0 && (step+1)%cfg.ValEvery == 0) || step+1 == cfg.Steps {
			if len(hist.ValSteps) == 0 || hist.ValSteps[len(hist.ValSteps)-1] != step+1 {
				if err := validate(step + 1); err != nil {
					return nil, err
				}
			}
		}
		if run.Due(step + 1) {
			if err := save(step + 1); err != nil {
				return hist, err
			}
		}
	}
	if err := trainer.UseEMA(); err != nil {
		return nil, err
	}
	hist.Duration = time.Duration((before + time.Since(start).Seconds()) * float64(time.Second))
	return hist, nil
}

// Train trains the classifier on noisy points: random t per example, x_t ~ q(x_t | x_0),
// cross-entropy of the labels; Adam. valPoints/valLabels (may be nil: then a random subset of
// the training data) give the validation loss and accuracy.
func (c *Classifier) Train(points []float32, labels []int, valPoints []float32, valLabels []int, cfg TrainConfig) (hist *History, err error) {
	defer recoverError(&err, "ddpm.Classifier.Train")
	if err := cfg.check(); err != nil {
		return nil, err
	}
	dim, K := c.Net.DataDim, c.Net.NumClasses
	n, err := numPoints(points, dim)
	if err != nil {
		return nil, err
	}
	if len(labels) != n {
		return nil, fmt.Errorf("ddpm: %d points but %d labels", n, len(labels))
	}
	if _, err := labelsTensor(labels, K); err != nil {
		return nil, err
	}
	if valPoints == nil {
		valPoints, valLabels = points, labels
	} else if nv, err := numPoints(valPoints, dim); err != nil || nv != len(valLabels) {
		return nil, fmt.Errorf("ddpm: invalid validation set (%d values, %d labels): %v", len(valPoints), len(valLabels), err)
	}
	T := c.Schedule.T()
	opt := optimizer.Adam().LearningRate(cfg.LR).Epsilon(cfg.AdamEpsilon).Done()
	lossAndAcc := func(logits, y *Node) (loss, acc *Node) {
		oneHot := OneHot(y, K, logits.DType())
		loss = Neg(ReduceSum(Mul(oneHot, LogSoftmax(logits, -1)), -1))
		correct := ConvertDType(Equal(ArgMax(logits, -1, dtypes.Int32), y), logits.DType())
		return loss, correct
	}
	trainer, err := dataparallel.New(c.backend, c.store, opt, dataparallel.Config{Workers: cfg.Workers, Metrics: 1, EMADecay: cfg.EMADecay}, func(scope *model.Scope, in []*Node) (*Node, []*Node) {
		x0, t, noise, y := in[0], in[1], in[2], in[3]
		loss, correct := lossAndAcc(c.Graph(scope, c.Schedule.QSample(x0, t, noise), t), y)
		return loss, []*Node{correct}
	})
	if err != nil {
		return nil, err
	}
	batches := newBatcher(points, labels, dim, T, cfg.Seed)
	valX0, valT, valNoise, valIdx := validationSet(valPoints, dim, cfg.ValSize, T, cfg.Seed)
	valY := make([]int32, len(valIdx))
	for i, j := range valIdx {
		valY[i] = int32(valLabels[j])
	}
	valExec, err := model.NewExec2(c.backend, c.store, func(scope *model.Scope, x0, t, noise, y *Node) (*Node, *Node) {
		xt := c.Schedule.QSample(x0, t, noise)
		loss, correct := lossAndAcc(c.Graph(scope, xt, t), y)
		return ReduceAllMean(loss), ReduceAllMean(correct)
	})
	if err != nil {
		return nil, err
	}
	valArgs := []any{tensors.FromFlatDataAndDimensions(valX0, cfg.ValSize, dim),
		tensors.FromFlatDataAndDimensions(valT, cfg.ValSize),
		tensors.FromFlatDataAndDimensions(valNoise, cfg.ValSize, dim),
		tensors.FromFlatDataAndDimensions(valY, cfg.ValSize)}

	hist = &History{}
	run, st, err := startResume(cfg, func() runIdentity {
		return runIdentity{Model: "classifier", Net: c.Net, Schedule: c.Schedule.Config, Train: cfg, Data: trainstate.Fingerprint(points, labels), Val: trainstate.Fingerprint(valPoints, valLabels)}
	})
	if err != nil {
		return nil, err
	}
	first, before := 0, 0.0
	if st != nil {
		ok, err := resumeLoop(run, st, c.store, trainer, batches, hist, cfg.BatchSize)
		if err != nil {
			return nil, err
		}
		if ok {
			first, before = st.Step, st.Seconds
		}
	}
	start := time.Now()
	save := func(step int) error {
		return saveLoop(run, c.store, step, batches, hist, before+time.Since(start).Seconds())
	}
	for step := first; step < cfg.Steps; step++ {
		if err := run.Interrupted(step, save); err != nil {
			return hist, err
		}
		if step == first || cfg.lr().Varies() {
			if err := lrschedule.Set(c.store, cfg.lr().At(step)); err != nil {
				return nil, err
			}
		}
		loss, metrics, gradOK, err := trainer.Step(cfg.BatchSize, batches.shards(cfg.BatchSize, trainer.Workers()))
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", step+1, err)
		}
		if err := run.Diverged(step+1, cfg.lr().At(step), loss, gradOK); err != nil {
			return hist, fmt.Errorf("ddpm: classifier: %w", err)
		}
		hist.TrainLoss = append(hist.TrainLoss, loss)
		hist.TrainAcc = append(hist.TrainAcc, metrics[0])
		if cfg.Progress != nil {
			cfg.Progress(step+1, loss)
		}
		if (cfg.ValEvery > 0 && (step+1)%cfg.ValEvery == 0) || step+1 == cfg.Steps {
			l, a, err := valExec.Call(valArgs...)
			if err != nil {
				return nil, err
			}
			hist.ValSteps = append(hist.ValSteps, step+1)
			hist.ValLoss = append(hist.ValLoss, float64(tensors.ToScalar[float32](l)))
			hist.ValAcc = append(hist.ValAcc, float64(tensors.ToScalar[float32](a)))
		}
		if run.Due(step + 1) {
			if err := save(step + 1); err != nil {
				return hist, err
			}
		}
	}
	if err := trainer.UseEMA(); err != nil {
		return nil, err
	}
	hist.Duration = time.Duration((before + time.Since(start).Seconds()) * float64(time.Second))
	return hist, nil
}

// TimeAccuracy is the classifier's accuracy on noisy points with t in [TStart, TEnd).
type TimeAccuracy struct {
	TStart, TEnd int
	Accuracy     float64
	N            int
}

// AccuracyByTime measures the accuracy on x_t ~ q(x_t | x_0) of the given points, for
// numBuckets equal ranges of t; each point is evaluated once per bucket with a t drawn
// uniformly in the bucket (deterministic in seed).
func (c *Classifier) AccuracyByTime(points []float32, labels []int, numBuckets int, seed int64) (out []TimeAccuracy, err error) {
	defer recoverError(&err, "ddpm.Classifier.AccuracyByTime")
	dim := c.Net.DataDim
	n, err := numPoints(points, dim)
	if err != nil {
		return nil, err
	}
	if len(labels) != n {
		return nil, fmt.Errorf("ddpm: %d points but %d labels", n, len(labels))
	}
	T := c.Schedule.T()
	if numBuckets < 1 || numBuckets > T {
		return nil, fmt.Errorf("ddpm: numBuckets must be in [1, %d], got %d", T, numBuckets)
	}
	yT, err := labelsTensor(labels, c.Net.NumClasses)
	if err != nil {
		return nil, err
	}
	exec, err := model.NewExec1(c.backend, c.store, func(scope *model.Scope, x0, t, noise, y *Node) *Node {
		xt := c.Schedule.QSample(x0, t, noise)
		logits := c.Graph(scope, xt, t)
		return ReduceAllMean(ConvertDType(Equal(ArgMax(logits, -1, dtypes.Int32), y), DType))
	})
	if err != nil {
		return nil, err
	}
	rng := seeded.New(seed)
	x0 := tensors.FromFlatDataAndDimensions(points, n, dim)
	for b := range numBuckets {
		lo, hi := b*T/numBuckets, (b+1)*T/numBuckets
		ts := make([]int32, n)
		for i := range ts {
			ts[i] = int32(lo + rng.IntN(hi-lo))
		}
		acc, err := exec.Call(x0, tensors.FromFlatDataAndDimensions(ts, n),
			tensors.FromFlatDataAndDimensions(seeded.Normals(rng, n*dim), n, dim), yT)
		if err != nil {
			return nil, err
		}
		out = append(out, TimeAccuracy{TStart: lo, TEnd: hi, Accuracy: float64(tensors.ToScalar[float32](acc)), N: n})
	}
	return out, nil
}
