// Package mnistrun runs the MNIST assignments end to end for notebooks 03-05 and the command
// diffusion/cmd/mnist: presets, training with checkpoints and snapshots, sampling, figures and
// scores. The models and samplers live in imagediff, the networks in nets, the evaluator in
// mnisteval.
package mnistrun

import (
	"fmt"
	"math"
	"time"

	"github.com/godiffusion/notebooks/diffusion/conv"
	"github.com/godiffusion/notebooks/diffusion/imagediff"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// Task is one model of the notebooks at one preset: what to build and how to train it.
type Task struct {
	Name  string // checkpoint directory name under outputs/checkpoints
	Model imagediff.Config
	Train imagediff.TrainConfig
	// SnapshotEpochs lists the points of training (in epochs, i.e. passes over the 60000
	// training images; fractional at small presets) after which a snapshot figure is saved.
	SnapshotEpochs []float64
	// CheckpointEvery, if > 0, saves the resumable training state after every
	// CheckpointEvery steps; CheckpointInterval saves it when that much training time passed
	// since the last save (0: trainstate.DefaultInterval, one minute; < 0: never by time).
	// Neither is part of the saved configuration (a changed value does not retrain).
	CheckpointEvery    int
	CheckpointInterval time.Duration
}

// Config holds every task and sampling size of the MNIST notebooks at one preset.
type Config struct {
	Preset preset.Preset
	Seed   int64
	// Part 1 (CS180 5B): the one-step denoiser at sigma 0.5 and the pure-noise denoiser.
	Denoiser, PureNoise Task
	// Part 2: time-conditioned and class-conditioned flow matching, and the class-conditioned
	// model trained without the exponential learning-rate schedule (the ablation).
	FlowTime, FlowClass, FlowClassConstantLR Task
	// Part 3 (MNIST DDPM report): the class-conditional DDPM, and the same with the cosine
	// noise schedule (one of the report's proposed improvements).
	DDPM, DDPMCosine Task
	// FlowSteps is the number of Euler steps of flow sampling (CS180: num_ts = 50).
	FlowSteps int
	// Guidance is the classifier-free guidance scale of flow sampling (CS180: 5).
	Guidance float64
	// DDPMSteps is the number of time steps the DDPM sampler visits when scoring (T: the full
	// ancestral sampler; fewer: strided, much faster), DDPMGuidance its CFG scale (1: none).
	DDPMSteps    int
	DDPMGuidance float64
	// PerClass is the number of generated digits per class that are scored (100: 1000 digits).
	PerClass int
}

// TrainImages is the size of MNIST's training split, which defines an epoch.
const TrainImages = 60000

// StepsForEpochs returns the number of steps of epochs passes at batch size batch.
func StepsForEpochs(epochs float64, batch int) int {
	return max(1, int(epochs*TrainImages/float64(batch)+0.5))
}

// unet returns the CS180 UNet of width d with the given conditioning.
func unet(d int, time bool, classes int) nets.UNetConfig {
	c := nets.DefaultUNetConfig(d)
	c.Activation = conv.GELUTanh
	c.TimeConditioned, c.NumClasses = time || classes > 0, classes
	return c
}

// PresetConfig returns the configuration of a preset. At every preset the algorithms are the
// assignments'; the presets change widths, steps and sample counts:
//   - paper: the specs (CS180: D = 128 for part 1, D = 64 for part 2, batch 256/64, 5/10
//     epochs; the DDPM report's T = 1000), meant for a GPU;
//   - cpu: D = 16 and 1-2 epochs, so that each model trains in <= 15 minutes on 2 cores;
//   - smoke: a few steps of tiny networks, for CI.
func PresetConfig(p preset.Preset) (Config, error) {
	if _, err := preset.Parse(string(p)); err != nil {
		return Config{}, err
	}
	d := preset.Pick(p, 4, 16, 128)
	dFlow := preset.Pick(p, 4, 16, 64)
	// Two workers (concurrent gradient shards, imagediff.TrainConfig.Workers) where the UNets
	// train on the go backend: its element-wise ops and copies run on one core per call, and
	// two shards of 32 took 230 ms per D=16 step instead of 352 ms for one batch of 64
	// (docs/STATUS.md, session 12). Each shard's batch normalization uses its own statistics.
	// The paper preset (a GPU) keeps one.
	workers := preset.Pick(p, 2, 2, 1)
	lin := schedule.Config{Kind: schedule.Linear, T: 1000, BetaStart: 1e-4, BetaEnd: 0.02}
	cos := schedule.CosineConfig(1000)
	cfg := Config{Preset: p, Seed: 1, FlowSteps: preset.Pick(p, 10, 50, 50), Guidance: 5,
		DDPMSteps: preset.Pick(p, 10, 50, 1000), DDPMGuidance: 3, PerClass: preset.Pick(p, 4, 100, 100)}

	// Part 1: sigma 0.5, Adam 1e-4, batch 256, 5 epochs (the spec). At cpu: batch 64 and a
	// larger learning rate for a single epoch.
	den := Task{Name: "mnist_denoiser", Model: imagediff.Config{Net: unet(d, false, 0), Objective: imagediff.Denoise, Sigma: 0.5, PixelLo: 0, PixelHi: 1}}
	den.Train = imagediff.TrainConfig{BatchSize: preset.Pick(p, 32, 64, 256), LR: preset.Pick(p, 1e-3, 1e-3, 1e-4), LRSchedule: lrschedule.Constant, Seed: 1, Workers: workers}
	den.Train.Steps = StepsForEpochs(preset.Pick(p, 0.002, 1.0, 5.0), den.Train.BatchSize)
	den.SnapshotEpochs = preset.Pick(p, []float64{0.001, 0.002}, []float64{0.2, 1}, []float64{1, 5})
	cfg.Denoiser = den
	pure := den
	pure.Name, pure.Model.PureNoise = "mnist_pure_noise", true
	pure.Train.Steps = StepsForEpochs(preset.Pick(p, 0.002, 0.3, 5.0), den.Train.BatchSize)
	pure.SnapshotEpochs = nil
	cfg.PureNoise = pure

	// Part 2: Adam 1e-2 with lrschedule.Exponential(gamma = 0.1^(1/epochs)), batch 64, 10 epochs,
	// p_uncond 0.1 (the spec).
	flowTrain := imagediff.TrainConfig{BatchSize: 64, LR: 1e-2, LRSchedule: lrschedule.Exponential, FinalLRFraction: 0.1, Seed: 1, Workers: workers}
	ft := Task{Name: "mnist_flow_time", Model: imagediff.Config{Net: unet(dFlow, true, 0), Objective: imagediff.Flow, PixelLo: 0, PixelHi: 1}, Train: flowTrain}
	ft.Train.Steps = StepsForEpochs(preset.Pick(p, 0.005, 1.0, 10.0), 64)
	ft.SnapshotEpochs = preset.Pick(p, []float64{0.001, 0.005}, []float64{0.1, 0.5, 1}, []float64{1, 5, 10})
	cfg.FlowTime = ft
	fc := ft
	fc.Name, fc.Model.Net = "mnist_flow_class", unet(dFlow, true, 10)
	fc.Train.PUncond = 0.1
	fc.Train.Steps = StepsForEpochs(preset.Pick(p, 0.005, 2.0, 10.0), 64)
	fc.SnapshotEpochs = preset.Pick(p, []float64{0.001, 0.005}, []float64{0.2, 1, 2}, []float64{1, 5, 10})
	cfg.FlowClass = fc
	abl := fc
	abl.Name, abl.Train.LRSchedule = "mnist_flow_class_constant_lr", lrschedule.Constant
	abl.SnapshotEpochs = nil
	cfg.FlowClassConstantLR = abl

	// Part 3: sinusoidal time embedding, p_uncond 0.1 (so that guidance is possible), pixels in
	// [-1, 1], T = 1000 linear. The class embeddings scale the feature maps (CS180's
	// u = c1*u + t1) instead of being added to them as in the DDPM report: measured at cpu
	// (D = 16, 2 epochs, CFG 3, 50 steps, 1000 digits), added embeddings gave evaluator
	// accuracy 0.764 and FID 97.7, scaling 0.966 and FID 49.0 (docs/STATUS.md). The report's
	// variant is one field away: Model.Net.Modulation = nets.ModulationAdd.
	net := unet(dFlow, true, 10)
	net.SinusoidalTimeDim, net.Modulation = 32, nets.ModulationScale
	dd := Task{Name: "mnist_ddpm", Model: imagediff.Config{Net: net, Objective: imagediff.DDPM, Schedule: &lin, PixelLo: -1, PixelHi: 1}}
	// At cpu: the learning rate and decay of the flow models. Measured (2 epochs, D = 16): 2e-3
	// with a cosine decay gave mostly digits of the wrong class; an EMA of the weights (0.999)
	// made the samples worse (its weights do not match the batch-norm statistics).
	dd.Train = imagediff.TrainConfig{BatchSize: 64, LR: preset.Pick(p, 1e-2, 1e-2, 1e-3), LRSchedule: lrschedule.Exponential, FinalLRFraction: 0.1, PUncond: 0.1, Seed: 1, Workers: workers}
	dd.Train.Steps = StepsForEpochs(preset.Pick(p, 0.005, 2.0, 20.0), 64)
	dd.SnapshotEpochs = preset.Pick(p, []float64{0.005}, []float64{0.5, 2}, []float64{5, 20})
	cfg.DDPM = dd
	dc := dd
	dc.Name, dc.Model.Schedule = "mnist_ddpm_cosine", &cos
	dc.SnapshotEpochs = nil
	cfg.DDPMCosine = dc
	return cfg, nil
}

// Tasks returns every task of the configuration by name.
func (c Config) Tasks() map[string]Task {
	out := map[string]Task{}
	for _, t := range []Task{c.Denoiser, c.PureNoise, c.FlowTime, c.FlowClass, c.FlowClassConstantLR, c.DDPM, c.DDPMCosine} {
		out[t.Name] = t
	}
	return out
}

// snapshotSteps converts SnapshotEpochs to steps (1-based, within the run).
func (t Task) snapshotSteps() []int {
	var out []int
	for _, e := range t.SnapshotEpochs {
		s := min(t.Train.Steps, StepsForEpochs(e, t.Train.BatchSize))
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// Validate reports a task that cannot run.
func (t Task) Validate() error {
	if t.Name == "" {
		return fmt.Errorf("mnistrun: task without a name")
	}
	if t.Model.Net.Hidden < 1 {
		return fmt.Errorf("mnistrun: task %s: width (UNet hidden width, flag -width) %d: want >= 1 (0: the preset's)", t.Name, t.Model.Net.Hidden)
	}
	if err := t.Model.Validate(); err != nil {
		return fmt.Errorf("mnistrun: task %s: %w", t.Name, err)
	}
	switch {
	case t.Train.Steps < 1:
		return fmt.Errorf("mnistrun: task %s: steps (flag -steps) %d: want >= 1 (0: the preset's)", t.Name, t.Train.Steps)
	case t.Train.BatchSize < 1:
		return fmt.Errorf("mnistrun: task %s: batch size (flag -batch) %d: want >= 1 (0: the preset's)", t.Name, t.Train.BatchSize)
	case !(t.Train.LR > 0) || math.IsInf(t.Train.LR, 0):
		return fmt.Errorf("mnistrun: task %s: learning rate (flag -lr) %g: want a finite number > 0 (0: the preset's)", t.Name, t.Train.LR)
	case t.Train.Workers < 0:
		return fmt.Errorf("mnistrun: task %s: workers (flag -workers) %d: want >= 1 (0: the preset's)", t.Name, t.Train.Workers)
	}
	return nil
}
