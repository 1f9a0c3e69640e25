package mnistrun

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/history"
	"github.com/godiffusion/notebooks/diffusion/imagediff"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/tensorfile"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// HistoryFile is the JSON file of a checkpoint directory with its training history.
const HistoryFile = history.File

// Snapshot is a figure saved during training.
type Snapshot struct {
	Step  int     `json:"step"`
	Epoch float64 `json:"epoch"`
	File  string  `json:"file"` // PNG file name in the checkpoint directory
}

// History is a task's training history as saved next to its checkpoint.
type History struct {
	Task      string                `json:"task"`
	Train     imagediff.TrainConfig `json:"train"`
	Loss      []float64             `json:"loss"`
	LR        []float64             `json:"lr"`
	Epochs    float64               `json:"epochs"`
	Seconds   float64               `json:"seconds"`
	Snapshots []Snapshot            `json:"snapshots,omitempty"`
}

// SnapshotFunc draws the figure (a PNG) saved at a snapshot of training.
type SnapshotFunc func(m *imagediff.Model, step int, epoch float64) ([]byte, error)

// Train trains task on the training images, saves the model and its History into dir and
// returns both. snapshot (may be nil) draws the figures saved at task.SnapshotEpochs;
// onStep (may be nil) is called after every step.
//
// Training is resumable: until it finishes, its state is saved every task.CheckpointEvery
// steps or task.CheckpointInterval (default trainstate.DefaultInterval) into the workspace
// dir + ".training" (trainstate.Open), and at an interrupt (SIGINT: Ctrl-C or Jupyter's stop
// button; SIGTERM), after which Train returns a *trainstate.InterruptedError ("interrupted at
// step k of n; saved, re-run to resume"). Calling Train again with the same task and data
// resumes there and ends with the same model and History as an uninterrupted run; with
// another configuration it says that it starts fresh, and why. Two processes training into
// the same dir get a *trainstate.LockedError.
func Train(b compute.Backend, task Task, train *mnist.Set, dir string, snapshot SnapshotFunc, onStep func(step int, loss float64)) (*imagediff.Model, *History, error) {
	if err := task.Validate(); err != nil {
		return nil, nil, err
	}
	ws, err := trainstate.Open(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("mnistrun: %s: %w", task.Name, err)
	}
	defer func() { _ = ws.Close() }()
	ctx, stop := trainstate.WithInterrupt(context.Background())
	defer stop()
	m, err := imagediff.New(b, task.Model, task.Train.Seed)
	if err != nil {
		return nil, nil, err
	}
	h := &History{Task: task.Name, Train: task.Train}
	tc := task.Train
	tc.Progress = onStep
	tc.Resume = trainstate.Options{Dir: ws.StateDir(), Every: task.CheckpointEvery, Interval: task.CheckpointInterval, Context: ctx,
		Logf: func(format string, args ...any) { fmt.Printf(task.Name+": "+format+"\n", args...) }}
	if snapshot != nil {
		tc.Snapshots = task.snapshotSteps()
		// The figures wait in the workspace (an interrupted training keeps them) and are
		// copied into dir after the model: saving the model replaces the directory.
		tc.OnSnapshot = func(step int, m *imagediff.Model) error {
			png, err := snapshot(m, step, task.epochOf(step, train.N))
			if err != nil {
				return err
			}
			return atomicfile.Write(ws.File(snapshotFile(step)), png)
		}
	}
	th, err := m.Train(train.Images, train.Labels, tc)
	if err != nil {
		return nil, nil, fmt.Errorf("mnistrun: %s: %w", task.Name, err)
	}
	h.Loss, h.LR, h.Epochs, h.Seconds = th.Loss, th.LR, th.Epochs, th.Duration.Seconds()
	h.Train.Snapshots = tc.Snapshots
	var pngs [][]byte
	if snapshot != nil {
		for _, step := range tc.Snapshots {
			png, err := os.ReadFile(ws.File(snapshotFile(step)))
			if err != nil {
				return nil, nil, fmt.Errorf("mnistrun: %s: the snapshot of step %d: %w", task.Name, step, err)
			}
			pngs = append(pngs, png)
			h.Snapshots = append(h.Snapshots, Snapshot{Step: step, Epoch: task.epochOf(step, train.N), File: snapshotFile(step)})
		}
	}
	if err := m.Save(dir); err != nil {
		return nil, nil, err
	}
	for i, s := range h.Snapshots {
		if err := atomicfile.Write(filepath.Join(dir, s.File), pngs[i]); err != nil {
			return nil, nil, err
		}
	}
	if err := history.Save(dir, h); err != nil {
		return nil, nil, err
	}
	if err := ws.Finish(); err != nil {
		return nil, nil, err
	}
	return m, h, nil
}

// snapshotFile is the file name of the snapshot figure of step.
func snapshotFile(step int) string { return fmt.Sprintf("snapshot_%06d.png", step) }

// epochOf returns the epoch (passes over n images) reached after step steps.
func (t Task) epochOf(step, n int) float64 { return float64(step*t.Train.BatchSize) / float64(n) }

