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
	if s.Weak > 0 {
		name += fmt.Sprintf(", autoguided by step %d, w %g", s.Weak, s.Scale)
		if s.Interval != nil {
			name += fmt.Sprintf(", k in [%g, %g]", s.Interval.Lo, s.Interval.Hi)
		}
	}
	return name
}

// ScoreAutoguidance draws n points with the named sampler on steps time steps from d guided
// by weak (the denoiser saved after weakStep of the same training) at each scale, with the
// guidance applied for steps k in iv (nil: all), and scores each set against the data.
func ScoreAutoguidance(d, weak *ddpm.Denoiser, weakStep int, data *Data, sampler string, steps int, scales []float64, iv *sampling.Interval, n int, speed ddpm.Speed, seed int64) ([]StepScore, error) {
	smp, err := sampling.SamplerByName(sampler, 0)
	if err != nil {
		return nil, err
	}
	var out []StepScore
	for _, w := range scales {
		m, err := d.Autoguided(weak, w, iv, speed)
		if err != nil {
			return nil, err
		}
		s, err := d.SampleModel(m, smp, n, steps, seed)
		if err != nil {
			return nil, fmt.Errorf("statesrun: autoguidance w %g: %w", w, err)
		}
		rep, err := data.Reference.Evaluate(Points(s.Points))
		if err != nil {
			return nil, err
		}
		out = append(out, StepScore{Sampler: sampler, Steps: steps, Report: rep, Duration: s.Duration, Weak: weakStep, Scale: w, Interval: iv})
	}
	return out, nil
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
	score := func(name string, s int, smp *ddpm.Samples) error {
		rep, err := data.Reference.Evaluate(Points(smp.Points))
		if err != nil {
			return err
		}
		out = append(out, StepScore{Sampler: name, Steps: s, Report: rep, Duration: smp.Duration})
		return nil
	}
	for _, name := range samplers {
		sampler, err := sampling.SamplerByName(name, 0)
		if err != nil {
			return nil, err
		}
		for _, s := range steps {
			smp, err := d.SampleWith(sampler, n, s, seed, speed)
			if err != nil {
				return nil, fmt.Errorf("statesrun: %s, %d steps: %w", name, s, err)
			}
			if err := score(name, s, smp); err != nil {
				return nil, err
			}
		}
	}
	smp, err := d.Sample(n, ddpm.SampleConfig{Seed: seed, Speed: speed})
	if err != nil {
		return nil, err
	}
	if err := score("ddpm", d.Schedule.T(), smp); err != nil {
		return nil, err
	}
	return out, nil
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
// each set against all five states, with its purity. speed as in ScoreSteps.
func SampleGuided(d *ddpm.Denoiser, c *ddpm.Classifier, data *Data, n, ddimSteps int, speed ddpm.Speed, scale float64, seed int64) ([]GuidedSet, time.Duration, error) {
	labels := make([]int, states.NumLabels)
	for i := range labels {
		labels[i] = i
	}
	smp, err := d.SampleGuided(c, labels, n, scale, ddpm.DDIMConfig{Steps: ddimSteps, Seed: seed, Speed: speed})
	if err != nil {
		return nil, 0, err
	}
	if len(smp.Points) != 2*n*len(labels) {
		return nil, 0, fmt.Errorf("statesrun: guided sampler returned %d values, want %d", len(smp.Points), 2*n*len(labels))
	}
	var sets []GuidedSet
	for i, y := range labels {
		pts := smp.Points[2*n*i : 2*n*(i+1)]
		rep, err := data.Reference.EvaluateConditional(Points(pts), y)
		if err != nil {
			return nil, 0, err
		}
		sets = append(sets, GuidedSet{Label: y, Name: states.Names[y], Points: pts, Report: rep})
	}
	return sets, smp.Duration, nil
}
