package imagediff

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/schedule"
	"github.com/godiffusion/notebooks/diffusion/seeded"
)

func testSet(t *testing.T, n int) *mnist.Set {
	t.Helper()
	set, err := mnist.Load(mnist.Test)
	if err != nil {
		t.Fatal(err)
	}
	head, err := set.Head(n)
	if err != nil {
		t.Fatal(err)
	}
	return head
}

func newModel(t *testing.T, obj Objective, d int, classes bool) *Model {
	t.Helper()
	be, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Net: nets.DefaultUNetConfig(d), Objective: obj, PixelLo: 0, PixelHi: 1}
	switch obj {
	case Denoise:
		cfg.Sigma = 0.5
	case DDPM:
		sc := schedule.Config{Kind: schedule.Linear, T: 50, BetaStart: 1e-4, BetaEnd: 0.2}
		cfg.Schedule, cfg.PixelLo = &sc, -1
		cfg.Net.SinusoidalTimeDim = 16
	}
	if obj != Denoise {
		cfg.Net.TimeConditioned = true
	}
	if classes {
		cfg.Net.NumClasses = 10
	}
	m, err := New(be, cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func TestConfigValidate(t *testing.T) {
	sc := schedule.DefaultConfig()
	base := Config{Net: nets.DefaultUNetConfig(4), PixelLo: 0, PixelHi: 1}
	timed := base
	timed.Net.TimeConditioned = true
	for name, c := range map[string]Config{
		"no objective":      base,
		"denoise no sigma":  func() Config { c := base; c.Objective = Denoise; return c }(),
		"flow without time": func() Config { c := base; c.Objective = Flow; return c }(),
		"ddpm no schedule":  func() Config { c := timed; c.Objective = DDPM; return c }(),
		"empty range":       func() Config { c := timed; c.Objective = Flow; c.PixelHi = 0; return c }(),
		"denoise with time": func() Config { c := timed; c.Objective = Denoise; c.Sigma = 0.5; return c }(),
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
	ok := timed
	ok.Objective, ok.Schedule = DDPM, &sc
	if err := ok.Validate(); err != nil {
		t.Errorf("valid DDPM config rejected: %v", err)
	}
}

// A denoiser learns: its loss falls, it removes noise better than doing nothing, and a saved
// and reloaded copy predicts the same images.
func TestDenoiserTrainsAndRoundTrips(t *testing.T) {
	m := newModel(t, Denoise, 8, false)
	set := testSet(t, 512)
	hist, err := m.Train(set.Images, set.Labels, TrainConfig{Steps: 60, BatchSize: 32, LR: 3e-3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	first, last := mean(hist.Loss[:5]), mean(hist.Loss[len(hist.Loss)-5:])
	if !(last < 0.6*first) {
		t.Errorf("loss fell from %.4f to %.4f only", first, last)
	}
	clean := set.Images[:64*784]
	noisy := slices.Clone(clean)
	rng := seeded.New(3)
	for i := range noisy {
		noisy[i] += 0.5 * float32(rng.NormFloat64())
	}
	out, err := m.Denoise(noisy, 64, 20)
	if err != nil {
		t.Fatal(err)
	}
	mse := func(a []float32) float64 {
		s := 0.0
		for i := range a {
			d := float64(a[i] - clean[i])
			s += d * d
		}
		return s / float64(len(a))
	}
	if got, before := mse(out), mse(noisy); !(got < 0.5*before) {
		t.Errorf("denoised MSE %.4f, noisy %.4f: the model does not denoise", got, before)
	}
	dir := filepath.Join(t.TempDir(), "denoiser")
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(m.Backend(), dir, &m.Config)
	if err != nil {
		t.Fatal(err)
	}
	again, err := loaded.Denoise(noisy, 64, 64)
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if math.Abs(float64(out[i]-again[i])) > 1e-5 {
			t.Fatalf("reloaded model differs at %d: %g vs %g", i, again[i], out[i])
		}
	}
	other := m.Config
	other.Net.Hidden = 16
	if _, err := Load(m.Backend(), dir, &other); err == nil {
		t.Error("Load accepted a checkpoint with a different config")
	}
	if _, err := Load(m.Backend(), filepath.Join(dir, "missing"), nil); err == nil {
		t.Error("Load of a missing directory succeeded")
	}
	if _, err := m.Denoise(noisy[:100], 64, 0); err == nil {
		t.Error("Denoise accepted a wrong number of values")
	}
	noisy[5] = float32(math.NaN())
	if _, err := m.Denoise(noisy, 64, 0); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("Denoise of NaN input: %v", err)
	}
}

// The sampling model predicts per image at its own time and class (Null: none), and its
// classifier-free guidance is u(none) + gamma (u(class) - u(none)).
func TestSamplingModelAndGuidance(t *testing.T) {
	m := newModel(t, Flow, 4, true)
	if _, err := m.Train(testSet(t, 64).Images, testSet(t, 64).Labels, TrainConfig{Steps: 3, BatchSize: 16, LR: 1e-3, PUncond: 0.1}); err != nil {
		t.Fatal(err)
	}
	sm, err := m.SamplingModel(3) // batches of 3: the answer must not depend on it
	if err != nil {
		t.Fatal(err)
	}
	if sm.Predicts() != sampling.Velocity {
		t.Errorf("a Flow model predicts %q", sm.Predicts())
	}
	const n = 4
	x := seeded.Normals(seeded.New(5), n*784)
	tau := []float64{0.1, 0.4, 0.7, 0.9}
	uc, err := sm.Predict(x, tau, []int{3, 1, 4, 1})
	if err != nil {
		t.Fatal(err)
	}
	u0, err := sm.Predict(x, tau, []int{sampling.Null, sampling.Null, sampling.Null, sampling.Null})
	if err != nil {
		t.Fatal(err)
	}
	// One image alone gives the same answer as in the batch.
	one, err := sm.Predict(x[2*784:3*784], tau[2:3], []int{4})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range one {
		if math.Abs(float64(v-uc[2*784+i])) > 1e-5 {
			t.Fatalf("image 2 predicted alone differs from the batch at %d: %g vs %g", i, v, uc[2*784+i])
		}
	}
	g, err := sampling.ClassifierFree(sm, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	ug, err := g.Predict(x, tau, []int{3, 1, 4, 1})
	if err != nil {
		t.Fatal(err)
	}
	maxDiff := 0.0
	for i := range ug {
		want := float64(u0[i]) + 5*float64(uc[i]-u0[i])
		maxDiff = max(maxDiff, math.Abs(float64(ug[i])-want))
	}
	if maxDiff > 1e-4 {
		t.Errorf("guided prediction differs from u0 + 5 (uc - u0) by %g", maxDiff)
	}
	if slices.Equal(uc, u0) {
		t.Error("the class input has no effect")
	}
	if _, err := sm.Predict(x, tau, []int{3, 1, 10, 1}); err == nil {
		t.Error("Predict accepted class 10 of a 10-class model")
	}
	if _, err := sm.Predict(x[:100], tau, nil); err == nil {
		t.Error("Predict accepted 100 values for 4 images")
	}
}

// Samples depend on the seed and the image index only, and frames record the trajectory.
func TestSampleDeterministicAndFrames(t *testing.T) {
	for _, obj := range []Objective{Flow, DDPM} {
		m := newModel(t, obj, 4, true)
		labels := []int{0, 1, 2, 3, 4, -1, 6}
		cfg := SampleConfig{Steps: 5, Guidance: 3, Seed: 9, BatchSize: 7, Record: []int{0, 2, 5}}
		a, err := m.Sample(7, labels, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.BatchSize = 3
		b, err := m.Sample(7, labels, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a.Images {
			if math.Abs(float64(a.Images[i]-b.Images[i])) > 1e-4 {
				t.Fatalf("%s: batch size changed image value %d: %g vs %g", obj, i, a.Images[i], b.Images[i])
			}
		}
		if !slices.Equal(a.FrameSteps, []int{0, 2, 5}) || !slices.Equal(a.Frames[2], a.Images) {
			t.Errorf("%s: frames %v; the last frame should be the images", obj, a.FrameSteps)
		}
		if slices.Equal(a.Frames[0], a.Frames[1]) {
			t.Errorf("%s: step 2 did not change the images", obj)
		}
		if _, err := m.Sample(7, labels[:3], cfg); err == nil {
			t.Errorf("%s: Sample accepted 3 labels for 7 images", obj)
		}
		if _, err := m.Sample(2, []int{0, 10}, cfg); err == nil {
			t.Errorf("%s: Sample accepted label 10", obj)
		}
	}
}

func TestLRSchedules(t *testing.T) {
	c := TrainConfig{Steps: 11, LR: 1, LRSchedule: lrschedule.Exponential, FinalLRFraction: 0.1}
	if got := c.LRAt(10); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("exponential final LR %g", got)
	}
	if got := c.LRAt(5); math.Abs(got-math.Sqrt(0.1)) > 1e-12 {
		t.Errorf("exponential middle LR %g", got)
	}
	c.LRSchedule = lrschedule.Cosine
	if got := c.LRAt(5); math.Abs(got-0.55) > 1e-12 {
		t.Errorf("cosine middle LR %g", got)
	}
}

// weights returns copies of the UNet's trainable weights.
func weights(t *testing.T, m *Model) [][]float32 {
	t.Helper()
	var out [][]float32
	for v := range m.store.Scope("/" + Scope).IterVariables() {
		if !v.Trainable {
			continue
		}
		value, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		flat, err := tensors.CopyFlatData[float32](value)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, flat)
	}
	return out
}

// With EMA the final weights are the average of the recursion: after one step with the
// warm-up decay 0.1, 0.9 w1 + 0.1 w0, where w1 is what the same step gives without EMA.
func TestEMA(t *testing.T) {
	set := testSet(t, 64)
	cfg := TrainConfig{Steps: 1, BatchSize: 16, LR: 1e-2, Seed: 4}
	plain := newModel(t, Denoise, 4, false)
	w0 := weights(t, plain)
	if _, err := plain.Train(set.Images, set.Labels, cfg); err != nil {
		t.Fatal(err)
	}
	w1 := weights(t, plain)
	avg := newModel(t, Denoise, 4, false)
	cfg.EMADecay = 0.5
	if _, err := avg.Train(set.Images, set.Labels, cfg); err != nil {
		t.Fatal(err)
	}
	got := weights(t, avg)
	changed := false
	for i := range got {
		for j := range got[i] {
			want := 0.9*float64(w1[i][j]) + 0.1*float64(w0[i][j])
			if math.Abs(float64(got[i][j])-want) > 1e-6 {
				t.Fatalf("variable %d value %d: %g, want 0.9 w1 + 0.1 w0 = %g", i, j, got[i][j], want)
			}
			changed = changed || w1[i][j] != w0[i][j]
		}
	}
	if !changed {
		t.Error("the training step changed no weight")
	}
}

// A named sampler means what sampling.SamplerByName says: "ddim" is deterministic DDIM, the
// same as the default sampler with Deterministic, and "ddpm-posterior" the default ancestral one.
func TestNamedSamplers(t *testing.T) {
	m := newModel(t, DDPM, 4, true)
	labels := []int{0, 1, 2}
	base := SampleConfig{Steps: 5, Guidance: 2, Seed: 3}
	get := func(c SampleConfig) []float32 {
		s, err := m.Sample(3, labels, c)
		if err != nil {
			t.Fatal(err)
		}
		return s.Images
	}
	det, ddim := base, base
	det.Deterministic, ddim.Sampler = true, "ddim"
	if d := maxAbs(get(det), get(ddim)); d > 1e-6 {
		t.Errorf("Sampler ddim differs from Deterministic by %g", d)
	}
	post := base
	post.Sampler = "ddpm-posterior"
	if d := maxAbs(get(base), get(post)); d > 1e-5 {
		t.Errorf("Sampler ddpm-posterior differs from the default sampler by %g", d)
	}
	bad := base
	bad.Sampler = "nope"
	if _, err := m.Sample(3, labels, bad); err == nil || !strings.Contains(err.Error(), "unknown sampler") {
		t.Errorf("unknown sampler: %v", err)
	}
}

func maxAbs(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}
