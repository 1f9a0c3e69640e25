// Package statesrun runs the STATES assignment end to end: data, denoiser and classifier
// training with checkpoints, unconditional and classifier-guided sampling, scores and
// the deliverable files. The notebooks 01/02 and the command diffusion/cmd/states call it;
// the models, samplers and metrics themselves live in ddpm, nets, schedule and metrics.
package statesrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
	"github.com/godiffusion/notebooks/diffusion/data/states"
	"github.com/godiffusion/notebooks/diffusion/ddpm"
	"github.com/godiffusion/notebooks/diffusion/history"
	"github.com/godiffusion/notebooks/diffusion/metrics"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/schedule"
	"github.com/godiffusion/notebooks/diffusion/tensorfile"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// Config is everything a STATES run needs; PresetConfig fills it for a preset and flags
// override single fields.
type Config struct {
	Preset      preset.Preset
	Data        string  // "builtin" or the path of a states.pt file
	Seed        int64   // seed of data split, initialisation, batches and sampling
	ValFraction float64 // share of the points held out for validation curves
	// Model holds the networks, the schedule and the training and sampling sizes.
	Model Model
	// NumSamples is the number of samples per set: unconditional, and per state when
	// guided (the assignment: 5000).
	NumSamples int
	// ProbeEvery is the number of denoiser steps between NLL probes during training
	// (0: no probes); each probe draws ProbeSamples points with ProbeDDIMSteps DDIM steps.
	ProbeEvery, ProbeSamples, ProbeDDIMSteps int
	// WeakSteps lists the training steps after which TrainDenoiser also saves the denoiser as
	// it is then (WeakDir), the weak models of autoguidance; they cost no training.
	WeakSteps []int
	// Sampler draws the deliverable unconditional samples (uncond_gen_samples) and Guided the
	// guided ones (cond_gen_samples_*): the preset's best measured choice (docs/STATUS.md);
	// AssignmentSampler and AssignmentGuidedSampler are the assignment's.
	Sampler Sampler
	Guided  GuidedSampler
	// CheckpointEvery, if > 0, saves the resumable training state (trainstate) after every
	// CheckpointEvery steps; CheckpointInterval saves it when that much training time passed
	// since the last save (0: trainstate.DefaultInterval, one minute; < 0: never by time).
	// Neither is part of the configuration a checkpoint is compared with.
	CheckpointEvery    int           `json:"-"`
	CheckpointInterval time.Duration `json:"-"`
}

// PresetConfig returns the configuration of a preset. The algorithm is the assignment's
// at every preset (T = 500, linear betas, eps-prediction, the guided update); presets
// change sizes only.
func PresetConfig(p preset.Preset) (Config, error) {
	m, err := ModelPreset(p)
	if err != nil {
		return Config{}, err
	}
	return Config{
		Preset: p, Data: "builtin", Seed: 1, ValFraction: 0.1, Model: m,
		NumSamples: preset.Pick(p, 500, 5000, 5000),
		ProbeEvery: preset.Pick(p, 100, 1000, 2000), ProbeSamples: preset.Pick(p, 500, 2000, 5000), ProbeDDIMSteps: 50,
		WeakSteps: []int{preset.Pick(p, 100, 1000, 2000), preset.Pick(p, 150, 2000, 4000), preset.Pick(p, 200, 3000, 5000), preset.Pick(p, 250, 5000, 10000)},
		Sampler:   presetSampler(p),
		Guided:    presetGuided(p),
	}, nil
}

// Data is a loaded dataset split into training and validation points.
type Data struct {
	All                    *states.Dataset
	Train, Val             []float32 // flat N*2
	TrainLabels, ValLabels []int
	Reference              *metrics.Reference // KDE and neighbours of all points, for scores
	TrainCount, ValCount   int
}

// LoadData loads the dataset named by spec ("builtin" or a states.pt path) and splits it
// with a seeded shuffle, valFraction of the points held out.
func LoadData(spec string, valFraction float64, seed int64) (*Data, error) {
	if valFraction < 0 || valFraction >= 1 {
		return nil, fmt.Errorf("statesrun: validation fraction %g must be in [0, 1)", valFraction)
	}
	ds, err := states.Load(spec)
	if err != nil {
		return nil, err
	}
	ref, err := metrics.NewReference(ds.Points, ds.Labels, metrics.Options{})
	if err != nil {
		return nil, err
	}
	d := &Data{All: ds, Reference: ref}
	order := rand.New(rand.NewPCG(uint64(seed), 0x57a7e5)).Perm(ds.Len())
	nVal := int(float64(ds.Len()) * valFraction)
	for i, j := range order {
		p := ds.Points[j]
		if i < nVal {
			d.Val = append(d.Val, float32(p[0]), float32(p[1]))
			d.ValLabels = append(d.ValLabels, ds.Labels[j])
		} else {
			d.Train = append(d.Train, float32(p[0]), float32(p[1]))
			d.TrainLabels = append(d.TrainLabels, ds.Labels[j])
		}
	}
	d.TrainCount, d.ValCount = len(d.TrainLabels), len(d.ValLabels)
	if d.ValCount == 0 {
		d.Val, d.ValLabels = nil, nil
	}
	return d, nil
}

