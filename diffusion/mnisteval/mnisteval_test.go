package mnisteval

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/history"
	"github.com/godiffusion/notebooks/diffusion/preset"
)

// A small evaluator trained for a few seconds already classifies most held-out digits; it
// round-trips through a checkpoint, scores real digits as such, and puts noise far away.
func TestTrainScoreSaveLoad(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	train, err := mnist.Load(mnist.Train)
	if err != nil {
		t.Fatal(err)
	}
	test, err := mnist.Load(mnist.Test)
	if err != nil {
		t.Fatal(err)
	}
	small, err := train.Head(4000)
	if err != nil {
		t.Fatal(err)
	}
	held, err := test.Head(1000)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := New(b, Config{C1: 8, C2: 16, C3: 16, Features: 32}, 3)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ev.Train(small, TrainConfig{Steps: 150, BatchSize: 64, LR: 3e-3, Shift: 1, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Loss) != 150 || !(h.Loss[149] < h.Loss[0]) {
		t.Errorf("loss went from %.3f to %.3f", h.Loss[0], h.Loss[len(h.Loss)-1])
	}
	acc, err := ev.Accuracy(held)
	if err != nil {
		t.Fatal(err)
	}
	if acc < 0.9 {
		t.Errorf("held-out accuracy %.3f after 150 steps, want >= 0.9", acc)
	}
	real, err := ev.Score(held.Images[:500*784], held.Labels[:500])
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]float32, 500*784)
	for i := range noise {
		noise[i] = rng.Float32()
	}
	fake, err := ev.Score(noise, held.Labels[:500])
	if err != nil {
		t.Fatal(err)
	}
	if !(real.Accuracy > 0.85 && fake.Accuracy < 0.3 && real.FID*10 < fake.FID) {
		t.Errorf("real digits: accuracy %.3f FID %.2f; uniform noise: accuracy %.3f FID %.2f", real.Accuracy, real.FID, fake.Accuracy, fake.FID)
	}
	if !strings.Contains(real.Markdown(), "| all | 500 |") {
		t.Errorf("markdown report:\n%s", real.Markdown())
	}

	dir := filepath.Join(t.TempDir(), "evaluator")
	if err := ev.Save(dir, preset.Smoke); err != nil {
		t.Fatal(err)
	}
	loaded, at, err := Load(b, dir)
	if err != nil || at != preset.Smoke {
		t.Fatalf("Load: preset %q, %v", at, err)
	}
	if loaded.Training == nil || loaded.Training.Steps != 150 || loaded.Training.Shift != 1 || loaded.Training.Seed != 2 {
		t.Errorf("the checkpoint lost its training: %+v", loaded.Training)
	}
	// LoadOrTrain reuses a checkpoint trained as its preset trains, and trains again when the
	// recorded training differs (here: a larger blur than the smoke preset's).
	asPreset := PresetTraining(preset.Smoke)
	ev.Training = &asPreset
	reuse := filepath.Join(t.TempDir(), "reuse")
	if err := ev.Save(reuse, preset.Smoke); err != nil {
		t.Fatal(err)
	}
	if got, trained, err := LoadOrTrain(b, reuse, preset.Smoke, nil); err != nil || trained || got.Config != ev.Config {
		t.Errorf("LoadOrTrain of a matching checkpoint: trained %v, config %+v, %v", trained, got.Config, err)
	}
	other := asPreset
	other.Blur = asPreset.Blur + 1
	ev.Training = &other
	if err := ev.Save(reuse, preset.Smoke); err != nil {
		t.Fatal(err)
	}
	if got, trained, err := LoadOrTrain(b, reuse, preset.Smoke, nil); err != nil || !trained || !history.Same(*got.Training, asPreset) {
		t.Errorf("LoadOrTrain of a checkpoint trained otherwise: trained %v, training %+v, %v", trained, got.Training, err)
	}
	p1, f1, err := ev.Outputs(held.Images[:10*784], 10)
	if err != nil {
		t.Fatal(err)
	}
	p2, f2, err := loaded.Outputs(held.Images[:10*784], 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p1 {
		if math.Abs(float64(p1[i]-p2[i])) > 1e-6 {
			t.Fatalf("reloaded probabilities differ at %d: %g vs %g", i, p1[i], p2[i])
		}
	}
	for i := range f1 {
		if math.Abs(float64(f1[i]-f2[i])) > 1e-5 {
			t.Fatalf("reloaded features differ at %d", i)
		}
	}
	// A checkpoint whose weights do not match its config is refused.
	raw, err := os.ReadFile(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(strings.Replace(string(raw), `"c3": 16`, `"c3": 24`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(b, dir); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("Load with a mismatched config: %v", err)
	}
	if _, _, err := Load(b, filepath.Join(dir, "missing")); err == nil {
		t.Error("Load of a missing directory succeeded")
	}

	// Bad inputs.
	if _, _, err := ev.Outputs(held.Images[:100], 1); err == nil {
		t.Error("Outputs accepted 100 values as an image")
	}
	bad := append([]float32{}, held.Images[:784]...)
	bad[3] = float32(math.NaN())
	if _, _, err := ev.Outputs(bad, 1); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("Outputs of a NaN pixel: %v", err)
	}
	if _, err := ev.Score(held.Images[:2*784], []int{1, 12}); err == nil {
		t.Error("Score accepted class 12")
	}
}

func TestShifted(t *testing.T) {
	img := make([]float32, 784)
	img[5*28+7] = 1
	rng := rand.New(rand.NewPCG(1, 1))
	for range 20 {
		out := shifted(img, rng, 2)
		n, at := 0, -1
		for i, v := range out {
			if v != 0 {
				n++
				at = i
			}
		}
		r, c := at/28, at%28
		if n != 1 || r < 3 || r > 7 || c < 5 || c > 9 {
			t.Fatalf("pixel (5, 7) moved to (%d, %d), %d lit", r, c, n)
		}
	}
}

// A blurred pixel keeps its mass away from the borders, spreads symmetrically with the
// Gaussian's width, and an invalid blur is refused.
func TestBlurred(t *testing.T) {
	img := make([]float32, 784)
	img[14*28+14] = 1
	for _, sigma := range []float64{0.5, 1, 2} {
		out, err := blurred(img, sigma)
		if err != nil {
			t.Fatal(err)
		}
		sum, second := 0.0, 0.0
		for i, v := range out {
			sum += float64(v)
			dy := float64(i/28 - 14)
			second += float64(v) * dy * dy
		}
		if math.Abs(sum-1) > 1e-5 {
			t.Errorf("sigma %g: mass %v, want 1", sigma, sum)
		}
		if math.Abs(second-sigma*sigma) > 0.05*sigma*sigma+0.04 { // a sampled Gaussian: narrower at sigma 0.5
			t.Errorf("sigma %g: variance along y %v, want about %v", sigma, second, sigma*sigma)
		}
		if out[14*28+13] != out[14*28+15] || out[13*28+14] != out[15*28+14] || math.Abs(float64(out[14*28+13]-out[13*28+14])) > 1e-7 {
			t.Errorf("sigma %g: not symmetric", sigma)
		}
	}
	ev := &Evaluator{}
	for _, b := range []float64{-1, 0.2, 5} {
		if _, err := ev.Train(&mnist.Set{}, TrainConfig{Steps: 1, BatchSize: 1, LR: 1, Blur: b}); err == nil || !strings.Contains(err.Error(), "blur") {
			t.Errorf("blur %g: %v", b, err)
		}
	}
}
