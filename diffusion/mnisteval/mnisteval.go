// Package mnisteval is the project's MNIST evaluator: a small CNN classifier trained to >= 99%
// test accuracy that scores generated digits in place of the CLIP score of the MNIST DDPM report
// (CLIP weights cannot be downloaded here). For a set of digits generated for requested classes
// it reports the accuracy with respect to those classes, the mean confidence per digit, and the
// Fréchet distance between the Gaussians of the evaluator's penultimate features of the digits
// and of the MNIST test set (an "FID" in this network's feature space: comparable only between
// sets of the same size scored by the same evaluator checkpoint).
package mnisteval

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/godiffusion/notebooks/diffusion/conv"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/dataparallel"
	"github.com/godiffusion/notebooks/diffusion/history"
	"github.com/godiffusion/notebooks/diffusion/imageops"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/metrics"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// Scope of the network's variables in the evaluator's store.
const Scope = "evaluator"

// Kind is the model kind stored in checkpoints; FormatVersion their metadata version.
const (
	Kind          = "mnist-evaluator"
	FormatVersion = 1
)

const pixels = mnist.Rows * mnist.Cols

// Config sizes the CNN: Conv(1 -> C1) at 28x28, DownConv(C1 -> C2) to 14x14, Conv(C2),
// DownConv(C2 -> C3) to 7x7, Conv(C3) (3x3 convolutions with batch normalization and GELU, from
// package conv), then the flattened 7x7xC3 map -> Linear(Features) + GELU (the features of the
// Fréchet distance) -> Linear(10).
type Config struct {
	C1       int `json:"c1"`
	C2       int `json:"c2"`
	C3       int `json:"c3"`
	Features int `json:"features"`
}

// DefaultConfig is the cpu preset's network.
func DefaultConfig() Config { return Config{C1: 16, C2: 32, C3: 32, Features: 128} }

func (c Config) validate() error {
	if c.C1 < 1 || c.C2 < 1 || c.C3 < 1 || c.Features < 1 {
		return fmt.Errorf("mnisteval: invalid config %+v", c)
	}
	return nil
}

// Evaluator is the trained classifier and the statistics of the test set in its features.
type Evaluator struct {
	Config  Config
	backend compute.Backend
	store   *model.Store
	infer   *model.Exec
	train   *dataparallel.Stepper // lazily built; keeps the optimizer state between Train calls
	// TestAccuracy is the accuracy on the MNIST test set measured after training (saved with
	// the checkpoint; 0 if unknown).
	TestAccuracy float64
	// Training is the training the weights had (set by Train, saved with the checkpoint; nil
	// for a checkpoint saved before it was recorded). LoadOrTrain reuses a checkpoint only if
	// it equals its preset's PresetTraining.
	Training   *TrainConfig
	reference  *metrics.Gaussian // test-set features, computed on first use
	referenceN int
}

// network returns the logits [B, 10] and features [B, Features] of images x [B, 28, 28, 1].
func network(scope *model.Scope, cfg Config, x *Node) (logits, features *Node) {
	lc := conv.DefaultLayerConfig()
	m := conv.FromNHWC(x)
	m = conv.Conv(scope.In("conv1"), m, cfg.C1, lc)
	m = conv.DownConv(scope.In("down1"), m, cfg.C2, lc)
	m = conv.Conv(scope.In("conv2"), m, cfg.C2, lc)
	m = conv.DownConv(scope.In("down2"), m, cfg.C3, lc)
	m = conv.Conv(scope.In("conv3"), m, cfg.C3, lc)
	flat := Reshape(m.NHWC(), -1, 7*7*cfg.C3)
	features = nets.ApplyActivation(scope.In("fc1_act"), nets.GELU, nets.Linear(scope.In("fc1"), flat, cfg.Features))
	logits = nets.Linear(scope.In("fc2"), features, 10)
	return logits, features
}