// Probe is the NLL of samples drawn at one step of training.
type Probe struct {
	Step int     `json:"step"`
	NLL  float64 `json:"nll"`
}

// History is a training run's record, saved next to its checkpoint.
type History struct {
	*ddpm.History
	Probes []Probe `json:"probes,omitempty"`
	// Trained is what the model was trained with, for EnsureDenoiser's check (absent in
	// checkpoints of earlier versions).
	Trained *Trained `json:"trained,omitempty"`
}

// Trained is the configuration a model was trained with.
type Trained struct {
	Schedule schedule.Config  `json:"schedule"`
	Train    ddpm.TrainConfig `json:"train"`
	Data     string           `json:"data"`
	Seed     int64            `json:"seed"`
}

// HistoryFile is the name of the training history in a checkpoint directory.
const HistoryFile = history.File

// resumable makes the training of a model into dir resumable (package trainstate): it
// locks dir's workspace, catches SIGINT and SIGTERM, and returns the options to put in the
// ddpm.TrainConfig, the workspace (nil without dir) and the function to call when training
// ends. With dir "" training is not resumable (nothing is saved) but an interrupt still
// stops it.
func resumable(cfg Config, dir, what string, onStart func(step int)) (trainstate.Options, *trainstate.Workspace, func(), error) {
	ctx, stop := trainstate.WithInterrupt(context.Background())
	opts := trainstate.Options{Context: ctx, OnStart: onStart, Logf: func(format string, args ...any) { fmt.Printf(what+": "+format+"\n", args...) }}
	if dir == "" {
		return opts, nil, stop, nil
	}
	ws, err := trainstate.Open(dir)
	if err != nil {
		stop()
		return opts, nil, nil, fmt.Errorf("statesrun: %s: %w", what, err)
	}
	opts.Dir, opts.Every, opts.Interval = ws.StateDir(), cfg.CheckpointEvery, cfg.CheckpointInterval
	return opts, ws, func() { stop(); _ = ws.Close() }, nil
}

// probesFile is the file of a denoiser training's workspace with the NLL probes so far.
const probesFile = "probes.json"

// TrainDenoiser trains the assignment's denoiser on data.Train, probing the NLL of
// samples every cfg.ProbeEvery steps, saves it to dir (atomically, with its
// hyperparameters and history) and returns it. onStep, when set, is called after every
// step.
//
// With dir set the training is resumable: its state is saved every minute (cfg.Checkpoint*)
// and at an interrupt (SIGINT: Ctrl-C or Jupyter's stop button; SIGTERM) into the
// workspace dir + ".training", after which TrainDenoiser returns a
// *trainstate.InterruptedError; called again with the same configuration and data it
// resumes there (probes included) and ends with the same model and history as an
// uninterrupted run. Another process training into dir gives a *trainstate.LockedError.
func TrainDenoiser(b compute.Backend, data *Data, cfg Config, dir string, onStep func(step int, loss float64)) (*ddpm.Denoiser, *History, error) {
	var probes []Probe
	var ws *trainstate.Workspace
	resume, ws, done, err := resumable(cfg, dir, "denoiser", func(first int) {
		probes = nil
		if ws == nil || first == 0 {
			return
		}
		if raw, err := os.ReadFile(ws.File(probesFile)); err == nil {
			var saved []Probe
			if json.Unmarshal(raw, &saved) == nil {
				for _, p := range saved {
					if p.Step <= first {
						probes = append(probes, p)
					}
				}
			}
		}
	})
	if err != nil {
		return nil, nil, err
	}
	defer done()
	d, err := ddpm.NewDenoiser(b, cfg.Model.Denoiser, cfg.Model.Schedule, cfg.Seed)
	if err != nil {
		return nil, nil, err
	}
	tc := cfg.Model.DenoiserTrain
	tc.Seed = cfg.Seed
	tc.Resume = resume
	var probeErr error
	tc.Progress = func(step int, loss float64) {
		if onStep != nil {
			onStep(step, loss)
		}
		if dir != "" && probeErr == nil && slices.Contains(cfg.WeakSteps, step) {
			if err := d.Save(WeakDir(dir, step)); err != nil {
				probeErr = err
				return
			}
		}
		if cfg.ProbeEvery > 0 && probeErr == nil && (step%cfg.ProbeEvery == 0 || step == tc.Steps) {
			s, err := d.SampleDDIM(cfg.ProbeSamples, ddpm.DDIMConfig{Steps: cfg.ProbeDDIMSteps, Seed: cfg.Seed + int64(step), Speed: cfg.Model.Speed})
			if err != nil {
				probeErr = err
				return
			}
			nll, err := data.Reference.KDE().NLL(Points(s.Points))
			if err != nil {
				probeErr = err
				return
			}
			probes = append(probes, Probe{Step: step, NLL: nll})
			if ws != nil {
				// Kept with the training state: an interrupted training resumes with them.
				raw, err := json.Marshal(probes)
				if err == nil {
					err = atomicfile.Write(ws.File(probesFile), raw)
				}
				if err != nil {
					probeErr = err
				}
			}
		}
	}
	hist, err := d.Train(data.Train, data.Val, tc)
	if err != nil {
		return nil, nil, fmt.Errorf("statesrun: denoiser: %w", err)
	}
	if probeErr != nil {
		return nil, nil, fmt.Errorf("statesrun: NLL probe or weak checkpoint during training: %w", probeErr)
	}
	tc.Progress, tc.Resume = nil, trainstate.Options{}
	h := &History{History: hist, Probes: probes, Trained: &Trained{Schedule: cfg.Model.Schedule, Train: tc, Data: cfg.Data, Seed: cfg.Seed}}
	if dir != "" {
		if err := d.Save(dir); err != nil {
			return nil, nil, err
		}
		if err := saveHistory(dir, h); err != nil {
			return nil, nil, err
		}
		if err := WriteDenoiserStateDict(d, StateDictPath(dir)); err != nil {
			return nil, nil, err
		}
		if err := ws.Finish(); err != nil {
			return nil, nil, err
		}
	}
	return d, h, nil
}

