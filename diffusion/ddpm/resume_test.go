package ddpm

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/backend"
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
