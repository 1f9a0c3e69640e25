package vae

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/history"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// Config is everything notebook 07 (VAE part) and cmd/vae run with.
type Config struct {
	Preset preset.Preset `json:"preset"`
	Seed   int64         `json:"seed"`
	Net    NetConfig     `json:"net"`
	Train  TrainConfig   `json:"train"`
	// TrainSize and TestSize are the numbers of MNIST training and test images used (the first
	// ones of each split; 0 or more than the split: all).
	TrainSize int `json:"train_size"`
	TestSize  int `json:"test_size"`
	// CheckpointEvery, if > 0, saves the resumable training state (trainstate) after every
	// CheckpointEvery steps; CheckpointInterval saves it when that much training time passed
	// (0: trainstate.DefaultInterval). Neither is part of the configuration a checkpoint is
	// compared with.
	CheckpointEvery    int           `json:"-"`
	CheckpointInterval time.Duration `json:"-"`
}

// Overrides are the flags of the notebook and of the command; a zero value keeps the
// preset's.
type Overrides struct {
	Preset     string
	Seed       int64
	Latent     int // latent dimension d_z
	Hidden     int
	Epochs     int
	Batch      int
	LR         float64
	LRSchedule string
	TrainSize  int
	TestSize   int
	Workers    int // data-parallel shards of each batch (TrainConfig.Workers)
}

// Config returns the preset's configuration with the overrides applied, validated. Every
// preset trains the exam's model (d_z = 2, 400 hidden units) with the exam's Adam 1e-3 and
// batch 128, on two data-parallel shards (both cores): smoke on 2000 images for 2 epochs;
// paper on all of MNIST for the exam's 15 epochs; cpu on all of MNIST for 30 epochs (beyond
// the exam: with 15 the test -ELBO stops at 151.9 nats, above the target of 150; with
// 30 it reaches 149.0, in 8 minutes on 2 idle AMD EPYC cores in session 10).
func (o Overrides) Config() (Config, error) {
	p, err := preset.Parse(o.Preset)
	if err != nil {
		return Config{}, err
	}
	c := Config{Preset: p, Seed: 1, Net: DefaultNet(), Train: ExamTrain()}
	c.Train.Epochs = preset.Pick(p, 2, 30, 15)
	c.Train.Workers = 2
	c.TrainSize = preset.Pick(p, 2000, 0, 0)
	c.TestSize = preset.Pick(p, 1000, 0, 0)
	if o.Seed != 0 {
		c.Seed = o.Seed
	}
	setInt := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	setInt(&c.Net.Latent, o.Latent)
	setInt(&c.Net.Hidden, o.Hidden)
	setInt(&c.Train.Epochs, o.Epochs)
	setInt(&c.Train.BatchSize, o.Batch)
	setInt(&c.TrainSize, o.TrainSize)
	setInt(&c.TestSize, o.TestSize)
	setInt(&c.Train.Workers, o.Workers)
	if o.LR != 0 {
		c.Train.LR = o.LR
	}
	if o.LRSchedule != "" {
		c.Train.LRSchedule = lrschedule.Kind(o.LRSchedule)
		if c.Train.LRSchedule != lrschedule.Constant {
			c.Train.FinalLRFraction = 0.1
		}
	}
	c.Train.Seed = c.Seed
	return c, c.Validate()
}

// ComparisonEpochs is the preset's training of a VAE trained only to compare latent
// dimensions (notebook 07's d_z = 8 beside the exam's d_z = 2): smoke 2, cpu 10, paper 15
// epochs. Beyond 10 epochs the d_z = 8 test -ELBO moves little, and the whole notebook must
// fit its time budget.
func ComparisonEpochs(p preset.Preset) int { return preset.Pick(p, 2, 10, 15) }

// Validate reports a configuration that cannot run, naming the problem.
func (c Config) Validate() error {
	if err := c.Net.Validate(); err != nil {
		return err
	}
	if err := c.Train.check(); err != nil {
		return err
	}
	if c.TrainSize < 0 || c.TestSize < 0 {
		return fmt.Errorf("vae: negative data sizes %d, %d", c.TrainSize, c.TestSize)
	}
	return nil
}

