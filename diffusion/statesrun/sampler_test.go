package statesrun

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/ddpm"
	"github.com/godiffusion/notebooks/diffusion/metrics"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/sampling"
)

func TestParseInterval(t *testing.T) {
	for _, c := range []struct {
		in   string
		want *sampling.Interval
		bad  bool
	}{
		{"", nil, false}, {"all", nil, false}, {"0,99", &sampling.Interval{Lo: 0, Hi: 99}, false},
		{" 100 , 499 ", &sampling.Interval{Lo: 100, Hi: 499}, false},
		{"99", nil, true}, {"5,1", nil, true}, {"-1,3", nil, true}, {"a,b", nil, true}, {"0,Inf", nil, true},
	} {
		got, err := ParseInterval(c.in)
		if (err != nil) != c.bad {
			t.Errorf("%q: error %v, want error %v", c.in, err, c.bad)
			continue
		}
		if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("%q: %+v, want %+v", c.in, got, c.want)
		}
	}
}

// The flags override the preset's samplers; -plain_sampler is the assignment's.
func TestApplySamplers(t *testing.T) {
	cfg, err := PresetConfig(preset.CPU)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.WeakSteps, cfg.Sampler.Weak) && cfg.Sampler.On() {
		t.Errorf("the cpu sampler's weak step %d is not saved by the training (WeakSteps %v)", cfg.Sampler.Weak, cfg.WeakSteps)
	}
	c := cfg
	if err := c.ApplySamplers(SamplerFlags{Plain: true}); err != nil {
		t.Fatal(err)
	}
	if c.Sampler != AssignmentSampler() || c.Guided.On() || c.Guided.Scale != cfg.Guided.Scale {
		t.Errorf("plain: %v / %v", c.Sampler, c.Guided)
	}
	c = cfg
	if err := c.ApplySamplers(SamplerFlags{Sampler: "ddpm-posterior", Weak: 1000, W: 1.5, Interval: "0,99"}); err != nil {
		t.Fatal(err)
	}
	want := Sampler{Name: "ddpm-posterior", Autoguide: Autoguide{Weak: 1000, W: 1.5, Interval: &sampling.Interval{Lo: 0, Hi: 99}}}
	if c.Sampler.String() != want.String() || c.Guided.Autoguide.String() != want.Autoguide.String() {
		t.Errorf("got %v / %v, want %v", c.Sampler, c.Guided, want)
	}
	if got := want.String(); got != "ddpm-posterior, all steps, autoguided by step 1000, w 1.5, k in [0, 99]" {
		t.Errorf("String() = %q", got)
	}
	// The classifier guidance interval is the guided sampler's alone; "all" is every step.
	c = cfg
	if err := c.ApplySamplers(SamplerFlags{GuidanceInterval: "100,499"}); err != nil {
		t.Fatal(err)
	}
	if iv := c.Guided.ClassifierInterval; iv == nil || *iv != (sampling.Interval{Lo: 100, Hi: 499}) {
		t.Errorf("guidance interval 100,499: got %v", iv)
	}
	if got := c.Guided.String(); got != "guided DDIM, all steps, scale 1 at k in [100, 499]" {
		t.Errorf("guided String() = %q", got)
	}
	if err := c.ApplySamplers(SamplerFlags{GuidanceInterval: "all"}); err != nil || c.Guided.ClassifierInterval != nil {
		t.Errorf("guidance interval all: %v, %v", c.Guided.ClassifierInterval, err)
	}
	for _, f := range []SamplerFlags{{Sampler: "nope"}, {Weak: -1}, {W: math.NaN()}, {Interval: "3"}, {GuidanceInterval: "9,2"}} {
		c := cfg
		if err := c.ApplySamplers(f); err == nil {
			t.Errorf("%+v: no error", f)
		} else if f.GuidanceInterval != "" && !strings.Contains(err.Error(), "--guidance_interval") {
			t.Errorf("%+v: the error does not name the flag: %v", f, err)
		}
	}
}