// Load loads the model and History saved by Train in dir.
func Load(b compute.Backend, dir string) (*imagediff.Model, *History, error) {
	if !savedmodel.Exists(dir) {
		return nil, nil, fmt.Errorf("mnistrun: no trained model in %s: run its training cell (or `go run ./diffusion/cmd/mnist train`) first", dir)
	}
	m, err := imagediff.Load(b, dir, nil)
	if err != nil {
		return nil, nil, err
	}
	h := &History{}
	if _, err := history.Load(dir, h); err != nil {
		return nil, nil, err
	}
	return m, h, nil
}

// Ensure loads the model of task from dir when one trained with the same model and training
// configuration is there, and trains it otherwise (e.g. a later notebook run before an earlier
// one). trained says which.
func Ensure(b compute.Backend, task Task, train *mnist.Set, dir string, snapshot SnapshotFunc, onStep func(step int, loss float64)) (m *imagediff.Model, h *History, trained bool, err error) {
	if savedmodel.Exists(dir) {
		m, h, err = Load(b, dir)
		if err == nil && history.Same(m.Config, task.Model) && sameTraining(h.Train, task.Train) {
			return m, h, false, nil
		}
		why := ""
		switch {
		case err != nil:
			why = err.Error()
		case !history.Same(m.Config, task.Model):
			why = "model " + configDiff(m.Config, task.Model)
		default:
			a, b := h.Train, task.Train
			a.Snapshots, b.Snapshots = nil, nil
			why = "training " + configDiff(a, b)
		}
		fmt.Printf("%s: retraining: the model in %s does not match (%s)\n", task.Name, dir, why)
	}
	m, h, err = Train(b, task, train, dir, snapshot, onStep)
	return m, h, true, err
}

// configDiff describes how the configuration b differs from a.
func configDiff(a, b any) string {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return trainstate.Diff(ja, jb)
}

// sameTraining compares the hyperparameters of two training configurations.
func sameTraining(a, b imagediff.TrainConfig) bool {
	a.Snapshots, b.Snapshots = nil, nil
	return history.Same(a, b)
}

// LoadData loads MNIST's training and test splits.
func LoadData() (train, test *mnist.Set, err error) {
	if train, err = mnist.Load(mnist.Train); err != nil {
		return nil, nil, err
	}
	if test, err = mnist.Load(mnist.Test); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// ClassLabels returns perClass labels of each digit, digit-major: 0 0 .. 0 1 1 .. 9.
func ClassLabels(perClass int) []int {
	out := make([]int, 0, 10*perClass)
	for k := range 10 {
		for range perClass {
			out = append(out, k)
		}
	}
	return out
}

// ToUnit maps images from the model's pixel range to [0, 1] (the evaluator's and the
// figures' range), clipping.
func ToUnit(images []float32, lo, hi float32) []float32 {
	out := make([]float32, len(images))
	for i, v := range images {
		out[i] = min(1, max(0, (v-lo)/(hi-lo)))
	}
	return out
}

// FirstPerClass returns the first k of every perClass digit-major samples (as ClassLabels
// orders them), e.g. four of each digit for a grid.
func FirstPerClass(s *imagediff.Samples, perClass, k int) (*imagediff.Samples, error) {
	if perClass < 1 || k < 1 || k > perClass || s.N != 10*perClass {
		return nil, fmt.Errorf("mnistrun: cannot take %d of %d per class from %d samples", k, perClass, s.N)
	}
	per := len(s.Images) / s.N
	out := &imagediff.Samples{N: 10 * k}
	for c := range 10 {
		for i := range k {
			j := c*perClass + i
			out.Images = append(out.Images, s.Images[j*per:(j+1)*per]...)
			if s.Labels != nil {
				out.Labels = append(out.Labels, s.Labels[j])
			}
		}
	}
	return out, nil
}

// WriteSamples writes generated digits (in the model's pixel range [lo, hi]) into dir as
// name.npy, an N x S x S float32 array in [0, 1] (S x S x 1 images; colour images keep their
// channels as a last axis), and, when the samples have labels, name_labels.npy (N int64, -1
// for unconditional). Each file is replaced atomically. It returns the paths written.
func WriteSamples(dir, name string, s *imagediff.Samples, lo, hi float32, size, channels int) ([]string, error) {
	per := size * size * channels
	if s == nil || s.N < 1 || per < 1 || len(s.Images) != s.N*per {
		return nil, fmt.Errorf("mnistrun: WriteSamples: no samples of %dx%dx%d values", size, size, channels)
	}
	if s.Labels != nil && len(s.Labels) != s.N {
		return nil, fmt.Errorf("mnistrun: WriteSamples: %d labels for %d samples", len(s.Labels), s.N)
	}
	if !(hi > lo) {
		return nil, fmt.Errorf("mnistrun: WriteSamples: empty pixel range [%g, %g]", lo, hi)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	shape := []int{s.N, size, size}
	if channels > 1 {
		shape = append(shape, channels)
	}
	images := filepath.Join(dir, name+".npy")
	if err := tensorfile.WriteNPY(images, ToUnit(s.Images, lo, hi), shape...); err != nil {
		return nil, err
	}
	paths := []string{images}
	if s.Labels != nil {
		l := make([]int64, s.N)
		for i, y := range s.Labels {
			l[i] = int64(y)
		}
		t, err := tensorfile.NewInt64(l, s.N)
		if err != nil {
			return nil, err
		}
		labels := filepath.Join(dir, name+"_labels.npy")
		if err := tensorfile.WriteNPYTensor(labels, t); err != nil {
			return nil, err
		}
		paths = append(paths, labels)
	}
	return paths, nil
}
