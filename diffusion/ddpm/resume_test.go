package ddpm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/schedule"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// storeValues returns every float32 variable of a store (weights, EMA, Adam moments), by path.
func storeValues(t *testing.T, s *model.Store) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for v := range s.IterVariables() {
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

func sameValues(t *testing.T, what string, a, b map[string][]float32) {
	t.Helper()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%s: %d vs %d variables", what, len(a), len(b))
	}
	for p, x := range a {
		y, ok := b[p]
		if !ok || len(x) != len(y) {
			t.Fatalf("%s: variable %s missing or resized", what, p)
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				t.Fatalf("%s: %s[%d] %g vs %g", what, p, i, x[i], y[i])
			}
		}
	}
}

// Denoiser and classifier trainings (2 workers on a batch of 15: shards of 7 and 8; EMA;
// cosine schedule; validation every 3 steps) interrupted at steps 4 and 9 and resumed by fresh
// models end with the store (weights, averages, Adam state) and history of an uninterrupted
// run, bit for bit.
func TestTrainResumes(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(8, 9))
	points := make([]float32, 2*60)
	labels := make([]int, 60)
	for i := range points {
		points[i] = float32(r.NormFloat64())
	}
	for i := range labels {
		labels[i] = i % 3
	}
	cfg := TrainConfig{Steps: 12, BatchSize: 15, LR: 3e-3, LRSchedule: "cosine", FinalLRFraction: 0.1, Seed: 4, ValEvery: 3, ValSize: 20, Workers: 2, EMADecay: 0.9}
	type trainer struct {
		name  string
		train func(cfg TrainConfig) (*History, *model.Store, error)
	}
	for _, tr := range []trainer{
		{"denoiser", func(cfg TrainConfig) (*History, *model.Store, error) {
			d, err := NewDenoiser(b, tinyNet, schedule.DefaultConfig(), 1)
			if err != nil {
				t.Fatal(err)
			}
			h, err := d.Train(points, nil, cfg)
			return h, d.store, err
		}},
		{"classifier", func(cfg TrainConfig) (*History, *model.Store, error) {
			c, err := NewClassifier(b, tinyClf, schedule.DefaultConfig(), 3)
			if err != nil {
				t.Fatal(err)
			}
			h, err := c.Train(points, labels, nil, nil, cfg)
			return h, c.store, err
		}},
	} {
		plain, store, err := tr.train(cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := storeValues(t, store)
		dir := t.TempDir()
		var notes []string
		logf := func(f string, a ...any) { notes = append(notes, f) }
		for _, stopAt := range []int{4, 9} {
			ctx, cancel := context.WithCancel(context.Background())
			c := cfg
			c.Resume = trainstate.Options{Dir: dir, Interval: -1, Context: ctx, Logf: logf}
			c.Progress = func(step int, _ float64) {
				if step == stopAt {
					cancel()
				}
			}
			if _, _, err := tr.train(c); !trainstate.IsInterrupted(err) {
				t.Fatalf("%s: interrupt at %d: %v", tr.name, stopAt, err)
			}
			cancel()
		}
		c := cfg
		c.Resume = trainstate.Options{Dir: dir, Logf: logf}
		h, store, err := tr.train(c)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(h.TrainLoss, plain.TrainLoss) || !slices.Equal(h.TrainAcc, plain.TrainAcc) || !slices.Equal(h.ValSteps, plain.ValSteps) ||
			!slices.Equal(h.ValLoss, plain.ValLoss) || !slices.Equal(h.ValAcc, plain.ValAcc) {
			t.Fatalf("%s: resumed history %+v, uninterrupted %+v", tr.name, h, plain)
		}
		sameValues(t, tr.name, storeValues(t, store), want)
		if len(notes) != 2 || !strings.HasPrefix(notes[1], "resuming") {
			t.Errorf("%s: notes %q", tr.name, notes)
		}
	}
}

// A learning rate of 1e30 makes a loss non-finite: the denoiser's and the classifier's
// training stop with an error naming the step and the learning rate, the failed step's
// update is not applied (the weights stay finite), nothing is saved after the step before,
// and that state is finite and resumable (a fresh model resumes and diverges at the same step).
func TestTrainDivergenceKeepsLastState(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(8, 9))
	points := make([]float32, 2*60)
	labels := make([]int, 60)
	for i := range points {
		points[i] = float32(r.NormFloat64())
	}
	for i := range labels {
		labels[i] = i % 3
	}
	for _, name := range []string{"denoiser", "classifier"} {
		dir := t.TempDir()
		var notes []string
		cfg := TrainConfig{Steps: 8, BatchSize: 15, LR: 1e30, Seed: 4, ValEvery: 100, ValSize: 20, Workers: 2}
		cfg.Resume = trainstate.Options{Dir: dir, Every: 1, Interval: -1, Logf: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}
		first := -1
		for round := range 2 {
			var store *model.Store
			var h *History
			var err error
			if name == "denoiser" {
				d, nerr := NewDenoiser(b, tinyNet, schedule.DefaultConfig(), 1)
				if nerr != nil {
					t.Fatal(nerr)
				}
				h, err = d.Train(points, nil, cfg)
				store = d.store
			} else {
				c, nerr := NewClassifier(b, tinyClf, schedule.DefaultConfig(), 3)
				if nerr != nil {
					t.Fatal(nerr)
				}
				h, err = c.Train(points, labels, nil, nil, cfg)
				store = c.store
			}
			var de *trainstate.DivergedError
			if !errors.As(err, &de) {
				t.Fatalf("%s round %d: %v, want a DivergedError", name, round, err)
			}
			if round == 0 {
				first = de.Step
				t.Log(err)
			}
			for _, w := range []string{"ddpm: " + name, fmt.Sprintf("training diverged at step %d of 8", first), "learning rate 1e+30",
				fmt.Sprintf("the training state of step %d in %s is kept", first-1, dir)} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s round %d: %q does not say %q", name, round, err, w)
				}
			}
			if de.Step != first || first < 2 || len(h.TrainLoss) != first-1 {
				t.Fatalf("%s round %d: diverged at %d (first %d), %d losses", name, round, de.Step, first, len(h.TrainLoss))
			}
			for p, vs := range storeValues(t, store) {
				for _, v := range vs {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%s: %s is %v after the failed step", name, p, v)
					}
				}
			}
			var st trainstate.State
			if err := savedmodel.ReadMeta(dir, &st); err != nil || st.Step != first-1 {
				t.Fatalf("%s round %d: state step %d, %v", name, round, st.Step, err)
			}
			if err := savedmodel.CheckFinite(dir); err != nil {
				t.Fatal(err)
			}
		}
		if len(notes) != 1 || !strings.HasPrefix(notes[0], fmt.Sprintf("resuming from step %d", first-1)) {
			t.Errorf("%s: notes %q, want one resume", name, notes)
		}
	}
}
