package statesrun

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

func floatVars(t *testing.T, s *model.Store) map[string][]float32 {
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

func equalVars(t *testing.T, a, b map[string][]float32) {
	t.Helper()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d vs %d variables", len(a), len(b))
	}
	for p, x := range a {
		y := b[p]
		for i := range x {
			if i >= len(y) || math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				t.Fatalf("variable %s differs at %d", p, i)
			}
		}
	}
}

// The STATES trainings stop at a real SIGINT (sent to this process during a step), save,
// and resume: the denoiser (interrupted twice; NLL probes every 10 steps, a weak checkpoint at
// step 15, state every 5 steps) and the classifier end with the weights and histories
// (probes included) of uninterrupted runs, bit for bit, and leave no workspace.
func TestTrainingResumesAfterSIGINT(t *testing.T) {
	b, cfg, data := smokeSetup(t)
	cfg.Model.DenoiserTrain.Steps, cfg.Model.ClassifierTrain.Steps = 40, 20
	cfg.ProbeEvery, cfg.ProbeSamples, cfg.ProbeDDIMSteps = 10, 50, 5
	cfg.WeakSteps = []int{15}
	cfg.CheckpointEvery = 5
	root := t.TempDir()
	refD, refH, err := TrainDenoiser(b, data, cfg, filepath.Join(root, "ref"), nil)
	if err != nil {
		t.Fatal(err)
	}
	refC, refCH, err := TrainClassifier(b, data, cfg, filepath.Join(root, "refc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	interruptAt := func(at int) func(int, float64) {
		return func(step int, _ float64) {
			if step == at {
				_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
			}
		}
	}
	dir := filepath.Join(root, "denoiser")
	for _, at := range []int{12, 27} {
		_, _, err := TrainDenoiser(b, data, cfg, dir, interruptAt(at))
		var ie *trainstate.InterruptedError
		if !errors.As(err, &ie) || ie.Step < at || ie.SaveErr != nil {
			t.Fatalf("SIGINT at step %d: %v", at, err)
		}
		t.Logf("denoiser: %v", err)
	}
	d, h, err := TrainDenoiser(b, data, cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.TrainLoss, refH.TrainLoss) || !slices.Equal(h.ValLoss, refH.ValLoss) || !slices.Equal(h.Probes, refH.Probes) || len(h.Probes) != 4 {
		t.Fatalf("resumed history %+v\nuninterrupted %+v", h, refH)
	}
	equalVars(t, floatVars(t, d.Store()), floatVars(t, refD.Store()))
	if _, err := os.Stat(filepath.Join(WeakDir(dir, 15), "model.json")); err != nil {
		t.Errorf("weak checkpoint: %v", err)
	}

	cdir := filepath.Join(root, "classifier")
	if _, _, err := TrainClassifier(b, data, cfg, cdir, interruptAt(7)); !trainstate.IsInterrupted(err) {
		t.Fatalf("classifier SIGINT: %v", err)
	}
	c, ch, err := TrainClassifier(b, data, cfg, cdir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ch.TrainLoss, refCH.TrainLoss) || !slices.Equal(ch.ValAcc, refCH.ValAcc) {
		t.Fatalf("resumed classifier history %+v\nuninterrupted %+v", ch, refCH)
	}
	equalVars(t, floatVars(t, c.Store()), floatVars(t, refC.Store()))
	for _, d := range []string{dir, cdir} {
		if _, err := os.Stat(d + ".training"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("workspace of %s left: %v", d, err)
		}
	}
}