// New returns an untrained evaluator, initialized with seed.
func New(b compute.Backend, cfg Config, seed int64) (ev *Evaluator, err error) {
	defer savedmodel.RecoverError(&err, "mnisteval.New")
	if b == nil {
		return nil, fmt.Errorf("mnisteval: nil backend")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ev = &Evaluator{Config: cfg, backend: b, store: model.NewStore()}
	if err := ev.store.SetRNGStateFromSeed(seed); err != nil {
		return nil, err
	}
	ev.infer, err = model.NewExec(b, ev.store, func(scope *model.Scope, x *Node) []*Node {
		logits, features := network(scope.In(Scope), cfg, x)
		return []*Node{Softmax(logits, -1), features}
	})
	if err != nil {
		return nil, err
	}
	// Create the variables.
	if _, _, err := ev.run(make([]float32, pixels), 1); err != nil {
		return nil, err
	}
	return ev, nil
}

// String summarizes the evaluator.
func (ev *Evaluator) String() string {
	return fmt.Sprintf("MNIST evaluator CNN %d/%d/%d channels, %d features, %d parameters, test accuracy %.4f",
		ev.Config.C1, ev.Config.C2, ev.Config.C3, ev.Config.Features, ev.store.Scope("/"+Scope).NumParameters(), ev.TestAccuracy)
}

// run returns the probabilities [n*10] and features [n*Features] of n images in [0, 1].
func (ev *Evaluator) run(images []float32, n int) (probs, features []float32, err error) {
	out, err := ev.infer.Exec(tensors.FromFlatDataAndDimensions(images, n, mnist.Rows, mnist.Cols, 1))
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		for _, o := range out {
			o.FinalizeAll()
		}
	}()
	if probs, err = tensors.CopyFlatData[float32](out[0]); err != nil {
		return nil, nil, err
	}
	features, err = tensors.CopyFlatData[float32](out[1])
	return probs, features, err
}

// Outputs returns the class probabilities (n*10) and the penultimate features
// (n*Features) of n images of 28x28 pixels in [0, 1] (values outside are clipped), computed
// in batches of 500. NaN or infinite pixels are an error.
func (ev *Evaluator) Outputs(images []float32, n int) (probs, features []float32, err error) {
	defer savedmodel.RecoverError(&err, "mnisteval.Outputs")
	if n < 1 || len(images) != n*pixels {
		return nil, nil, fmt.Errorf("mnisteval: %d values are not %d images of 28x28 pixels", len(images), n)
	}
	const batch = 500
	buf := make([]float32, 0, batch*pixels)
	for lo := 0; lo < n; lo += batch {
		hi := min(n, lo+batch)
		buf = buf[:0]
		for i, v := range images[lo*pixels : hi*pixels] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, nil, fmt.Errorf("mnisteval: pixel %d of image %d is %g", i%pixels, lo+i/pixels, v)
			}
			buf = append(buf, min(1, max(0, v)))
		}
		// Concurrent shards of the batch (both cores of the go backend); the outputs do not
		// depend on the split.
		type shardOut struct{ probs, features []float32 }
		parts, err := dataparallel.Concat(hi-lo, dataparallel.InferenceWorkers(ev.backend), func(a, b int) ([]shardOut, error) {
			p, f, err := ev.run(buf[a*pixels:b*pixels], b-a)
			return []shardOut{{p, f}}, err
		})
		if err != nil {
			return nil, nil, err
		}
		for _, o := range parts {
			probs = append(probs, o.probs...)
			features = append(features, o.features...)
		}
	}
	return probs, features, nil
}

// Accuracy returns the share of the set's images classified as their label.
func (ev *Evaluator) Accuracy(set *mnist.Set) (float64, error) {
	probs, _, err := ev.Outputs(set.Images, set.N)
	if err != nil {
		return 0, err
	}
	rep, err := metrics.EvaluateClasses(probs, 10, set.Labels)
	if err != nil {
		return 0, err
	}
	return rep.Accuracy, nil
}

