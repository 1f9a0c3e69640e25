package statesrun

import (
	"fmt"
	"time"

	"github.com/godiffusion/notebooks/diffusion/data/states"
	"github.com/godiffusion/notebooks/diffusion/ddpm"
	"github.com/godiffusion/notebooks/diffusion/metrics"
	"github.com/godiffusion/notebooks/diffusion/sampling"
)

// StepScore is the score of samples drawn with a given sampler and number of steps.
type StepScore struct {
	Sampler  string // a name of sampling.SamplerNames ("ddpm": ancestral; "ddim": eta 0)
	Steps    int
	Report   metrics.Report
	Duration time.Duration
	// Autoguidance, when Weak > 0: the weak model's training step, the scale and the
	// interval of steps k it applies to (nil: all).
	Weak     int
	Scale    float64
	Interval *sampling.Interval
}

// Name describes the sampler of the score, e.g. "ddpm, 500 steps, autoguided by step 1000, w 2".
func (s StepScore) Name() string {
	name := fmt.Sprintf("%s, %d steps", s.Sampler, s.Steps)
	if ag := (Autoguide{Weak: s.Weak, W: s.Scale, Interval: s.Interval}).String(); ag != "" {
		name += ", " + ag
	}
	return name
}

// ScoreSteps draws n points with DDIM at each number of steps in ddimSteps and with
// ancestral DDPM (all T steps) and scores each set against the data (ScoreSamplers with
// DDIM only).
func ScoreSteps(d *ddpm.Denoiser, data *Data, ddimSteps []int, n int, speed ddpm.Speed, seed int64) ([]StepScore, error) {
	return ScoreSamplers(d, data, []string{"ddim"}, ddimSteps, n, speed, seed)
}

// ScoreSamplers draws n points with each named sampler of diffusion/sampling (see
// sampling.SamplerNames; "ddim" with eta 0) at each number of steps (evenly spaced time
// steps), and with the ancestral DDPM sampler at all T steps as the reference, and scores
// each set against the data. speed shards the network calls (no result depends on it).
func ScoreSamplers(d *ddpm.Denoiser, data *Data, samplers []string, steps []int, n int, speed ddpm.Speed, seed int64) ([]StepScore, error) {
	var out []StepScore
	for _, name := range samplers {
		if _, err := sampling.SamplerByName(name, 0); err != nil {
			return nil, err
		}
		for _, s := range steps {
			sc, err := ScoreSampler(nil, d, "", data, Sampler{Name: name, Steps: s}, n, speed, seed)
			if err != nil {
				return nil, err
			}
			out = append(out, sc)
		}
	}
	sc, err := ScoreSampler(nil, d, "", data, AssignmentSampler(), n, speed, seed)
	if err != nil {
		return nil, err
	}
	return append(out, sc), nil
}

// GuidedSet is the guided samples of one state with their score.
type GuidedSet struct {
	Label  int
	Name   string
	Points []float32 // flat N*2
	Report metrics.Report
}

// SampleGuided draws n points per state with classifier guidance (DDIM with ddimSteps
// steps; 0 means all T steps, the assignment's deterministic guided sampler) and scores
// each set (EvaluateGuided). speed as in ScoreSteps.
func SampleGuided(d *ddpm.Denoiser, c *ddpm.Classifier, data *Data, n, ddimSteps int, speed ddpm.Speed, scale float64, seed int64) ([]GuidedSet, time.Duration, error) {
	return SampleGuidedWith(d, c, nil, data, n, GuidedSampler{Steps: ddimSteps, Scale: scale}, speed, seed)
}

// SampleGuidedWith draws n points per state with the guided sampler g and scores each set
// (EvaluateGuided). weak is g's weak denoiser (LoadWeakDenoiser(g.Weak); used only when g's
// autoguidance is on, then it must be set).
func SampleGuidedWith(d *ddpm.Denoiser, c *ddpm.Classifier, weak *ddpm.Denoiser, data *Data, n int, g GuidedSampler, speed ddpm.Speed, seed int64) ([]GuidedSet, time.Duration, error) {
	labels := make([]int, states.NumLabels)
	for i := range labels {
		labels[i] = i
	}
	cfg := ddpm.DDIMConfig{Steps: g.Steps, Seed: seed, Speed: speed, GuidanceInterval: g.ClassifierInterval}
	if g.On() {
		if weak == nil {
			return nil, 0, fmt.Errorf("statesrun: %s needs the weak denoiser of step %d", g, g.Weak)
		}
		cfg.Weak, cfg.AutoguideScale, cfg.AutoguideInterval = weak, g.W, g.Interval
	}
	smp, err := d.SampleGuided(c, labels, n, g.Scale, cfg)
	if err != nil {
		return nil, 0, err
	}
	if len(smp.Points) != 2*n*len(labels) {
		return nil, 0, fmt.Errorf("statesrun: guided sampler returned %d values, want %d", len(smp.Points), 2*n*len(labels))
	}
	var sets []GuidedSet
	for i, y := range labels {
		pts := smp.Points[2*n*i : 2*n*(i+1)]
		rep, err := EvaluateGuided(data, Points(pts), y)
		if err != nil {
			return nil, 0, err
		}
		sets = append(sets, GuidedSet{Label: y, Name: states.Names[y], Points: pts, Report: rep})
	}
	return sets, smp.Duration, nil
}

// EvaluateGuided scores samples drawn for one state: NLL, precision and off-outline against all
// five states (as the course grades), the purity, and the recall against the requested state's
// own points (the share of them inside the samples' k-NN manifold; against all five states a
// one-state set could reach only about a fifth).
func EvaluateGuided(data *Data, samples [][2]float64, label int) (metrics.Report, error) {
	rep, err := data.Reference.EvaluateConditional(samples, label)
	if err != nil {
		return metrics.Report{}, err
	}
	own := data.All.OfLabel(label)
	if len(own) == 0 {
		return metrics.Report{}, fmt.Errorf("statesrun: no real points of label %d", label)
	}
	m, err := metrics.NewManifold(samples, data.Reference.Options().K)
	if err != nil {
		return metrics.Report{}, err
	}
	if rep.Recall, err = m.Coverage(own); err != nil {
		return metrics.Report{}, err
	}
	return rep, nil
}
