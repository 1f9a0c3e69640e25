package editrun

import (
	"bytes"
	"image/png"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/imageops"
	"github.com/godiffusion/notebooks/diffusion/preset"
)

func TestConfigValidation(t *testing.T) {
	for _, p := range []preset.Preset{preset.Smoke, preset.CPU, preset.Paper} {
		c, err := PresetConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		if p == preset.CPU && (c.Digits < 100 || c.Seeds < 20) {
			t.Errorf("cpu measures %d digits and %d seeds per pair; the issue asks >= 100 and >= 20", c.Digits, c.Seeds)
		}
	}
	base, _ := PresetConfig(preset.Smoke)
	bad := map[string]func(c *Config){
		"stride":   func(c *Config) { c.Stride = 0 },
		"guidance": func(c *Config) { c.Guidance = -1 },
		"scales":   func(c *Config) { c.Scales = []float64{1, -2} },
		"digits":   func(c *Config) { c.Digits = 0 },
		"pair":     func(c *Config) { c.AnagramPairs = []Pair{{A: 6, B: 10}} },
		"mask":     func(c *Config) { c.Masks = []string{"donut"} },
		"view":     func(c *Config) { c.AnagramView = "spin" },
		"pairview": func(c *Config) { c.AnagramPairs = []Pair{{A: 6, B: 9, View: "twist"}} },
		"sigma":    func(c *Config) { c.HybridSigmas = []float64{0} },
		"blur":     func(c *Config) { c.HybridBlur = imageops.Blur{Kernel: 4, Sigma: 1} },
	}
	for name, f := range bad {
		c := base
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("bad %s accepted", name)
		}
	}
	if _, err := PresetConfig("huge"); err == nil {
		t.Error("unknown preset accepted")
	}
}

func TestOtherClassesDiffer(t *testing.T) {
	labels := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9}
	a, b := otherClasses(labels, 1), otherClasses(labels, 1)
	seen := map[int]bool{}
	for i, l := range labels {
		if a[i] == l || a[i] < 0 || a[i] > 9 {
			t.Errorf("label %d: other class %d", l, a[i])
		}
		if a[i] != b[i] {
			t.Error("otherClasses is not deterministic")
		}
		if l == 9 {
			seen[a[i]] = true
		}
	}
	if len(seen) < 2 {
		t.Error("the other classes of four 9s are all the same")
	}
}

// TestSmokeSession runs the editing tasks on the smoke preset's (barely trained) DDPM: it
// checks what must hold whatever the model's quality.
func TestSmokeSession(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the smoke DDPM and evaluator")
	}
	t.Setenv("DIFFUSION_OUTPUTS", t.TempDir())
	s, err := Open("smoke", 1)
	if err != nil {
		t.Fatal(err)
	}
	s.Config.Masks = []string{"center"}
	s.Config.CurveStarts = []int{5, 30}
	// Inpainting keeps the known pixels exactly.
	r, err := s.MeasureInpaint(4)
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxKeptChange != 0 || len(r.Original) != 1 || r.Original[0] < 0 || r.Original[0] > 1 {
		t.Errorf("inpainting rates %+v", r)
	}
	// The forward process: the noisy digits move away from the clean ones as t grows, and the
	// best blur is closer than the noisy digit.
	d, err := s.Denoise(3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range d.Times {
		if i > 0 && d.MSENoisy[i] <= d.MSENoisy[i-1] {
			t.Errorf("noisy MSE %v does not grow with t %v", d.MSENoisy, d.Times)
		}
		if d.MSEBlur[i] >= d.MSENoisy[i] {
			t.Errorf("t %d: best blur MSE %g not below the noisy %g", d.Times[i], d.MSEBlur[i], d.MSENoisy[i])
		}
	}
	if want := s.Config.IterStart; d.IterStart != want || d.Iter.FrameSteps[0] != 0 || d.Iter.FrameTimes[len(d.Iter.FrameTimes)-1] != -1 {
		t.Errorf("iterative denoising from %d: frames %v at %v", d.IterStart, d.Iter.FrameSteps, d.Iter.FrameTimes)
	}
	for name, f := range map[string]func() ([]byte, error){
		"forward":   func() ([]byte, error) { return s.ForwardFigure(d, 2) },
		"iterative": func() ([]byte, error) { return s.IterativeFigure(d, 2) },
		"anagram":   func() ([]byte, error) { return s.AnagramFigure(1) },
	} {
		data, err := f()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := png.Decode(bytes.NewReader(data)); err != nil {
			t.Errorf("%s figure: %v", name, err)
		}
	}
	sd, err := s.MeasureSDEdit(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(sd.KeepNull) != 2 || sd.Times[0] != 840 || sd.Times[1] != 90 || !strings.Contains(sd.Markdown(), "| 30 | 90 |") {
		t.Errorf("SDEdit rates at %v (t %v):\n%s", sd.Starts, sd.Times, sd.Markdown())
	}
	in, err := s.Inputs("examples", 1)
	if err != nil || len(in.Labels) < 4 || len(in.Images) != len(in.Labels)*Shape.Size() || in.Labels[0] != int(in.Names[0][0]-'0') {
		t.Fatalf("examples: %v, %+v", err, in)
	}
	for _, spec := range []string{"test:0", "test:x", "no/such.png"} {
		if _, err := s.Inputs(spec, 1); err == nil {
			t.Errorf("inputs %q: no error", spec)
		}
	}
	if c, err := Conditions(in, "null"); err != nil || c[0] != -1 {
		t.Errorf("null conditions %v, %v", c, err)
	}
	if c, err := Conditions(in, "own"); err != nil || c[1] != in.Labels[1] {
		t.Errorf("own conditions %v, %v", c, err)
	}
	if _, err := Conditions(in, "12"); err == nil {
		t.Error("class 12 accepted")
	}
	if _, _, err := s.TestDigits(s.Test.N+1, 1); err == nil {
		t.Error("more test digits than the test set: no error")
	}
}
