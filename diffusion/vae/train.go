package vae

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/seeded"
)

// TrainConfig configures Train. JSON-serializable (recorded in the training history).
type TrainConfig struct {
	Epochs    int     `json:"epochs"`
	BatchSize int     `json:"batch_size"`
	LR        float64 `json:"lr"` // Adam's learning rate (the exam: 1e-3)
	// LRSchedule is lrschedule.Constant ("", the exam) or Cosine / Exponential over all steps
	// down to FinalLRFraction of LR.
	LRSchedule      lrschedule.Kind `json:"lr_schedule"`
	FinalLRFraction float64         `json:"final_lr_fraction"`
	Seed            int64           `json:"seed"`
	// Progress, if set, is called after every step with the epoch and step (1-based; the
	// step counts from the start of training) and the batch's -ELBO per image.
	Progress func(epoch, step int, loss float64) `json:"-"`
}

// ExamTrain is the exam's training: Adam 1e-3, batch 128, 15 epochs, constant rate.
func ExamTrain() TrainConfig {
	return TrainConfig{Epochs: 15, BatchSize: 128, LR: 1e-3, Seed: 1}
}

func (c TrainConfig) check() error {
	if c.Epochs < 1 || c.BatchSize < 1 {
		return fmt.Errorf("vae: training needs epochs >= 1 and batch size >= 1, got %d, %d", c.Epochs, c.BatchSize)
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		return fmt.Errorf("vae: the learning rate must be a finite number > 0, got %g", c.LR)
	}
	return c.schedule(1).Validate()
}

func (c TrainConfig) schedule(steps int) lrschedule.Schedule {
	return lrschedule.Schedule{Kind: c.LRSchedule, LR: c.LR, FinalFraction: c.FinalLRFraction, Steps: steps}
}

// Losses are the mean terms of -ELBO per image, in nats: ELBO here is the negative ELBO,
// Recon + KL.
type Losses struct {
	ELBO  float64 `json:"neg_elbo"`
	Recon float64 `json:"recon"`
	KL    float64 `json:"kl"`
}

// History records a training run, one entry per epoch.
type History struct {
	Config TrainConfig `json:"config"`
	// Train holds the mean losses of each epoch's batches (as the weights changed during the
	// epoch); Test the losses of the test set after each epoch.
	Train []Losses `json:"train"`
	Test  []Losses `json:"test"`
	// StepLoss is the -ELBO per image of every batch.
	StepLoss []float64     `json:"step_loss"`
	Duration time.Duration `json:"duration"`
}

// Final returns the test losses after the last epoch.
func (h *History) Final() Losses {
	if h == nil || len(h.Test) == 0 {
		return Losses{ELBO: math.NaN(), Recon: math.NaN(), KL: math.NaN()}
	}
	return h.Test[len(h.Test)-1]
}

// trainer holds the compiled training step.
type trainer struct {
	step *model.Exec
}

func (m *Model) newTrainer(cfg TrainConfig) (*trainer, error) {
	opt := optimizer.Adam().LearningRate(cfg.LR).Epsilon(1e-8).Done()
	step, err := model.NewExec(m.backend, m.store, func(scope *model.Scope, x, eps *Node) (*Node, *Node) {
		recon, kl := m.lossGraph(scope, x, eps)
		r, k := ReduceAllMean(recon), ReduceAllMean(kl)
		opt.UpdateGraph(scope, x.Graph(), Add(r, k))
		return r, k
	})
	return &trainer{step: step}, err
}