// TrainConfig configures training.
type TrainConfig struct {
	Steps     int
	BatchSize int
	LR        float64 // Adam; decays along a half cosine to 5% of LR
	// Shift is the largest random translation in pixels applied to training images (0: none).
	Shift int
	// Blur, if > 0, blurs half of the training images with a Gaussian of standard deviation
	// drawn uniformly from [0.5, Blur] pixels (0: none; every preset uses 2). Measured
	// (docs/STATUS.md session 15, notebook 07 at cpu): with Blur 2 the evaluator keeps its test
	// accuracy (0.9946 against 0.9950) and reads the d_z = 2 VAE's decoded test digits, whose
	// labels are known, at 0.702 instead of 0.594: the grey decoder means are then read as a
	// person reads them.
	Blur float64 `json:"blur,omitempty"`
	Seed int64
	// Workers is the number of concurrent shards of each batch (package dataparallel; 0 or 1:
	// one call). Batch normalization normalizes each shard by its own statistics.
	Workers int `json:"workers,omitempty"`
	// Progress, if set, is called after every step.
	Progress func(step int, loss float64) `json:"-"`
	// Resume makes the training resumable (see Evaluator.Train); not part of the
	// configuration.
	Resume trainstate.Options `json:"-"`
}

// resumeKind is the kind of the evaluator's resumable training states.
const resumeKind = "mnisteval.Train"

// runIdentity is what defines a training run for resuming.
type runIdentity struct {
	Config Config          `json:"config"`
	Train  TrainConfig     `json:"train"`
	Data   trainstate.Data `json:"data"`
}

// resumeExtra is the evaluator's part of a resumable state: the position in the epoch.
type resumeExtra struct {
	Pos      int  `json:"pos"`
	Shuffled bool `json:"shuffled"`
}

// History records a training run.
type History struct {
	Loss     []float64
	Duration time.Duration
}