// The samplers of the deliverables: the assignment's is d.Sample; autoguidance with w = 1 is the
// plain sampler, composed with classifier guidance too; guided recall is against the state's own
// points.
func TestSamplersAndGuidedScores(t *testing.T) {
	b, cfg, data := smokeSetup(t)
	cfg.Model.DenoiserTrain.Steps, cfg.Model.ClassifierTrain.Steps, cfg.ProbeEvery, cfg.WeakSteps = 40, 20, 0, []int{20}
	dir := filepath.Join(t.TempDir(), "denoiser")
	d, _, err := TrainDenoiser(b, data, cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := TrainClassifier(b, data, cfg, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	speed := ddpm.Speed{Workers: 2}
	plain, err := AssignmentSampler().Sample(b, d, dir, 200, speed, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := d.Sample(200, ddpm.SampleConfig{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plain.Points, ref.Points) {
		t.Error("the assignment's sampler differs from Denoiser.Sample")
	}
	one := Sampler{Name: "ddpm", Steps: 50, Autoguide: Autoguide{Weak: 20, W: 1}}
	two := Sampler{Name: "ddpm", Steps: 50, Autoguide: Autoguide{Weak: 20, W: 2, Interval: &sampling.Interval{Lo: 0, Hi: 20}}}
	s1, err := one.Sample(b, d, dir, 200, speed, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := two.Sample(b, d, dir, 200, speed, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(s1.Points, s2.Points) || len(s2.Frames) == 0 {
		t.Errorf("w 2 gave the samples of w 1 (or no frames: %d)", len(s2.Frames))
	}
	if _, err := (Sampler{Name: "ddpm", Autoguide: Autoguide{Weak: 30, W: 2}}).Sample(b, d, dir, 10, speed, 3, 0); err == nil || !strings.Contains(err.Error(), "step 30") {
		t.Errorf("missing weak checkpoint: %v", err)
	}

	weak, err := LoadWeakDenoiser(b, dir, 20)
	if err != nil {
		t.Fatal(err)
	}
	g := GuidedSampler{Steps: 20, Scale: 1}
	base, _, err := SampleGuidedWith(d, c, nil, data, 50, g, speed, 2)
	if err != nil {
		t.Fatal(err)
	}
	g.Autoguide = Autoguide{Weak: 20, W: 1.0000001}
	same, _, err := SampleGuidedWith(d, c, weak, data, 50, g, speed, 2)
	if err != nil {
		t.Fatal(err)
	}
	g.W = 2
	other, _, err := SampleGuidedWith(d, c, weak, data, 50, g, speed, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := SampleGuidedWith(d, c, nil, data, 50, g, speed, 2); err == nil {
		t.Error("autoguided without the weak model: no error")
	}
	for k := range base {
		for i, v := range base[k].Points {
			if math.Abs(float64(v-same[k].Points[i])) > 1e-3 {
				t.Fatalf("state %d: autoguided w ~1 moved point %d by %g", k, i/2, v-same[k].Points[i])
			}
		}
	}
	if slices.Equal(base[0].Points, other[0].Points) {
		t.Error("guided with w 2 gave the samples of no autoguidance")
	}

	// Recall of a state's own real points against themselves is 1; against all five states a
	// fifth at most.
	own := data.All.OfLabel(1)
	rep, err := EvaluateGuided(data, own, 1)
	if err != nil {
		t.Fatal(err)
	}
	all, err := data.Reference.EvaluateConditional(own, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recall != 1 || all.Recall > 0.25 || rep.Purity != 1 || rep.NLL != all.NLL {
		t.Errorf("own-state recall %g (all states %g), purity %g", rep.Recall, all.Recall, rep.Purity)
	}
}

// The study covers the plain samplers, the autoguided variants and the deliverable sampler, and
// its table and figure render.
func TestStudy(t *testing.T) {
	cfg, err := PresetConfig(preset.CPU)
	if err != nil {
		t.Fatal(err)
	}
	st := PresetStudy(cfg)
	if !slices.Contains(st.Samplers, "ddpm") || !slices.Contains(st.Samplers, "ddpm-posterior") || !slices.Contains(st.Samplers, "ddim") || len(st.Variants) == 0 {
		t.Fatalf("study %+v", st)
	}
	for _, v := range st.Variants {
		if !slices.Contains(cfg.WeakSteps, v.Weak) {
			t.Errorf("variant weak step %d not in WeakSteps %v", v.Weak, cfg.WeakSteps)
		}
	}
	rep := func(off, nll float64) metrics.Report {
		return metrics.Report{Samples: 100, NLL: nll, Precision: 0.9, Recall: 0.95, OffOutline: off, OffOutlineThreshold: 0.05}
	}
	scores := []StepScore{
		{Sampler: "ddpm", Steps: 50, Report: rep(0.1, 2.2)}, {Sampler: "ddpm", Steps: 500, Report: rep(0.02, 2.16)},
		{Sampler: "ddim", Steps: 50, Report: rep(0.05, 2.15)}, {Sampler: "ddim", Steps: 500, Report: rep(0.03, 2.15)},
		{Sampler: "ddpm", Steps: 500, Weak: 3000, Scale: 2, Report: rep(0.004, 2.153)},
		{Sampler: "ddpm", Steps: 500, Weak: 3000, Scale: 1.5, Report: rep(0.008, 2.157)},
	}
	table := StudyTable(scores, true)
	for _, want := range []string{"published solution", "autoguided by step 3000, w 2", "DDIM, 50 steps", "Targets"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	png, err := StudyFigure(scores, true)
	if err != nil || len(png) < 1000 {
		t.Fatalf("StudyFigure: %d bytes, %v", len(png), err)
	}
}