// TrainClassifier trains the assignment's noisy-input classifier on data.Train, saves it
// to dir (atomically, with its hyperparameters and history) and returns it. With dir set it
// is resumable as TrainDenoiser.
func TrainClassifier(b compute.Backend, data *Data, cfg Config, dir string, onStep func(step int, loss float64)) (*ddpm.Classifier, *History, error) {
	resume, ws, done, err := resumable(cfg, dir, "classifier", nil)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	c, err := ddpm.NewClassifier(b, cfg.Model.Classifier, cfg.Model.Schedule, cfg.Seed)
	if err != nil {
		return nil, nil, err
	}
	tc := cfg.Model.ClassifierTrain
	tc.Seed = cfg.Seed
	tc.Progress = onStep
	tc.Resume = resume
	hist, err := c.Train(data.Train, data.TrainLabels, data.Val, data.ValLabels, tc)
	if err != nil {
		return nil, nil, fmt.Errorf("statesrun: classifier: %w", err)
	}
	tc.Progress, tc.Resume = nil, trainstate.Options{}
	h := &History{History: hist, Trained: &Trained{Schedule: cfg.Model.Schedule, Train: tc, Data: cfg.Data, Seed: cfg.Seed}}
	if dir != "" {
		if err := c.Save(dir); err != nil {
			return nil, nil, err
		}
		if err := saveHistory(dir, h); err != nil {
			return nil, nil, err
		}
		if err := WriteClassifierStateDict(c, StateDictPath(dir)); err != nil {
			return nil, nil, err
		}
		if err := ws.Finish(); err != nil {
			return nil, nil, err
		}
	}
	return c, h, nil
}

// StateDictPath is where TrainDenoiser and TrainClassifier write the PyTorch state dict of a
// model checkpointed in dir: dir + ".pt" (outputs/checkpoints/denoiser.pt and classifier.pt,
// the course's deliverables; see WriteDenoiserStateDict).
func StateDictPath(dir string) string { return filepath.Clean(dir) + ".pt" }

// WeakDir is the directory of the denoiser saved after step of the training into dir (see
// Config.WeakSteps): a sibling of dir, so that replacing dir keeps it.
func WeakDir(dir string, step int) string { return fmt.Sprintf("%s_step%d", filepath.Clean(dir), step) }

// LoadWeakDenoiser loads the weak denoiser saved after step of the training into dir.
func LoadWeakDenoiser(b compute.Backend, dir string, step int) (*ddpm.Denoiser, error) {
	wd := WeakDir(dir, step)
	if _, err := os.Stat(wd); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("statesrun: no weak denoiser of step %d in %s: it is saved when the training runs with that step in WeakSteps (the preset's: retrain)", step, wd)
	}
	d, _, err := LoadDenoiser(b, wd)
	if err != nil {
		return nil, fmt.Errorf("statesrun: weak denoiser of step %d: %w", step, err)
	}
	return d, nil
}

