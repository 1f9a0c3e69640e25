package statesrun

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/ddpm"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/tensorfile"
	"github.com/gomlx/compute"
)

func TestLoadDataSplits(t *testing.T) {
	d, err := LoadData("builtin", 0.1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if d.TrainCount+d.ValCount != d.All.Len() || d.ValCount != d.All.Len()/10 {
		t.Fatalf("split %d + %d of %d points", d.TrainCount, d.ValCount, d.All.Len())
	}
	if len(d.Train) != 2*d.TrainCount || len(d.Val) != 2*d.ValCount {
		t.Fatal("flat arrays do not match the counts")
	}
	if _, err := LoadData("builtin", 1, 3); err == nil {
		t.Error("validation fraction 1 gave no error")
	}
	if _, err := LoadData(filepath.Join(t.TempDir(), "missing.pt"), 0.1, 3); err == nil {
		t.Error("a missing data file gave no error")
	}
}

// A short run of the whole pipeline: train both models briefly, save, load, sample,
// score, write the deliverables.
func TestPipelineSmoke(t *testing.T) {
	b, cfg, data := smokeSetup(t)
	cfg.Model.DenoiserTrain.Steps, cfg.Model.ClassifierTrain.Steps = 60, 40
	cfg.ProbeEvery, cfg.ProbeSamples, cfg.ProbeDDIMSteps = 30, 200, 10
	dir := t.TempDir()
	steps := 0
	_, hist, err := TrainDenoiser(b, data, cfg, filepath.Join(dir, "denoiser"), func(int, float64) { steps++ })
	if err != nil {
		t.Fatal(err)
	}
	if steps != 60 || len(hist.TrainLoss) != 60 || len(hist.Probes) != 2 || hist.Probes[1].Step != 60 {
		t.Fatalf("steps %d, losses %d, probes %+v", steps, len(hist.TrainLoss), hist.Probes)
	}
	d, loaded, err := LoadDenoiser(b, filepath.Join(dir, "denoiser"))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Probes) != 2 || len(loaded.TrainLoss) != 60 {
		t.Errorf("history did not survive the checkpoint: %d probes, %d losses", len(loaded.Probes), len(loaded.TrainLoss))
	}
	if _, _, err := TrainClassifier(b, data, cfg, filepath.Join(dir, "classifier"), nil); err != nil {
		t.Fatal(err)
	}
	c, _, err := LoadClassifier(b, filepath.Join(dir, "classifier"))
	if err != nil {
		t.Fatal(err)
	}
	scores, err := ScoreSteps(d, data, []int{5}, 100, ddpm.Speed{Workers: 2}, 1)
	if err != nil || len(scores) != 2 || scores[1].Sampler != "ddpm" {
		t.Fatalf("ScoreSteps: %+v, %v", scores, err)
	}
	sets, _, err := SampleGuided(d, c, data, 20, 10, ddpm.Speed{Workers: 2}, 1, 1)
	if err != nil || len(sets) != 5 || len(sets[4].Points) != 40 || !sets[4].Report.Conditional {
		t.Fatalf("SampleGuided: %d sets, %v", len(sets), err)
	}
	if err := WriteSamples(dir, "cond_gen_samples_4", sets[4].Points); err != nil {
		t.Fatal(err)
	}
	got, shape, err := tensorfile.ReadNPY(filepath.Join(dir, "cond_gen_samples_4.npy"))
	if err != nil || len(shape) != 2 || shape[0] != 20 || shape[1] != 2 || got[3] != sets[4].Points[3] {
		t.Fatalf("npy read back: shape %v, err %v", shape, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cond_gen_samples_4.pt")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadDenoiser(b, filepath.Join(dir, "nothing")); err == nil {
		t.Error("loading a missing checkpoint gave no error")
	}
}

// EnsureDenoiser reuses a checkpoint trained with the same configuration and retrains, saying
// why, when the configuration changed.
func TestEnsureDenoiserChecksTheConfiguration(t *testing.T) {
	b, cfg, data := smokeSetup(t)
	cfg.Model.DenoiserTrain.Steps, cfg.ProbeEvery = 20, 0
	dir := t.TempDir()
	if _, trained, stale, err := EnsureDenoiser(b, data, cfg, dir, nil); err != nil || !trained || stale != "" {
		t.Fatalf("first run: trained %v, stale %q, %v", trained, stale, err)
	}
	if _, trained, stale, err := EnsureDenoiser(b, data, cfg, dir, nil); err != nil || trained || stale != "" {
		t.Fatalf("same configuration: trained %v, stale %q, %v", trained, stale, err)
	}
	cfg.Model.DenoiserTrain.LR *= 2
	if _, trained, stale, err := EnsureDenoiser(b, data, cfg, dir, nil); err != nil || !trained || !strings.Contains(stale, "training configuration") {
		t.Fatalf("new learning rate: trained %v, stale %q, %v", trained, stale, err)
	}
	cfg.Seed++
	if _, trained, stale, err := EnsureDenoiser(b, data, cfg, dir, nil); err != nil || !trained || !strings.Contains(stale, "seed") {
		t.Fatalf("new seed: trained %v, stale %q, %v", trained, stale, err)
	}
}

func TestModelPresets(t *testing.T) {
	for _, p := range preset.All {
		m, err := ModelPreset(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Denoiser.Validate(); err != nil {
			t.Error(err)
		}
		if err := m.Classifier.Validate(); err != nil {
			t.Error(err)
		}
		for _, c := range []ddpm.TrainConfig{m.DenoiserTrain, m.ClassifierTrain} {
			if err := c.Validate(); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
	}
	if _, err := ModelPreset("huge"); err == nil {
		t.Error("unknown preset: want error")
	}
}

// The training saves its weak checkpoints; autoguidance with scale 1 is plain sampling and
// another scale changes the samples.
func TestAutoguidance(t *testing.T) {
	b, cfg, data := smokeSetup(t)
	cfg.Model.DenoiserTrain.Steps, cfg.ProbeEvery, cfg.WeakSteps = 40, 0, []int{20}
	dir := filepath.Join(t.TempDir(), "denoiser")
	d, _, err := TrainDenoiser(b, data, cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(StateDictPath(dir)); err != nil {
		t.Errorf("the training wrote no state dict: %v", err)
	}
	weak, err := LoadWeakDenoiser(b, dir, 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadWeakDenoiser(b, dir, 30); err == nil || !strings.Contains(err.Error(), "step 30") {
		t.Errorf("missing weak step: %v", err)
	}
	// w = 1 through the autoguided model itself (a Sampler with w 1 skips it), w 2 through
	// ScoreSampler, which loads the weak checkpoint from dir.
	ddim, err := sampling.SamplerByName("ddim", 0)
	if err != nil {
		t.Fatal(err)
	}
	m1, err := d.Autoguided(weak, 1, nil, cfg.Model.Speed)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := d.SampleModel(m1, ddim, 300, 20, 5)
	if err != nil {
		t.Fatal(err)
	}
	rep1, err := data.Reference.Evaluate(Points(s1.Points))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := ScoreSampler(b, d, dir, data, Sampler{Name: "ddim", Steps: 20, Autoguide: Autoguide{Weak: 20, W: 2}}, 300, cfg.Model.Speed, 5)
	if err != nil {
		t.Fatal(err)
	}
	scores := []StepScore{{Report: rep1}, s2}
	plain, err := ScoreSamplers(d, data, []string{"ddim"}, []int{20}, 300, cfg.Model.Speed, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(scores) != 2 || math.Abs(scores[0].Report.NLL-plain[0].Report.NLL) > 1e-9 {
		t.Fatalf("w = 1: NLL %g, plain DDIM %g", scores[0].Report.NLL, plain[0].Report.NLL)
	}
	if scores[1].Report.NLL == scores[0].Report.NLL {
		t.Error("w = 2 gave the same samples as w = 1")
	}
	if got := scores[1].Name(); got != "ddim, 20 steps, autoguided by step 20, w 2" {
		t.Errorf("Name() = %q", got)
	}
}

// smokeSetup returns the backend, the smoke preset's configuration and its data (built-in
// outlines): the start of the tests that train.
func smokeSetup(t *testing.T) (compute.Backend, Config, *Data) {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := PresetConfig(preset.Smoke)
	if err != nil {
		t.Fatal(err)
	}
	data, err := LoadData(cfg.Data, cfg.ValFraction, cfg.Seed)
	if err != nil {
		t.Fatal(err)
	}
	return b, cfg, data
}