// Train trains the classifier on set with cross-entropy and Adam. With cfg.Resume.Dir set it
// is resumable as imagediff's Train: the state is saved there (every cfg.Resume.Every steps
// or Interval, and at an interrupt of cfg.Resume.Context, which returns a
// *trainstate.InterruptedError), and a later Train of a fresh evaluator (New, same seed) with
// the same configuration and data continues from it to the same weights and losses. A step
// whose loss or gradient is NaN or infinite stops training with a *trainstate.DivergedError
// (step and learning rate named); nothing is saved after it.
func (ev *Evaluator) Train(set *mnist.Set, cfg TrainConfig) (h *History, err error) {
	defer savedmodel.RecoverError(&err, "mnisteval.Train")
	if cfg.Steps < 1 || cfg.BatchSize < 1 || !(cfg.LR > 0) || cfg.Shift < 0 || cfg.Shift > 4 {
		return nil, fmt.Errorf("mnisteval: invalid training config (steps %d, batch %d, lr %g, shift %d)", cfg.Steps, cfg.BatchSize, cfg.LR, cfg.Shift)
	}
	if cfg.Blur != 0 && !(cfg.Blur >= 0.5 && cfg.Blur <= 4) {
		return nil, fmt.Errorf("mnisteval: the largest training blur must be 0 (none) or in [0.5, 4] pixels, got %g", cfg.Blur)
	}
	if set == nil || set.N == 0 || set.Rows != mnist.Rows || set.Cols != mnist.Cols {
		return nil, fmt.Errorf("mnisteval: training needs a non-empty set of 28x28 images")
	}
	if ev.train == nil {
		opt := optimizer.Adam().LearningRate(cfg.LR).Epsilon(1e-8).Done()
		ev.train, err = dataparallel.New(ev.backend, ev.store, opt, dataparallel.Config{Workers: cfg.Workers}, func(scope *model.Scope, in []*Node) (*Node, []*Node) {
			x, y := in[0], in[1]
			scope.Store().SetTraining(x.Graph(), true)
			logits, _ := network(scope.In(Scope), ev.Config, x)
			onehot := OneHot(y, 10, logits.DType())
			return Neg(ReduceSum(Mul(onehot, LogSoftmax(logits)), -1)), nil // cross-entropy per image
		})
		if err != nil {
			return nil, err
		}
	}
	var identity any
	if cfg.Resume.Dir != "" {
		identity = runIdentity{Config: ev.Config, Train: cfg, Data: trainstate.Fingerprint(set.Images, set.Labels)}
	}
	run, st, err := cfg.Resume.Start(resumeKind, identity, cfg.Steps)
	if err != nil {
		return nil, err
	}
	src := rand.NewPCG(uint64(cfg.Seed), 0xe7a1)
	rng := rand.New(src)
	lrs := lrschedule.Schedule{Kind: lrschedule.Cosine, LR: cfg.LR, FinalFraction: 0.05, Steps: cfg.Steps}
	h = &History{}
	var perm []int
	var permState []byte // src's state before perm was drawn
	pos, first, before := 0, 0, 0.0
	if st != nil {
		// Compile the step (creating the optimizer's variables), then load every variable and
		// put the shuffle and the generator where they were.
		if err := ev.train.Compile(cfg.BatchSize, func(k int) []shapes.Shape {
			return []shapes.Shape{shapes.Make(dtypes.Float32, k, mnist.Rows, mnist.Cols, 1), shapes.Make(dtypes.Int32, k)}
		}); err != nil {
			return nil, err
		}
		if !run.Restore(ev.store) {
			st = nil // starting fresh
		}
	}
	if st != nil {
		var extra resumeExtra
		if err := json.Unmarshal(st.Extra, &extra); err != nil {
			return nil, fmt.Errorf("mnisteval: resuming: invalid state: %w", err)
		}
		if extra.Shuffled {
			permState = st.RNG["perm"]
			if err := src.UnmarshalBinary(permState); err != nil {
				return nil, fmt.Errorf("mnisteval: resuming: invalid RNG state: %w", err)
			}
			perm = rng.Perm(set.N)
			if extra.Pos < 0 || extra.Pos > set.N {
				return nil, fmt.Errorf("mnisteval: resuming: invalid epoch position %d", extra.Pos)
			}
			pos = extra.Pos
		}
		if err := src.UnmarshalBinary(st.RNG["main"]); err != nil {
			return nil, fmt.Errorf("mnisteval: resuming: invalid RNG state: %w", err)
		}
		h.Loss, first, before = st.Loss, st.Step, st.Seconds
	}
	start := time.Now()
	save := func(step int) error {
		main, err := src.MarshalBinary()
		if err != nil {
			return err
		}
		extra, err := json.Marshal(resumeExtra{Pos: pos, Shuffled: perm != nil})
		if err != nil {
			return err
		}
		return run.Save(ev.store, &trainstate.State{Step: step, Loss: h.Loss, Seconds: before + time.Since(start).Seconds(),
			RNG: map[string][]byte{"main": main, "perm": permState}, Extra: extra})
	}
	for step := first; step < cfg.Steps; step++ {
		if err := run.Interrupted(step, save); err != nil {
			return h, err
		}
		lr := lrs.At(step)
		if err := lrschedule.Set(ev.store, lr); err != nil {
			return nil, err
		}
		x := make([]float32, 0, cfg.BatchSize*pixels)
		y := make([]int32, 0, cfg.BatchSize)
		for range cfg.BatchSize {
			if pos >= len(perm) {
				permState, _ = src.MarshalBinary()
				perm, pos = rng.Perm(set.N), 0
			}
			i := perm[pos]
			pos++
			img := shifted(set.Image(i), rng, cfg.Shift)
			if cfg.Blur > 0 && rng.IntN(2) == 0 {
				if img, err = blurred(img, 0.5+rng.Float64()*(cfg.Blur-0.5)); err != nil {
					return h, err
				}
			}
			x = append(x, img...)
			y = append(y, int32(set.Labels[i]))
		}
		loss, _, gradOK, err := ev.train.Step(cfg.BatchSize, dataparallel.Shards(cfg.BatchSize, ev.train.Workers(), func(lo, hi int) []any {
			return []any{tensors.FromFlatDataAndDimensions(x[lo*pixels:hi*pixels], hi-lo, mnist.Rows, mnist.Cols, 1), tensors.FromFlatDataAndDimensions(y[lo:hi], hi-lo)}
		}))
		if err != nil {
			return nil, err
		}
		if err := run.Diverged(step+1, lr, loss, gradOK); err != nil {
			return h, fmt.Errorf("mnisteval: %w", err)
		}
		h.Loss = append(h.Loss, loss)
		if cfg.Progress != nil {
			cfg.Progress(step+1, loss)
		}
		if run.Due(step + 1) {
			if err := save(step + 1); err != nil {
				return h, err
			}
		}
	}
	h.Duration = time.Duration((before + time.Since(start).Seconds()) * float64(time.Second))
	done := cfg
	done.Progress, done.Resume = nil, trainstate.Options{}
	ev.Training = &done
	ev.reference = nil
	return h, nil
}