// TrainStep runs one Adam step on images (n*784 values in [0, 1]) with noise eps (n*d_z)
// and returns the batch's mean reconstruction and KL terms (before the update).
func (m *Model) TrainStep(cfg TrainConfig, images, eps []float32) (l Losses, err error) {
	defer savedmodel.RecoverError(&err, "vae.Model.TrainStep")
	if m == nil || m.store == nil {
		return l, fmt.Errorf("vae.Model.TrainStep: nil or uninitialized model (use New or Load)")
	}
	x, n, err := batchTensor(images, Pixels, "images")
	if err != nil {
		return l, err
	}
	e, ne, err := batchTensor(eps, m.Config.Latent, "noise")
	if err != nil {
		return l, err
	}
	if n != ne {
		return l, fmt.Errorf("vae: %d images but noise for %d", n, ne)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.train == nil {
		if m.train, err = m.newTrainer(cfg); err != nil {
			return l, err
		}
	}
	r, k, err := m.train.step.Call2(x, e)
	if err != nil {
		return l, err
	}
	defer r.FinalizeAll()
	defer k.FinalizeAll()
	l.Recon, l.KL = float64(tensors.ToScalar[float32](r)), float64(tensors.ToScalar[float32](k))
	l.ELBO = l.Recon + l.KL
	return l, nil
}

// evalBatch is the batch size of Evaluate.
const evalBatch = 1000

// Evaluate returns the mean losses of images (n*784 values in [0, 1]) with one sample of z
// per image drawn from seed (the single-sample estimate of -ELBO, as in training).
func (m *Model) Evaluate(images []float32, seed int64) (Losses, error) {
	if len(images) == 0 || len(images)%Pixels != 0 {
		return Losses{}, fmt.Errorf("vae: %d values are not a whole number (>= 1) of %d-pixel images", len(images), Pixels)
	}
	n := len(images) / Pixels
	rng := rand.New(rand.NewPCG(uint64(seed), 0xe1b0))
	var sum Losses
	for lo := 0; lo < n; lo += evalBatch {
		hi := min(n, lo+evalBatch)
		recon, kl, err := m.Losses(images[lo*Pixels:hi*Pixels], seeded.Normals(rng, (hi-lo)*m.Config.Latent))
		if err != nil {
			return Losses{}, err
		}
		for i := range recon {
			sum.Recon += recon[i]
			sum.KL += kl[i]
		}
	}
	sum.Recon /= float64(n)
	sum.KL /= float64(n)
	sum.ELBO = sum.Recon + sum.KL
	return sum, nil
}

// finite reports whether every loss is a finite number.
func (l Losses) finite() bool {
	for _, v := range []float64{l.Recon, l.KL} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// Train trains the model on train (shuffled every epoch, the last partial batch kept) with
// Adam on -ELBO, evaluating test (which may be nil) after every epoch. A NaN or infinite loss
// stops training with an error naming the epoch, the step and the learning rate.
func (m *Model) Train(train, test *mnist.Set, cfg TrainConfig) (hist *History, err error) {
	defer savedmodel.RecoverError(&err, "vae.Model.Train")
	if m == nil || m.store == nil {
		return nil, fmt.Errorf("vae.Model.Train: nil or uninitialized model (use New or Load)")
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if train == nil || train.N == 0 || train.Rows*train.Cols != Pixels {
		return nil, fmt.Errorf("vae.Model.Train: need a non-empty training set of 28 x 28 images")
	}
	if test != nil && (test.N == 0 || test.Rows*test.Cols != Pixels) {
		return nil, fmt.Errorf("vae.Model.Train: the test set must hold 28 x 28 images")
	}
	batches := (train.N + cfg.BatchSize - 1) / cfg.BatchSize
	sched := cfg.schedule(cfg.Epochs * batches)
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7a3e))
	hist = &History{Config: cfg}
	start := time.Now()
	step := 0
	images := make([]float32, 0, cfg.BatchSize*Pixels)
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		perm := rng.Perm(train.N)
		var sum Losses
		seen := 0
		for b := range batches {
			idx := perm[b*cfg.BatchSize : min(train.N, (b+1)*cfg.BatchSize)]
			images = images[:0]
			for _, i := range idx {
				images = append(images, train.Images[i*Pixels:(i+1)*Pixels]...)
			}
			lr := sched.At(step)
			if step == 0 || sched.Varies() {
				if err := lrschedule.Set(m.store, lr); err != nil {
					return hist, err
				}
			}
			l, err := m.TrainStep(cfg, images, seeded.Normals(rng, len(idx)*m.Config.Latent))
			step++
			if err != nil {
				return hist, fmt.Errorf("vae: epoch %d, step %d: %w", epoch, step, err)
			}
			if !l.finite() {
				return hist, fmt.Errorf("vae: training diverged at epoch %d, step %d, learning rate %g: loss %v (reconstruction %v, KL %v); lower the learning rate",
					epoch, step, lr, l.ELBO, l.Recon, l.KL)
			}
			hist.StepLoss = append(hist.StepLoss, l.ELBO)
			w := float64(len(idx))
			sum.Recon += l.Recon * w
			sum.KL += l.KL * w
			seen += len(idx)
			if cfg.Progress != nil {
				cfg.Progress(epoch, step, l.ELBO)
			}
		}
		sum.Recon /= float64(seen)
		sum.KL /= float64(seen)
		sum.ELBO = sum.Recon + sum.KL
		hist.Train = append(hist.Train, sum)
		if test != nil {
			tl, err := m.Evaluate(test.Images, cfg.Seed+int64(epoch))
			if err != nil {
				return hist, fmt.Errorf("vae: epoch %d: test set: %w", epoch, err)
			}
			if !tl.finite() {
				return hist, fmt.Errorf("vae: the test loss is %v after epoch %d (step %d, learning rate %g); lower the learning rate", tl.ELBO, epoch, step, sched.At(step-1))
			}
			hist.Test = append(hist.Test, tl)
		}
	}
	hist.Duration = time.Since(start)
	return hist, nil
}
