package vae

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

	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/dataparallel"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/seeded"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
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
	// Workers is the number of shards of each batch whose gradients are computed
	// concurrently (package dataparallel; 0 or 1: one). It changes the result only by float
	// rounding, and uses a second core: 2 at every preset.
	Workers int `json:"workers,omitempty"`
	// Progress, if set, is called after every step with the epoch and step (1-based; the
	// step counts from the start of training) and the batch's -ELBO per image.
	Progress func(epoch, step int, loss float64) `json:"-"`
	// Resume makes the training resumable (see Model.Train); not part of the configuration.
	Resume trainstate.Options `json:"-"`
}

// ExamTrain is the exam's training: Adam 1e-3, batch 128, 15 epochs, constant rate.
func ExamTrain() TrainConfig {
	return TrainConfig{Epochs: 15, BatchSize: 128, LR: 1e-3, Seed: 1}
}

func (c TrainConfig) check() error {
	if c.Epochs < 1 || c.BatchSize < 1 {
		return fmt.Errorf("vae: training needs epochs >= 1 and batch size >= 1, got %d, %d", c.Epochs, c.BatchSize)
	}
	if c.Workers < 0 || c.Workers > 64 {
		return fmt.Errorf("vae: the number of data-parallel workers must be in [0, 64], got %d", c.Workers)
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

func (m *Model) newTrainer(cfg TrainConfig) (*dataparallel.Stepper, error) {
	opt := optimizer.Adam().LearningRate(cfg.LR).Epsilon(1e-8).Done()
	// Per image: the loss -ELBO = reconstruction + KL, and the two terms as metrics.
	return dataparallel.New(m.backend, m.store, opt, dataparallel.Config{Workers: cfg.Workers, Metrics: 2}, func(scope *model.Scope, in []*Node) (*Node, []*Node) {
		recon, kl := m.lossGraph(scope, in[0], in[1])
		return Add(recon, kl), []*Node{recon, kl}
	})
}

// TrainStep runs one Adam step on images (n*784 values in [0, 1]) with noise eps (n*d_z)
// and returns the batch's mean reconstruction and KL terms (before the update).
func (m *Model) TrainStep(cfg TrainConfig, images, eps []float32) (l Losses, err error) {
	l, _, err = m.trainStep(cfg, images, eps)
	return l, err
}

// trainStep is TrainStep, also reporting whether every gradient value was finite.
func (m *Model) trainStep(cfg TrainConfig, images, eps []float32) (l Losses, gradOK bool, err error) {
	defer savedmodel.RecoverError(&err, "vae.Model.TrainStep")
	if m == nil || m.store == nil {
		return l, false, fmt.Errorf("vae.Model.TrainStep: nil or uninitialized model (use New or Load)")
	}
	n, err := batchRows(images, Pixels, "images")
	if err != nil {
		return l, false, err
	}
	ne, err := batchRows(eps, m.Config.Latent, "noise")
	if err != nil {
		return l, false, err
	}
	if n != ne {
		return l, false, fmt.Errorf("vae: %d images but noise for %d", n, ne)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.train == nil {
		if m.train, err = m.newTrainer(cfg); err != nil {
			return l, false, err
		}
	}
	dz := m.Config.Latent
	shards := dataparallel.Shards(n, m.train.Workers(), func(lo, hi int) []any {
		return []any{tensors.FromFlatDataAndDimensions(images[lo*Pixels:hi*Pixels], hi-lo, Pixels),
			tensors.FromFlatDataAndDimensions(eps[lo*dz:hi*dz], hi-lo, dz)}
	})
	_, metrics, gradOK, err := m.train.Step(n, shards)
	if err != nil {
		return l, false, err
	}
	l.Recon, l.KL = metrics[0], metrics[1]
	l.ELBO = l.Recon + l.KL
	return l, gradOK, nil
}

// compileTrainer builds and compiles the training step for batches of size, so that the
// optimizer's variables exist (to load a saved state into them).
func (m *Model) compileTrainer(cfg TrainConfig, size int) (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.train == nil {
		if m.train, err = m.newTrainer(cfg); err != nil {
			return err
		}
	}
	return m.train.Compile(size, func(k int) []shapes.Shape {
		return []shapes.Shape{shapes.Make(dtypes.Float32, k, Pixels), shapes.Make(dtypes.Float32, k, m.Config.Latent)}
	})
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
// Adam on -ELBO, evaluating test (which may be nil) after every epoch.
//
// With cfg.Resume.Dir set, training is resumable (package trainstate), as imagediff's: the
// whole state (every variable of the store — weights, Adam moments, learning rate — the step,
// the random generator and its state before the epoch's shuffle, the epoch's running sums,
// the histories so far) is saved there every cfg.Resume.Every steps or Interval, and when
// cfg.Resume.Context is done, after which Train returns a *trainstate.InterruptedError; a
// later Train of a model fresh from New with the same configuration, data and seed continues
// from the saved state and ends with the same weights and History (but Duration) as an
// uninterrupted run. A state of another configuration or data is ignored (Train says so and
// starts fresh). A step whose loss or gradient is NaN or infinite stops training with a
// *trainstate.DivergedError naming the step and its learning rate; nothing is saved after it.
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
	total := cfg.Epochs * batches
	sched := cfg.schedule(total)
	var identity any
	if cfg.Resume.Dir != "" {
		id := runIdentity{Net: m.Config, Train: cfg, Data: trainstate.Fingerprint(train.Images, train.Labels)}
		if test != nil {
			id.Test = trainstate.Fingerprint(test.Images, test.Labels)
		}
		identity = id
	}
	run, st, err := cfg.Resume.Start(resumeKind, identity, total)
	if err != nil {
		return nil, err
	}
	src := rand.NewPCG(uint64(cfg.Seed), 0x7a3e)
	rng := rand.New(src)
	hist = &History{Config: cfg}
	var perm []int
	var permState []byte // src's state before perm was drawn
	var sum Losses       // the current epoch's weighted sums
	seen, first, before := 0, 0, 0.0
	if st != nil {
		// Compile the step (creating the optimizer's variables), then load every variable and
		// put the shuffle, the generator and the sums where they were.
		if err := m.compileTrainer(cfg, min(cfg.BatchSize, train.N)); err != nil {
			return nil, err
		}
		if run.Restore(m.store) {
			var extra resumeExtra
			if err := json.Unmarshal(st.Extra, &extra); err != nil {
				return nil, fmt.Errorf("vae: resuming: invalid state: %w", err)
			}
			if st.Step%batches != 0 { // mid-epoch: draw the epoch's shuffle again
				permState = st.RNG["perm"]
				if err := src.UnmarshalBinary(permState); err != nil {
					return nil, fmt.Errorf("vae: resuming: invalid RNG state: %w", err)
				}
				perm = rng.Perm(train.N)
			}
			if err := src.UnmarshalBinary(st.RNG["main"]); err != nil {
				return nil, fmt.Errorf("vae: resuming: invalid RNG state: %w", err)
			}
			hist.StepLoss, hist.Train, hist.Test = st.Loss, extra.Train, extra.Test
			sum, seen = extra.Sum, extra.Seen
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
		extra, err := json.Marshal(resumeExtra{Sum: sum, Seen: seen, Train: hist.Train, Test: hist.Test})
		if err != nil {
			return err
		}
		return run.Save(m.store, &trainstate.State{Step: step, Loss: hist.StepLoss, Seconds: before + time.Since(start).Seconds(),
			RNG: map[string][]byte{"main": main, "perm": permState}, Extra: extra})
	}
	images := make([]float32, 0, cfg.BatchSize*Pixels)
	for step := first; step < total; step++ {
		if err := run.Interrupted(step, save); err != nil {
			return hist, err
		}
		epoch, b := step/batches+1, step%batches
		if b == 0 {
			permState, _ = src.MarshalBinary()
			perm = rng.Perm(train.N)
			sum, seen = Losses{}, 0
		}
		idx := perm[b*cfg.BatchSize : min(train.N, (b+1)*cfg.BatchSize)]
		images = images[:0]
		for _, i := range idx {
			images = append(images, train.Images[i*Pixels:(i+1)*Pixels]...)
		}
		lr := sched.At(step)
		if step == first || sched.Varies() {
			if err := lrschedule.Set(m.store, lr); err != nil {
				return hist, err
			}
		}
		l, gradOK, err := m.trainStep(cfg, images, seeded.Normals(rng, len(idx)*m.Config.Latent))
		if err != nil {
			return hist, fmt.Errorf("vae: epoch %d, step %d: %w", epoch, step+1, err)
		}
		if !l.finite() {
			gradOK = false
		}
		if err := run.Diverged(step+1, lr, l.ELBO, gradOK); err != nil {
			// The weights are those of the failed step: nothing more is saved.
			return hist, fmt.Errorf("vae: epoch %d (reconstruction %v, KL %v): %w", epoch, l.Recon, l.KL, err)
		}
		hist.StepLoss = append(hist.StepLoss, l.ELBO)
		w := float64(len(idx))
		sum.Recon += l.Recon * w
		sum.KL += l.KL * w
		seen += len(idx)
		if cfg.Progress != nil {
			cfg.Progress(epoch, step+1, l.ELBO)
		}
		if b == batches-1 {
			e := sum
			e.Recon /= float64(seen)
			e.KL /= float64(seen)
			e.ELBO = e.Recon + e.KL
			hist.Train = append(hist.Train, e)
			if test != nil {
				tl, err := m.Evaluate(test.Images, cfg.Seed+int64(epoch))
				if err != nil {
					return hist, fmt.Errorf("vae: epoch %d: test set: %w", epoch, err)
				}
				if !tl.finite() {
					return hist, fmt.Errorf("vae: the test loss is %v after epoch %d (step %d, learning rate %g); lower the learning rate", tl.ELBO, epoch, step+1, lr)
				}
				hist.Test = append(hist.Test, tl)
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

// resumeKind is the kind of the VAE's resumable training states.
const resumeKind = "vae.Train"

// runIdentity is what defines a training run for resuming (callbacks and checkpointing
// options do not count).
type runIdentity struct {
	Net   NetConfig       `json:"net"`
	Train TrainConfig     `json:"train"`
	Data  trainstate.Data `json:"data"`
	Test  trainstate.Data `json:"test"`
}

// resumeExtra is the VAE's part of a resumable state: the current epoch's running sums and
// the per-epoch histories.
type resumeExtra struct {
	Sum   Losses   `json:"sum"`
	Seen  int      `json:"seen"`
	Train []Losses `json:"train"`
	Test  []Losses `json:"test"`
}