// blurred returns a 28x28 image blurred by a Gaussian of standard deviation sigma pixels
// (imageops.Blur, kernel out to 3 sigma).
func blurred(img []float32, sigma float64) ([]float32, error) {
	return imageops.Blur{Kernel: 2*int(math.Ceil(3*sigma)) + 1, Sigma: sigma}.Apply(img, imageops.Square(mnist.Rows, 1))
}

// shifted returns a copy of a 28x28 image translated by up to maxShift pixels in each direction
// (zeros enter at the borders).
func shifted(img []float32, rng *rand.Rand, maxShift int) []float32 {
	if maxShift == 0 {
		return img
	}
	dx, dy := rng.IntN(2*maxShift+1)-maxShift, rng.IntN(2*maxShift+1)-maxShift
	out := make([]float32, pixels)
	for r := range mnist.Rows {
		sr := r - dy
		if sr < 0 || sr >= mnist.Rows {
			continue
		}
		for c := range mnist.Cols {
			sc := c - dx
			if sc >= 0 && sc < mnist.Cols {
				out[r*mnist.Cols+c] = img[sr*mnist.Cols+sc]
			}
		}
	}
	return out
}

// PresetTraining returns the training configuration of a preset: smoke trains for seconds
// (its accuracy is low), cpu and paper reach >= 99% test accuracy.
func PresetTraining(p preset.Preset) TrainConfig {
	return TrainConfig{Steps: preset.Pick(p, 40, 1500, 3000), BatchSize: 128, LR: preset.Pick(p, 3e-3, 3e-3, 2e-3), Shift: preset.Pick(p, 0, 2, 2), Blur: 2, Seed: 1,
		Workers: preset.Pick(p, 2, 2, 1)}
}

// meta is the content of a checkpoint's model.json.
type meta struct {
	Kind         string       `json:"kind"`
	Format       int          `json:"format"`
	Config       Config       `json:"config"`
	TestAccuracy float64      `json:"test_accuracy"`
	Preset       string       `json:"preset"`
	Training     *TrainConfig `json:"training,omitempty"`
}

// Save writes the evaluator into dir (atomically replacing a previous checkpoint).
func (ev *Evaluator) Save(dir string, p preset.Preset) error {
	if err := savedmodel.Save(dir, ev.store, "/"+Scope, meta{Kind: Kind, Format: FormatVersion, Config: ev.Config, TestAccuracy: ev.TestAccuracy, Preset: string(p), Training: ev.Training}); err != nil {
		return fmt.Errorf("mnisteval: %w", err)
	}
	return nil
}

// Load loads an evaluator saved with Save, and the preset it was trained at.
func Load(b compute.Backend, dir string) (*Evaluator, preset.Preset, error) {
	var mt meta
	if err := savedmodel.ReadMeta(dir, &mt); err != nil {
		return nil, "", fmt.Errorf("mnisteval: %w", err)
	}
	if mt.Kind != Kind || mt.Format != FormatVersion {
		return nil, "", fmt.Errorf("mnisteval: checkpoint %q holds a %q (format %d), not a %q (format %d)", dir, mt.Kind, mt.Format, Kind, FormatVersion)
	}
	ev, err := New(b, mt.Config, 0)
	if err != nil {
		return nil, "", err
	}
	if err := savedmodel.LoadVariables(dir, ev.store, "/"+Scope); err != nil {
		return nil, "", fmt.Errorf("mnisteval: %w", err)
	}
	ev.TestAccuracy, ev.Training = mt.TestAccuracy, mt.Training
	return ev, preset.Preset(mt.Preset), nil
}

