package mnisteval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/lrschedule"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// evWeights returns every float variable under the evaluator's scope, by path.
func evWeights(t *testing.T, ev *Evaluator) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for v := range ev.store.Scope("/" + Scope).IterVariables() {
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

// An evaluator's training interrupted twice (at steps 3 and 7: mid-epoch, with random shifts)
// and resumed by fresh evaluators ends with the weights and losses of an uninterrupted one,
// bit for bit, in one call per batch and in two concurrent shards; a changed configuration
// starts fresh.
func TestTrainResumes(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { testTrainResumes(t, workers) })
	}
}

func testTrainResumes(t *testing.T, workers int) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	test, err := mnist.Load(mnist.Test)
	if err != nil {
		t.Fatal(err)
	}
	set, err := test.Head(40)
	if err != nil {
		t.Fatal(err)
	}
	cfg := TrainConfig{Steps: 10, BatchSize: 16, LR: 3e-3, Shift: 1, Seed: 2, Workers: workers}
	fresh := func() *Evaluator {
		ev, err := New(b, Config{C1: 2, C2: 4, C3: 4, Features: 8}, 3)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	ev := fresh()
	plain, err := ev.Train(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := evWeights(t, ev)

	dir := t.TempDir()
	var notes []string
	logf := func(f string, a ...any) { notes = append(notes, f) }
	for _, stopAt := range []int{3, 7} {
		ctx, cancel := context.WithCancel(context.Background())
		c := cfg
		c.Resume = trainstate.Options{Dir: dir, Interval: -1, Context: ctx, Logf: logf}
		c.Progress = func(step int, _ float64) {
			if step == stopAt {
				cancel()
			}
		}
		if _, err := fresh().Train(set, c); !trainstate.IsInterrupted(err) || !strings.Contains(err.Error(), "saved, re-run to resume") {
			t.Fatalf("interrupt at %d: %v", stopAt, err)
		}
		cancel()
	}
	c := cfg
	c.Resume = trainstate.Options{Dir: dir, Logf: logf}
	ev = fresh()
	h, err := ev.Train(set, c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.Loss, plain.Loss) {
		t.Fatalf("resumed losses %v, uninterrupted %v", h.Loss, plain.Loss)
	}
	got := evWeights(t, ev)
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d vs %d variables", len(got), len(want))
	}
	for p, w := range want {
		for i := range w {
			if math.Float32bits(w[i]) != math.Float32bits(got[p][i]) {
				t.Fatalf("%s[%d]: %g resumed, %g uninterrupted", p, i, got[p][i], w[i])
			}
		}
	}
	if len(notes) != 2 || !strings.HasPrefix(notes[1], "resuming") {
		t.Errorf("notes %q", notes)
	}
	notes = nil
	c.Shift = 0
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Resume.Context = ctx
	if _, err := fresh().Train(set, c); !trainstate.IsInterrupted(err) || len(notes) != 1 || !strings.Contains(notes[0], "starting fresh") {
		t.Errorf("changed shift: %v, notes %q", err, notes)
	}
}

// A learning rate of 1e30 makes a loss non-finite: the error names the step and the
// learning rate, nothing is saved after the step before, and that state is finite and
// resumable (a fresh evaluator resumes from it and diverges at the same step).
func TestTrainDivergenceKeepsLastState(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	test, err := mnist.Load(mnist.Test)
	if err != nil {
		t.Fatal(err)
	}
	set, err := test.Head(40)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var notes []string
	cfg := TrainConfig{Steps: 8, BatchSize: 16, LR: 1e30, Seed: 2}
	cfg.Resume = trainstate.Options{Dir: dir, Every: 1, Interval: -1, Logf: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}
	first := -1
	for round := range 2 {
		ev, err := New(b, Config{C1: 2, C2: 4, C3: 4, Features: 8}, 3)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ev.Train(set, cfg)
		var de *trainstate.DivergedError
		if !errors.As(err, &de) {
			t.Fatalf("round %d: %v, want a DivergedError", round, err)
		}
		if round == 0 {
			first = de.Step
			t.Log(err)
		}
		lr := lrschedule.Schedule{Kind: lrschedule.Cosine, LR: cfg.LR, FinalFraction: 0.05, Steps: cfg.Steps}.At(first - 1)
		for _, w := range []string{"mnisteval:", fmt.Sprintf("training diverged at step %d of 8", first), fmt.Sprintf("learning rate %g", lr),
			fmt.Sprintf("the training state of step %d in %s is kept", first-1, dir)} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("round %d: %q does not say %q", round, err, w)
			}
		}
		if de.Step != first || first < 2 || len(h.Loss) != first-1 {
			t.Fatalf("round %d: diverged at %d (first %d), %d losses", round, de.Step, first, len(h.Loss))
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
