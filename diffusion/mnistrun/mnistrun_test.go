package mnistrun

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/imagediff"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/tensorfile"
)

func TestPresetsValidate(t *testing.T) {
	for _, p := range preset.All {
		cfg, err := PresetConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		for name, task := range cfg.Tasks() {
			if err := task.Validate(); err != nil {
				t.Errorf("%s/%s: %v", p, name, err)
			}
		}
		if len(cfg.Tasks()) != 7 {
			t.Errorf("%s: %d distinct task names, want 7", p, len(cfg.Tasks()))
		}
	}
	cpu, _ := PresetConfig(preset.CPU)
	if got := cpu.FlowClass.snapshotSteps(); len(got) != 3 || got[2] != cpu.FlowClass.Train.Steps {
		t.Errorf("flow snapshots at steps %v (run of %d steps)", got, cpu.FlowClass.Train.Steps)
	}
}

// decodePNG returns a function checking that a figure call succeeded with a PNG, and its size.
func decodePNG(t *testing.T) func(data []byte, err error) (w, h int) {
	return func(data []byte, err error) (w, h int) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return img.Bounds().Dx(), img.Bounds().Dy()
	}
}

// The smoke tasks train, save snapshots and reload; Ensure reuses a matching checkpoint and
// retrains when the configuration changed.
func TestTrainEnsureAndFigures(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := PresetConfig(preset.Smoke)
	if err != nil {
		t.Fatal(err)
	}
	train, test, err := LoadData()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, task := range []Task{cfg.Denoiser, cfg.FlowClass, cfg.DDPM} {
		dir := filepath.Join(root, task.Name)
		m, h, trained, err := Ensure(b, task, train, dir, SnapshotFor(cfg, task, test), nil)
		if err != nil {
			t.Fatalf("%s: %v", task.Name, err)
		}
		if !trained || len(h.Loss) != task.Train.Steps || len(h.Snapshots) != len(task.snapshotSteps()) {
			t.Fatalf("%s: trained %v, %d losses, %d snapshots", task.Name, trained, len(h.Loss), len(h.Snapshots))
		}
		for _, s := range h.Snapshots {
			data, err := os.ReadFile(filepath.Join(dir, s.File))
			decodePNG(t)(data, err)
		}
		_, h2, trained, err := Ensure(b, task, train, dir, nil, nil)
		if err != nil || trained || len(h2.Loss) != len(h.Loss) {
			t.Fatalf("%s: Ensure retrained (%v) or failed: %v", task.Name, trained, err)
		}
		decodePNG(t)(LossFigure("loss", nil, h2))
		if m.Objective == "denoise" {
			decodePNG(t)(OODFigure(m, test, []int{0, 1}, []float64{0, 0.5, 1}, 1))
			continue
		}
		s, err := GenerateGrid(cfg, m, 2)
		if err != nil {
			t.Fatal(err)
		}
		if w, _ := decodePNG(t)(SampleGrid(s, m.PixelLo, m.PixelHi, 2, "samples")); w < 10*28 {
			t.Errorf("%s: sample grid only %d pixels wide", task.Name, w)
		}
		if task.Model.Objective == imagediff.DDPM {
			ev, _, err := Evaluator(b, filepath.Join(root, "evaluator"), preset.Smoke)
			if err != nil {
				t.Fatal(err)
			}
			scores, err := ScoreSamplers(ev, m, SamplerFor(cfg, m), []string{"ddim", "dpm++2m"}, []int{2, 3}, 2)
			if err != nil {
				t.Fatal(err)
			}
			md := SamplersMarkdown(scores)
			if len(scores) != 4 || scores[3].Sampler != "dpm++2m" || scores[3].Steps != 3 || scores[3].Report.N != 20 || strings.Count(md, "\n") != 6 {
				t.Errorf("sampler scores %+v\n%s", scores, md)
			}
		}
	}
	changed := cfg.Denoiser
	changed.Train.LR *= 2
	if _, _, trained, err := Ensure(b, changed, train, filepath.Join(root, changed.Name), nil, nil); err != nil || !trained {
		t.Errorf("Ensure with a new learning rate: trained %v, err %v", trained, err)
	}
	if _, _, err := Load(b, filepath.Join(root, "nothing")); err == nil {
		t.Error("Load of a missing checkpoint succeeded")
	}
	decodePNG(t)(NoisingFigure(test, []int{0, 1}, []float64{0, 0.5, 1}, 1))
}

// WriteSamples writes the digits in [0, 1] as N x 28 x 28 and their labels, which read back.
func TestWriteSamples(t *testing.T) {
	s := &imagediff.Samples{N: 2, Images: make([]float32, 2*784), Labels: []int{3, -1}}
	for i := range s.Images {
		s.Images[i] = -1 + 2*float32(i%784)/783 // [-1, 1]
	}
	dir := t.TempDir()
	paths, err := WriteSamples(dir, "digits", s, -1, 1, 28, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 {
		t.Fatalf("wrote %v", paths)
	}
	x, shape, err := tensorfile.ReadNPY(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shape, []int{2, 28, 28}) || x[0] != 0 || x[783] != 1 || math.Abs(float64(x[784+392])-392.0/783) > 1e-6 {
		t.Errorf("images: shape %v, values %g %g %g", shape, x[0], x[783], x[784+392])
	}
	l, err := tensorfile.ReadNPYTensor(paths[1])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.Int64s, []int64{3, -1}) {
		t.Errorf("labels %v", l.Int64s)
	}
	if _, err := WriteSamples(dir, "bad", &imagediff.Samples{N: 2, Images: make([]float32, 10)}, 0, 1, 28, 1); err == nil {
		t.Error("WriteSamples accepted 10 values for 2 images")
	}
	s.Labels = nil
	if paths, err := WriteSamples(dir, "nolabels", s, -1, 1, 28, 1); err != nil || len(paths) != 1 {
		t.Errorf("unlabelled samples: %v, %v", paths, err)
	}
}

// The notebooks' flags go through Override: 0 keeps the preset's value, a negative one is
// refused by Validate (so by Train and Ensure) with an error naming the flag.
func TestOverrideRefusesNegativeFlags(t *testing.T) {
	cfg, err := PresetConfig(preset.Smoke)
	if err != nil {
		t.Fatal(err)
	}
	keep := cfg.DDPM
	Override(&keep, 0, 0, 0, 0)
	if keep.Train.Steps != cfg.DDPM.Train.Steps || keep.Train.BatchSize != cfg.DDPM.Train.BatchSize || keep.Train.LR != cfg.DDPM.Train.LR ||
		keep.Model.Net.Hidden != cfg.DDPM.Model.Net.Hidden || keep.Validate() != nil {
		t.Errorf("zeros changed the task: %+v", keep.Train)
	}
	for _, c := range []struct {
		steps, batch int
		lr           float64
		width        int
		want         string
	}{
		{-5, 0, 0, 0, "flag -steps"},
		{0, -1, 0, 0, "flag -batch"},
		{0, 0, -1e-3, 0, "flag -lr"},
		{0, 0, math.NaN(), 0, "flag -lr"},
		{0, 0, 0, -8, "flag -width"},
	} {
		task := cfg.DDPM
		Override(&task, c.steps, c.batch, c.lr, c.width)
		if err := task.Validate(); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "want") {
			t.Errorf("%+v: %v", c, err)
		}
		if _, _, err := Train(nil, task, nil, t.TempDir(), nil, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Train %+v: %v", c, err)
		}
	}
}