// LoadOrTrain loads the evaluator in dir if one trained at preset p (or a larger one) is
// there, trained as that preset's PresetTraining says now (an older checkpoint, or one whose
// preset's training changed since, is trained again); otherwise it trains one at p on MNIST's
// training split, measures its test accuracy, and saves it. trained says which. The training
// is resumable (trainstate): it keeps its state in dir + ".training" every minute and at an
// interrupt (SIGINT, SIGTERM), and a later call continues from there.
func LoadOrTrain(b compute.Backend, dir string, p preset.Preset, progress func(step int, loss float64)) (ev *Evaluator, trained bool, err error) {
	if savedmodel.Exists(dir) {
		ev, at, err := Load(b, dir)
		if err == nil && rank(at) >= rank(p) && ev.Training != nil && history.Same(*ev.Training, PresetTraining(at)) {
			return ev, false, nil
		}
	}
	train, err := mnist.Load(mnist.Train)
	if err != nil {
		return nil, false, err
	}
	test, err := mnist.Load(mnist.Test)
	if err != nil {
		return nil, false, err
	}
	ws, err := trainstate.Open(dir)
	if err != nil {
		return nil, false, fmt.Errorf("mnisteval: %w", err)
	}
	defer func() { _ = ws.Close() }()
	ctx, stop := trainstate.WithInterrupt(context.Background())
	defer stop()
	if ev, err = New(b, DefaultConfig(), 1); err != nil {
		return nil, false, err
	}
	tc := PresetTraining(p)
	tc.Progress = progress
	tc.Resume = trainstate.Options{Dir: ws.StateDir(), Context: ctx, Logf: func(format string, args ...any) { fmt.Printf("mnist evaluator: "+format+"\n", args...) }}
	if _, err := ev.Train(train, tc); err != nil {
		return nil, false, fmt.Errorf("mnisteval: training the evaluator: %w", err)
	}
	if ev.TestAccuracy, err = ev.Accuracy(test); err != nil {
		return nil, false, err
	}
	if err := ev.Save(dir, p); err != nil {
		return nil, false, err
	}
	if err := ws.Finish(); err != nil {
		return nil, false, err
	}
	return ev, true, nil
}

// rank orders the presets by size.
func rank(p preset.Preset) int {
	for i, q := range preset.All {
		if q == p {
			return i
		}
	}
	return -1
}

// Report is the evaluator's verdict on a set of generated digits.
type Report struct {
	metrics.ClassReport
	// FID is the Fréchet distance between the feature Gaussians of the digits and of the
	// test set; N is the number of digits it was computed from.
	FID float64
	N   int
	// ReferenceN is the number of test images of the reference Gaussian.
	ReferenceN int
}

// Markdown formats the report: a summary line and the per-digit table.
func (r *Report) Markdown() string {
	return fmt.Sprintf("**%d digits: accuracy %.3f, mean confidence %.3f, FID(n=%d) %.2f** (evaluator features vs %d test images; best digit %d, worst %d)\n\n%s",
		r.N, r.Accuracy, r.MeanConfidence, r.N, r.FID, r.ReferenceN, r.Best, r.Worst, metrics.ClassMarkdownTable(r.ClassReport, nil))
}

// Reference returns the Gaussian of the test set's features (computed once per evaluator).
func (ev *Evaluator) Reference() (*metrics.Gaussian, int, error) {
	if ev.reference != nil {
		return ev.reference, ev.referenceN, nil
	}
	test, err := mnist.Load(mnist.Test)
	if err != nil {
		return nil, 0, err
	}
	_, f, err := ev.Outputs(test.Images, test.N)
	if err != nil {
		return nil, 0, err
	}
	g, err := metrics.FitGaussianFlat(f, ev.Config.Features)
	if err != nil {
		return nil, 0, err
	}
	ev.reference, ev.referenceN = g, test.N
	return g, test.N, nil
}

// Score evaluates n = len(requested) digits (28x28 each, in [0, 1]) generated for the
// requested classes.
func (ev *Evaluator) Score(images []float32, requested []int) (*Report, error) {
	n := len(requested)
	probs, f, err := ev.Outputs(images, n)
	if err != nil {
		return nil, err
	}
	cr, err := metrics.EvaluateClasses(probs, 10, requested)
	if err != nil {
		return nil, err
	}
	rep := &Report{ClassReport: cr, N: n}
	ref, refN, err := ev.Reference()
	if err != nil {
		return nil, err
	}
	if n < 2 {
		rep.FID = math.NaN()
	} else {
		g, err := metrics.FitGaussianFlat(f, ev.Config.Features)
		if err != nil {
			return nil, err
		}
		if rep.FID, err = metrics.FrechetDistance(g, ref); err != nil {
			return nil, err
		}
	}
	rep.ReferenceN = refN
	return rep, nil
}