// Summary describes the configuration in a line of Markdown.
func (c Config) Summary() string {
	sched := c.Train.LRSchedule
	if sched == "" {
		sched = lrschedule.Constant
	}
	size := func(n, all int) string {
		if n == 0 || n >= all {
			return fmt.Sprintf("all %d", all)
		}
		return fmt.Sprintf("the first %d", n)
	}
	return fmt.Sprintf("preset `%s`, seed %d. **VAE**: encoder 784-%d(ReLU)-(mu, logvar in R^%d), decoder %d-%d(ReLU)-784(sigmoid), Bernoulli likelihood. "+
		"**Training**: %d epochs over %s training images, batch %d, Adam %g (%s); test on %s test images.",
		c.Preset, c.Seed, c.Net.Hidden, c.Net.Latent, c.Net.Latent, c.Net.Hidden,
		c.Train.Epochs, size(c.TrainSize, mnist.TrainSize), c.Train.BatchSize, c.Train.LR, sched, size(c.TestSize, mnist.TestSize))
}

// Study is a configured run: the MNIST sets and the backend of the model.
type Study struct {
	Config      Config
	Train, Test *mnist.Set
	Backend     compute.Backend
}

// NewStudy loads MNIST (the sizes of cfg) for cfg.
func NewStudy(cfg Config, b compute.Backend) (*Study, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("vae.NewStudy: nil backend")
	}
	load := func(split string, n int) (*mnist.Set, error) {
		s, err := mnist.Load(split)
		if err != nil {
			return nil, err
		}
		if n > 0 && n < s.N {
			return s.Head(n)
		}
		return s, nil
	}
	train, err := load(mnist.Train, cfg.TrainSize)
	if err != nil {
		return nil, err
	}
	test, err := load(mnist.Test, cfg.TestSize)
	if err != nil {
		return nil, err
	}
	return &Study{Config: cfg, Train: train, Test: test, Backend: b}, nil
}

// Trained is what a checkpoint's history records about its training, compared by
// TrainOrLoad to decide whether the checkpoint can be reused.
type Trained struct {
	Net       NetConfig   `json:"net"`
	Train     TrainConfig `json:"train"`
	TrainSize int         `json:"train_size"`
	TestSize  int         `json:"test_size"`
}

// record is the history file of a VAE checkpoint.
type record struct {
	Trained Trained  `json:"trained"`
	History *History `json:"history"`
}

