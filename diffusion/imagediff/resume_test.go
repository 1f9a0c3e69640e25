package imagediff

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/schedule"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// tinyResumeModel is a class-conditioned DDPM UNet of width 4 on 8x8 images, and 40 such
// images with labels.
func tinyResumeModel(t *testing.T) (*Model, []float32, []int) {
	t.Helper()
	be, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	net := nets.DefaultUNetConfig(4)
	net.ImageSize, net.TimeConditioned, net.NumClasses, net.SinusoidalTimeDim = 8, true, 3, 8
	sc := schedule.Config{Kind: schedule.Linear, T: 50, BetaStart: 1e-4, BetaEnd: 0.2}
	m, err := New(be, Config{Net: net, Objective: DDPM, Schedule: &sc, PixelLo: -1, PixelHi: 1}, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	images := make([]float32, 40*64)
	for i := range images {
		images[i] = r.Float32()
	}
	labels := make([]int, 40)
	for i := range labels {
		labels[i] = i % 3
	}
	return m, images, labels
}

// unetWeights returns every variable under /unet (raw values), by path.
func unetWeights(t *testing.T, m *Model) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for v := range m.Store().Scope("/" + Scope).IterVariables() {
		value, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		if value.DType() == DType {
			flat, err := tensors.CopyFlatData[float32](value)
			if err != nil {
				t.Fatal(err)
			}
			out[v.Path()] = flat
		}
	}
	return out
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

func sameWeights(t *testing.T, a, b map[string][]float32) {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d vs %d variables", len(a), len(b))
	}
	for p, x := range a {
		y := b[p]
		if len(x) != len(y) {
			t.Fatalf("%s: %d vs %d values", p, len(x), len(y))
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				t.Fatalf("%s[%d]: %g vs %g", p, i, x[i], y[i])
			}
		}
	}
}

