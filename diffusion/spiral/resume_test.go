package spiral

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

// storeValues returns every float32 variable of the network's store (weights, Adam moments,
// EMA averages, learning rate) by path.
func storeValues(t *testing.T, n *Net) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for v := range n.store.IterVariables() {
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

func sameFloat64s(a, b []float64) bool {
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

func sameHistories(t *testing.T, got, want *History) {
	t.Helper()
	if !sameFloat64s(got.TrainLoss, want.TrainLoss) || !sameFloat64s(got.ValHyvarinen, want.ValHyvarinen) ||
		!sameFloat64s(got.ValDSM, want.ValDSM) || fmt.Sprint(got.ValSteps) != fmt.Sprint(want.ValSteps) {
		t.Fatalf("histories differ:\n%v %v %v\n%v %v %v", got.TrainLoss, got.ValSteps, got.ValDSM, want.TrainLoss, want.ValSteps, want.ValDSM)
	}
}

func tinyNet(t *testing.T) *Net {
	t.Helper()
	n, err := NewNet(testBackend(t), NetConfig{Width: 8, Layers: 1, Activation: DefaultNet().Activation, TimeInput: TimeT}, DefaultProcess(), 1)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// An interrupted training (context cancelled at step 3, and again at step 9) resumed by fresh
// networks ends with the same store (weights, Adam state, EMA applied) and histories
// (training and validation losses), bit for bit, as an uninterrupted one, which equals a
// training without checkpoints; for both objectives. A changed configuration starts fresh
// and says why.
func TestTrainResumesBitIdentical(t *testing.T) {
	mix, err := NewMixture(DefaultMixture())
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range []Objective{Hyvarinen, DSM} {
		cfg := TrainConfig{Objective: obj, Steps: 12, BatchSize: 16, LR: 5e-3, LRSchedule: lrschedule.Cosine, FinalLRFraction: 0.1,
			TMin: 0.005, Seed: 3, EMADecay: 0.9, ValEvery: 4, ValSize: 64}
		n := tinyNet(t)
		plain, err := n.Train(mix, cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := storeValues(t, n)

		ref := cfg
		ref.Resume = trainstate.Options{Dir: t.TempDir(), Every: 2}
		n = tinyNet(t)
		h, err := n.Train(mix, ref)
		if err != nil {
			t.Fatal(err)
		}
		sameHistories(t, h, plain)
		sameStores(t, storeValues(t, n), want)

		dir := t.TempDir()
		var notes []string
		logf := func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }
		for _, stopAt := range []int{3, 9} {
			ctx, cancel := context.WithCancel(context.Background())
			c := cfg
			c.Resume = trainstate.Options{Dir: dir, Every: 5, Interval: -1, Context: ctx, Logf: logf}
			c.Progress = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
			_, err := tinyNet(t).Train(mix, c)
			var ie *trainstate.InterruptedError
			if !errors.As(err, &ie) || ie.Step != stopAt || ie.SaveErr != nil {
				t.Fatalf("%s: interrupt at %d: %v", obj, stopAt, err)
			}
			cancel()
		}
		c := cfg
		c.Resume = trainstate.Options{Dir: dir, Every: 5, Logf: logf}
		n = tinyNet(t)
		if h, err = n.Train(mix, c); err != nil {
			t.Fatal(err)
		}
		sameHistories(t, h, plain)
		sameStores(t, storeValues(t, n), want)
		if len(notes) != 2 || !strings.HasPrefix(notes[0], "resuming from step 3 of 12") || !strings.HasPrefix(notes[1], "resuming from step 9 of 12") {
			t.Errorf("%s: notes %q, want two resumes", obj, notes)
		}

		// A changed configuration starts fresh and says why (the state of step 10 is still
		// there: the workspace is deleted by TrainOrLoad, not by Train).
		ctx, cancel := context.WithCancel(context.Background())
		c.Resume = trainstate.Options{Dir: dir, Every: 5, Context: ctx, Logf: logf}
		c.Progress = func(step int, _ float64) { cancel() }
		if _, err := tinyNet(t).Train(mix, c); !trainstate.IsInterrupted(err) {
			t.Fatal(err)
		}
		c.LR, c.Progress = 1e-3, nil
		if _, err := tinyNet(t).Train(mix, c); !trainstate.IsInterrupted(err) {
			t.Fatal(err)
		}
		notes = notes[2:]
		if len(notes) != 2 || !strings.HasPrefix(notes[0], "resuming from step 10") || !strings.Contains(notes[1], "starting fresh: the configuration changed") || !strings.Contains(notes[1], "train.lr: 0.005 -> 0.001") {
			t.Errorf("%s: notes %q, want one start afresh naming the learning rate", obj, notes)
		}
		cancel()
	}
}

// A learning rate of 1e30 makes a loss non-finite: training stops with an error naming the
// step and the learning rate, saves nothing after the step before, and that state stays valid
// (finite; a fresh network resumes from it and diverges at the same step).
func TestTrainDivergenceKeepsLastState(t *testing.T) {
	mix, err := NewMixture(DefaultMixture())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var notes []string
	cfg := TrainConfig{Objective: DSM, Steps: 8, BatchSize: 16, LR: 1e30, TMin: 0.005, Seed: 3, ValSize: 16,
		Resume: trainstate.Options{Dir: dir, Every: 1, Interval: -1, Logf: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}}
	first := -1
	for round := range 2 {
		h, err := tinyNet(t).Train(mix, cfg)
		var de *trainstate.DivergedError
		if !errors.As(err, &de) {
			t.Fatalf("round %d: %v, want a DivergedError", round, err)
		}
		if round == 0 {
			first = de.Step
			t.Log(err)
		}
		for _, w := range []string{"spiral:", fmt.Sprintf("training diverged at step %d of 8", first), "learning rate 1e+30",
			fmt.Sprintf("the training state of step %d in %s is kept", first-1, dir), "lower the learning rate"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("round %d: %q does not say %q", round, err, w)
			}
		}
		if de.Step != first || de.Saved != first-1 || first < 2 || len(h.TrainLoss) != first-1 {
			t.Fatalf("round %d: diverged at %d (first %d), saved %d, %d losses", round, de.Step, first, de.Saved, len(h.TrainLoss))
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

// TrainOn of a class-conditional network with label dropout (latent diffusion's training)
// resumes bit-identically too.
func TestTrainOnResumesBitIdentical(t *testing.T) {
	net := func() *Net {
		n, err := NewNet(testBackend(t), tinyConditional(1, 2), DefaultProcess(), 1)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cfg := TrainConfig{Objective: DSM, Weighting: Sigma2, Steps: 10, BatchSize: 16, LR: 3e-3, TMin: 0.01, Seed: 1, PUncond: 0.2, ValSize: 32, ValEvery: 3, EMADecay: 0.9}
	n := net()
	plain, err := n.TrainOn(twoClasses{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := storeValues(t, n)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	c := cfg
	c.Resume = trainstate.Options{Dir: dir, Interval: -1, Context: ctx, Logf: t.Logf}
	c.Progress = func(step int, _ float64) {
		if step == 4 {
			cancel()
		}
	}
	if _, err := net().TrainOn(twoClasses{}, c); !trainstate.IsInterrupted(err) {
		t.Fatal(err)
	}
	c.Resume.Context, c.Progress = nil, nil
	n = net()
	h, err := n.TrainOn(twoClasses{}, c)
	if err != nil {
		t.Fatal(err)
	}
	sameHistories(t, h, plain)
	sameStores(t, storeValues(t, n), want)
}