// TrainOrLoad returns the VAE of the study: loaded from dir when it holds a checkpoint
// trained with the same configuration, otherwise trained (progress called after every step)
// and saved to dir with its history. dir "" trains without saving. A checkpoint of another
// model, or of another latent dimension, in dir is an error (it is not overwritten): pass
// another directory or delete it.
//
// The training into dir is resumable (trainstate): until it finishes, its state is kept in
// the workspace dir + ".training" (locked: a second process training into dir gets a
// *trainstate.LockedError), saved every Config.CheckpointEvery steps or
// Config.CheckpointInterval and at an interrupt (SIGINT, SIGTERM), which returns a
// *trainstate.InterruptedError; calling TrainOrLoad again resumes it.
func (s *Study) TrainOrLoad(dir string, progress func(epoch, step int, loss float64)) (m *Model, hist *History, loaded bool, err error) {
	defer savedmodel.RecoverError(&err, "vae.TrainOrLoad")
	c := s.Config
	want := Trained{Net: c.Net, Train: c.Train, TrainSize: c.TrainSize, TestSize: c.TestSize}
	if dir != "" && savedmodel.Exists(dir) {
		var meta Meta
		if err := savedmodel.ReadMeta(dir, &meta); err != nil {
			return nil, nil, false, fmt.Errorf("vae: %w", err)
		}
		if meta.Kind != Kind {
			return nil, nil, false, fmt.Errorf("vae: checkpoint %q holds a %q model, not a %q: choose another checkpoint directory", dir, meta.Kind, Kind)
		}
		if meta.Net.Latent != c.Net.Latent {
			return nil, nil, false, fmt.Errorf("vae: checkpoint %q has latent dimension %d, the configuration asks for %d: use --latent=%d, or another checkpoint name for d_z = %d",
				dir, meta.Net.Latent, c.Net.Latent, meta.Net.Latent, c.Net.Latent)
		}
		var rec record
		found, err := history.Load(dir, &rec)
		if err == nil && found && history.Same(rec.Trained, want) && rec.History != nil {
			m, err := Load(s.Backend, dir, &c.Net)
			if err != nil {
				return nil, nil, false, err
			}
			return m, rec.History, true, nil
		}
	}
	m, err = New(s.Backend, c.Net, c.Seed)
	if err != nil {
		return nil, nil, false, err
	}
	tc := c.Train
	tc.Progress = progress
	var ws *trainstate.Workspace
	if dir != "" {
		if ws, err = trainstate.Open(dir); err != nil {
			return nil, nil, false, fmt.Errorf("vae: %w", err)
		}
		defer func() { _ = ws.Close() }()
		ctx, stop := trainstate.WithInterrupt(context.Background())
		defer stop()
		tc.Resume = trainstate.Options{Dir: ws.StateDir(), Every: c.CheckpointEvery, Interval: c.CheckpointInterval, Context: ctx,
			Logf: func(format string, args ...any) { fmt.Fprintf(os.Stderr, "vae: "+format+"\n", args...) }}
	}
	hist, err = m.Train(s.Train, s.Test, tc)
	if err != nil {
		return nil, hist, false, err
	}
	hist.Config.Progress, hist.Config.Resume = nil, trainstate.Options{}
	if dir != "" {
		if err := m.Save(dir); err != nil {
			return nil, nil, false, err
		}
		if err := history.Save(dir, record{want, hist}); err != nil {
			return nil, nil, false, err
		}
		if err := ws.Finish(); err != nil {
			return nil, nil, false, err
		}
	}
	return m, hist, false, nil
}

// LossSummary describes a training run in one line: the final test -ELBO and its terms, and
// the speed.
func LossSummary(h *History) string {
	if h == nil || len(h.Train) == 0 {
		return "no history"
	}
	t := h.Final()
	tr := h.Train[len(h.Train)-1]
	return fmt.Sprintf("%d epochs, %d steps (%s, %.0f steps/s): test -ELBO %.2f nats per image (reconstruction %.2f + KL %.2f); last epoch's training -ELBO %.2f",
		len(h.Train), len(h.StepLoss), h.Duration.Round(time.Second), float64(len(h.StepLoss))/h.Duration.Seconds(), t.ELBO, t.Recon, t.KL, tr.ELBO)
}

// Target is the target for the test -ELBO at the cpu preset, in nats per image.
const Target = 150.0

// TargetLine states the final test -ELBO against Target.
func TargetLine(h *History) string {
	f := h.Final().ELBO
	met := "met"
	if !(f <= Target) {
		met = "**not met**"
	}
	return fmt.Sprintf("Test -ELBO: **%.2f nats per image** (target <= %.0f at `cpu`: %s).", f, Target, met)
}

// CheckpointName is the checkpoint name (under outputs/checkpoints) of the VAE with latent
// dimension latent used by notebook 07 and cmd/vae: each d_z has its own.
func CheckpointName(latent int) string { return fmt.Sprintf("vae_dz%d", latent) }

// Steps returns the number of optimizer steps of the study's training (for progress bars).
func (s *Study) Steps() int {
	if s == nil || s.Train == nil || s.Config.Train.BatchSize < 1 {
		return 0
	}
	return s.Config.Train.Epochs * ((s.Train.N + s.Config.Train.BatchSize - 1) / s.Config.Train.BatchSize)
}
