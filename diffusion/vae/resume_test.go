package vae

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// storeValues returns every float32 variable of the model's store (weights, Adam moments,
// learning rate) by path.
func storeValues(t *testing.T, m *Model) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for v := range m.store.IterVariables() {
		value, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		if flat, err := tensors.CopyFlatData[float32](value); err == nil {
			out[v.Path()] = flat
		}
	}
	return out
}

func sameStores(t *testing.T, a, b map[string][]float32) {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d vs %d variables", len(a), len(b))
	}
	for p, x := range a {
		y, ok := b[p]
		if !ok || len(x) != len(y) {
			t.Fatalf("%s: %d vs %d values", p, len(x), len(y))
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				t.Fatalf("%s[%d]: %g vs %g", p, i, x[i], y[i])
			}
		}
	}
}

// sameHistories compares the step losses and the per-epoch losses bit for bit.
func sameHistories(t *testing.T, got, want *History) {
	t.Helper()
	bits := func(h *History) string {
		s := ""
		for _, l := range h.StepLoss {
			s += fmt.Sprintf("%x ", math.Float64bits(l))
		}
		for _, ls := range [][]Losses{h.Train, h.Test} {
			s += "|"
			for _, l := range ls {
				s += fmt.Sprintf("%x %x %x ", math.Float64bits(l.ELBO), math.Float64bits(l.Recon), math.Float64bits(l.KL))
			}
		}
		return s
	}
	if g, w := bits(got), bits(want); g != w {
		t.Fatalf("histories differ:\n%s\n%s", g, w)
	}
}

func tinyVAE(t *testing.T) *Model {
	t.Helper()
	m, err := New(testBackend(t), NetConfig{Latent: 2, Hidden: 8}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// An interrupted training on two data-parallel shards (context cancelled at step 3, mid-epoch
// 1, and again at step 6, mid-epoch 2; 100 images, batch 32: 4 steps per epoch, the last one
// partial) resumed by fresh
// models ends with the same store (weights and Adam state) and histories (step losses,
// per-epoch training and test losses), bit for bit, as an uninterrupted one, which equals a
// training without checkpoints. A changed configuration starts fresh and says why.
func TestTrainResumesBitIdentical(t *testing.T) {
	tr, te := smallSets(t, 100, 50)
	cfg := TrainConfig{Epochs: 3, BatchSize: 32, LR: 1e-3, LRSchedule: lrschedule.Cosine, FinalLRFraction: 0.1, Seed: 2, Workers: 2}
	m := tinyVAE(t)
	plain, err := m.Train(tr, te, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := storeValues(t, m)

	ref := cfg
	ref.Resume = trainstate.Options{Dir: t.TempDir(), Every: 3}
	m = tinyVAE(t)
	h, err := m.Train(tr, te, ref)
	if err != nil {
		t.Fatal(err)
	}
	sameHistories(t, h, plain)
	sameStores(t, storeValues(t, m), want)

	dir := t.TempDir()
	var notes []string
	logf := func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }
	for _, stopAt := range []int{3, 6} {
		ctx, cancel := context.WithCancel(context.Background())
		c := cfg
		c.Resume = trainstate.Options{Dir: dir, Every: 4, Interval: -1, Context: ctx, Logf: logf}
		c.Progress = func(_, step int, _ float64) {
			if step == stopAt {
				cancel()
			}
		}
		_, err := tinyVAE(t).Train(tr, te, c)
		var ie *trainstate.InterruptedError
		if !errors.As(err, &ie) || ie.Step != stopAt || ie.SaveErr != nil {
			t.Fatalf("interrupt at %d: %v", stopAt, err)
		}
		cancel()
	}
	c := cfg
	c.Resume = trainstate.Options{Dir: dir, Every: 4, Logf: logf}
	m = tinyVAE(t)
	if h, err = m.Train(tr, te, c); err != nil {
		t.Fatal(err)
	}
	sameHistories(t, h, plain)
	sameStores(t, storeValues(t, m), want)
	if len(notes) != 2 || !strings.HasPrefix(notes[0], "resuming from step 3 of 12") || !strings.HasPrefix(notes[1], "resuming from step 6 of 12") {
		t.Errorf("notes %q, want two resumes", notes)
	}

	// A changed configuration (or data) starts fresh and says why.
	notes = nil
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Resume.Context, c.Epochs = ctx, 2
	if _, err := tinyVAE(t).Train(tr, te, c); !trainstate.IsInterrupted(err) {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "starting fresh: the configuration changed") || !strings.Contains(notes[0], "train.epochs: 3 -> 2") {
		t.Errorf("notes %q, want one start afresh naming the epochs", notes)
	}
	notes = nil
	c.Epochs = 3
	te2, err := te.Head(40)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tinyVAE(t).Train(tr, te2, c); !trainstate.IsInterrupted(err) {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "test.") {
		t.Errorf("notes %q, want a start afresh naming the test set", notes)
	}
}

// A learning rate of 1e30 makes a loss non-finite: training stops with an error naming the
// step and the learning rate, saves nothing after the step before, and that state stays valid
// (finite; a fresh model resumes from it and diverges at the same step).
func TestTrainDivergenceKeepsLastState(t *testing.T) {
	tr, te := smallSets(t, 100, 50)
	dir := t.TempDir()
	var notes []string
	cfg := TrainConfig{Epochs: 2, BatchSize: 32, LR: 1e30, Seed: 2,
		Resume: trainstate.Options{Dir: dir, Every: 1, Interval: -1, Logf: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}}
	first := -1
	for round := range 2 {
		h, err := tinyVAE(t).Train(tr, te, cfg)
		var de *trainstate.DivergedError
		if !errors.As(err, &de) {
			t.Fatalf("round %d: %v, want a DivergedError", round, err)
		}
		if round == 0 {
			first = de.Step
			t.Log(err)
		}
		for _, w := range []string{"vae: epoch", fmt.Sprintf("training diverged at step %d of 8", first), "learning rate 1e+30",
			fmt.Sprintf("the training state of step %d in %s is kept", first-1, dir), "lower the learning rate"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("round %d: %q does not say %q", round, err, w)
			}
		}
		if de.Step != first || de.Saved != first-1 || first < 2 || len(h.StepLoss) != first-1 {
			t.Fatalf("round %d: diverged at %d (first %d), saved %d, %d losses", round, de.Step, first, de.Saved, len(h.StepLoss))
		}
		var st trainstate.State
		if err := savedmodel.ReadMeta(dir, &st); err != nil || st.Step != first-1 {
			t.Fatalf("round %d: state step %d, %v", round, st.Step, err)
		}
		if err := savedmodel.CheckFinite(dir); err != nil {
			t.Fatal(err)
		}
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], fmt.Sprintf("resuming from step %d", first-1)) {
		t.Errorf("notes %q, want one resume", notes)
	}
}