// LoadDenoiser loads a denoiser checkpoint saved by TrainDenoiser, with its history.
func LoadDenoiser(b compute.Backend, dir string) (*ddpm.Denoiser, *History, error) {
	if err := checkTrained(dir, "denoiser"); err != nil {
		return nil, nil, err
	}
	d, err := ddpm.LoadDenoiser(b, dir, nil) // the checkpoint carries its own sizes
	if err != nil {
		return nil, nil, err
	}
	h, err := loadHistory(dir)
	return d, h, err
}

// LoadClassifier loads a classifier checkpoint saved by TrainClassifier, with its history.
func LoadClassifier(b compute.Backend, dir string) (*ddpm.Classifier, *History, error) {
	if err := checkTrained(dir, "classifier"); err != nil {
		return nil, nil, err
	}
	c, err := ddpm.LoadClassifier(b, dir, nil)
	if err != nil {
		return nil, nil, err
	}
	h, err := loadHistory(dir)
	return c, h, err
}

func checkTrained(dir, what string) error {
	if _, err := os.Stat(filepath.Join(dir, ddpm.MetaFile)); err != nil {
		return fmt.Errorf("no trained %s in %s: run its training cell (or `states train`) first", what, dir)
	}
	return nil
}

func saveHistory(dir string, h *History) error { return history.Save(dir, h) }

func loadHistory(dir string) (*History, error) {
	h := &History{History: &ddpm.History{}}
	if _, err := history.Load(dir, h); err != nil {
		return nil, err
	}
	return h, nil
}

// Points converts flat float32 points (N*2) to [][2]float64.
func Points(flat []float32) [][2]float64 {
	out := make([][2]float64, len(flat)/2)
	for i := range out {
		out[i] = [2]float64{float64(flat[2*i]), float64(flat[2*i+1])}
	}
	return out
}

// WriteSamples writes samples (flat N*2) as name.npy and name.pt (a float32 tensor
// [N, 2] that torch.load reads) in dir.
func WriteSamples(dir, name string, flat []float32) error {
	if len(flat)%2 != 0 || len(flat) == 0 {
		return fmt.Errorf("statesrun: %d values are not a non-empty set of 2-D points", len(flat))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	n := len(flat) / 2
	if err := tensorfile.WriteNPY(filepath.Join(dir, name+".npy"), flat, n, 2); err != nil {
		return err
	}
	return tensorfile.WritePTTensor(filepath.Join(dir, name+".pt"), flat, n, 2)
}

// EnsureDenoiser loads the denoiser checkpoint in dir when it was trained with cfg's network,
// schedule, training configuration, data and seed, and otherwise (none there, e.g. notebook
// 02 run before notebook 01, or trained with another configuration) trains and saves one.
// trained says which; stale says why an existing checkpoint was not used ("" when none was
// there or it was used).
func EnsureDenoiser(b compute.Backend, data *Data, cfg Config, dir string, onStep func(step int, loss float64)) (d *ddpm.Denoiser, trained bool, stale string, err error) {
	if _, statErr := os.Stat(filepath.Join(dir, ddpm.MetaFile)); statErr == nil {
		d, h, err := LoadDenoiser(b, dir)
		if err != nil {
			return nil, false, "", err
		}
		if stale = staleReason(d.Net, h, cfg); stale == "" {
			return d, false, "", nil
		}
	}
	d, _, err = TrainDenoiser(b, data, cfg, dir, onStep)
	return d, true, stale, err
}

// staleReason says why a denoiser with network net and history h was not trained with cfg
// ("" when it was, or when the history predates the record and only the network can be
// compared).
func staleReason(net nets.DenoiserConfig, h *History, cfg Config) string {
	if !history.Same(net, cfg.Model.Denoiser) {
		return "its network differs from the preset's"
	}
	if h.Trained == nil {
		return ""
	}
	tc := cfg.Model.DenoiserTrain
	tc.Seed, tc.Progress = cfg.Seed, nil
	switch {
	case !history.Same(h.Trained.Schedule, cfg.Model.Schedule):
		return "its noise schedule differs"
	case h.Trained.Data != cfg.Data:
		return fmt.Sprintf("it was trained on data %q, not %q", h.Trained.Data, cfg.Data)
	case h.Trained.Seed != cfg.Seed:
		return fmt.Sprintf("it was trained with seed %d, not %d", h.Trained.Seed, cfg.Seed)
	case !history.Same(h.Trained.Train, tc):
		return "its training configuration differs"
	}
	return ""
}
