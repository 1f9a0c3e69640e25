package mnisteval

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
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
// bit for bit; a changed configuration starts fresh.
func TestTrainResumes(t *testing.T) {
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
	cfg := TrainConfig{Steps: 10, BatchSize: 16, LR: 3e-3, Shift: 1, Seed: 2}
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