// An interrupted training (context cancelled at step 4, and again at step 9) resumed by fresh
// models ends with the same weights (EMA applied) and losses, bit for bit, as an
// uninterrupted one, which equals a training without checkpoints; epochs wrap within the
// run (40 images, batch 16), so the shuffle state is restored mid-epoch. Two workers (the
// presets'): the batch-norm running statistics, the means of the shards', resume as well.
func TestTrainResumesBitIdentical(t *testing.T) {
	cfg := TrainConfig{Steps: 12, BatchSize: 16, LR: 1e-2, LRSchedule: lrschedule.Exponential, FinalLRFraction: 0.1, PUncond: 0.2, Seed: 5, EMADecay: 0.9, Workers: 2}

	m, images, labels := tinyResumeModel(t)
	plain, err := m.Train(images, labels, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := unetWeights(t, m)

	ref := cfg
	ref.Resume = trainstate.Options{Dir: t.TempDir(), Every: 2}
	m, _, _ = tinyResumeModel(t)
	h, err := m.Train(images, labels, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(h.Loss, plain.Loss) || !sameBits(h.LR, plain.LR) {
		t.Fatalf("checkpointing changed the losses: %v vs %v", h.Loss, plain.Loss)
	}
	sameWeights(t, unetWeights(t, m), want)

	dir := t.TempDir()
	var notes []string
	for _, stopAt := range []int{4, 9} {
		ctx, cancel := context.WithCancel(context.Background())
		c := cfg
		c.Resume = trainstate.Options{Dir: dir, Every: 5, Interval: -1, Context: ctx, Logf: func(f string, a ...any) { notes = append(notes, f) }}
		c.Progress = func(step int, _ float64) {
			if step == stopAt {
				cancel()
			}
		}
		m, _, _ = tinyResumeModel(t)
		_, err := m.Train(images, labels, c)
		var ie *trainstate.InterruptedError
		if !errors.As(err, &ie) || ie.Step != stopAt || ie.SaveErr != nil || !strings.Contains(err.Error(), "interrupted at step") {
			t.Fatalf("interrupt at %d: %v", stopAt, err)
		}
		cancel()
	}
	c := cfg
	c.Resume = trainstate.Options{Dir: dir, Every: 5, Logf: func(f string, a ...any) { notes = append(notes, f) }}
	m, _, _ = tinyResumeModel(t)
	h, err = m.Train(images, labels, c)
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(h.Loss, plain.Loss) || !sameBits(h.LR, plain.LR) {
		t.Fatalf("resumed losses %v, uninterrupted %v", h.Loss, plain.Loss)
	}
	sameWeights(t, unetWeights(t, m), want)
	if len(notes) != 2 || !strings.HasPrefix(notes[0], "resuming") {
		t.Errorf("notes %q, want two resumes", notes)
	}

	// A state whose weights file is damaged starts fresh, says why, and still ends as the
	// uninterrupted run.
	dir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	c.Resume = trainstate.Options{Dir: dir, Every: 5, Context: ctx, Logf: func(f string, a ...any) { notes = append(notes, f) }}
	c.Progress = func(step int, _ float64) {
		if step == 6 {
			cancel()
		}
	}
	m, _, _ = tinyResumeModel(t)
	if _, err := m.Train(images, labels, c); !trainstate.IsInterrupted(err) {
		t.Fatal(err)
	}
	bins, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
	if len(bins) != 1 {
		t.Fatalf("state files %v", bins)
	}
	if err := os.WriteFile(bins[0], []byte("not gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	notes = nil
	c.Resume.Context, c.Progress = nil, nil
	m, _, _ = tinyResumeModel(t)
	if h, err = m.Train(images, labels, c); err != nil {
		t.Fatal(err)
	}
	if !sameBits(h.Loss, plain.Loss) || len(notes) != 2 || !strings.Contains(notes[1], "cannot be loaded") {
		t.Fatalf("after a damaged state: notes %q, losses equal %v", notes, sameBits(h.Loss, plain.Loss))
	}
	sameWeights(t, unetWeights(t, m), want)

	// A changed configuration starts fresh and says why.
	notes = nil
	c.Steps, c.LR = 2, 2e-2
	m, _, _ = tinyResumeModel(t)
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	c.Resume.Context = ctx
	if _, err := m.Train(images, labels, c); !trainstate.IsInterrupted(err) {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "starting fresh") {
		t.Errorf("notes %q, want one start afresh", notes)
	}
}

// A learning rate of 1e30 makes the loss of step 2 non-finite: training stops with an error
// naming the step and the learning rate, saves nothing after step 1, and the state of step 1
// stays valid: finite, loadable (a fresh model resumes from it and diverges at the same step).
func TestTrainDivergenceKeepsLastState(t *testing.T) {
	cfg := TrainConfig{Steps: 6, BatchSize: 8, LR: 1e30, Seed: 5}
	dir := t.TempDir()
	var notes []string
	cfg.Resume = trainstate.Options{Dir: dir, Every: 1, Interval: -1, Logf: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}
	first := -1
	for round := range 2 {
		m, images, labels := tinyResumeModel(t)
		h, err := m.Train(images, labels, cfg)
		var de *trainstate.DivergedError
		if !errors.As(err, &de) {
			t.Fatalf("round %d: %v, want a DivergedError", round, err)
		}
		if round == 0 {
			first = de.Step
			t.Log(err)
		}
		want := []string{"imagediff:", fmt.Sprintf("training diverged at step %d of 6", first), "learning rate 1e+30",
			fmt.Sprintf("the training state of step %d in %s is kept", first-1, dir), "lower the learning rate"}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("round %d: %q does not say %q", round, err, w)
			}
		}
		if de.Step != first || de.Saved != first-1 || first < 2 || len(h.Loss) != first-1 {
			t.Fatalf("round %d: diverged at %d (first %d), saved %d, %d losses", round, de.Step, first, de.Saved, len(h.Loss))
		}
		var st trainstate.State
		if err := savedmodel.ReadMeta(dir, &st); err != nil || st.Step != first-1 {
			t.Fatalf("round %d: state step %d, %v", round, st.Step, err)
		}
		for _, l := range st.Loss {
			if math.IsNaN(l) || math.IsInf(l, 0) {
				t.Fatalf("saved losses %v", st.Loss)
			}
		}
		if err := savedmodel.CheckFinite(dir); err != nil {
			t.Fatal(err)
		}
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], fmt.Sprintf("resuming from step %d", first-1)) {
		t.Errorf("notes %q, want one resume", notes)
	}
}
