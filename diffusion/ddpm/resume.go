package ddpm

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/dataparallel"
	"github.com/godiffusion/notebooks/diffusion/schedule"
	"github.com/godiffusion/notebooks/diffusion/seeded"
	"github.com/godiffusion/notebooks/diffusion/trainstate"
)

// resumeKind is the kind of ddpm's resumable training states.
const resumeKind = "ddpm.Train"

// runIdentity is what defines a training run for resuming: a state is resumed only by a run
// with an equal one.
type runIdentity struct {
	Model    string          `json:"model"` // "denoiser" or "classifier"
	Net      any             `json:"net"`
	Schedule schedule.Config `json:"schedule"`
	Train    TrainConfig     `json:"train"`
	Data     trainstate.Data `json:"data"`
	Val      trainstate.Data `json:"val"`
}

// startResume starts the resumable side of a Train loop (see TrainConfig.Resume); identity is
// only evaluated when the run is resumable (it fingerprints the data).
func startResume(cfg TrainConfig, identity func() runIdentity) (*trainstate.Run, *trainstate.State, error) {
	var id any
	if cfg.Resume.Dir != "" {
		id = identity()
	}
	return cfg.Resume.Start(resumeKind, id, cfg.Steps)
}

// resumeLoop puts a loop back where a saved state left it: it compiles the training step
// (creating the optimizer's variables), loads every variable of the store, and restores the
// batches' generator and the history. ok is false when the state's variables could not be
// loaded (the run starts fresh).
func resumeLoop(run *trainstate.Run, st *trainstate.State, store *model.Store, s *dataparallel.Stepper, b *batcher, hist *History, batchSize int) (ok bool, err error) {
	if err := s.Compile(batchSize, b.shardShapes); err != nil {
		return false, err
	}
	if !run.Restore(store) {
		return false, nil
	}
	if err := json.Unmarshal(st.Extra, hist); err != nil {
		return false, fmt.Errorf("ddpm: resuming: invalid state: %w", err)
	}
	hist.TrainLoss = st.Loss
	if err := b.src.UnmarshalBinary(st.RNG["main"]); err != nil {
		return false, fmt.Errorf("ddpm: resuming: invalid RNG state: %w", err)
	}
	return true, nil
}

// saveLoop saves the state of a loop after step steps.
func saveLoop(run *trainstate.Run, store *model.Store, step int, b *batcher, hist *History, seconds float64) error {
	main, err := b.src.MarshalBinary()
	if err != nil {
		return err
	}
	extra, err := json.Marshal(hist)
	if err != nil {
		return err
	}
	return run.Save(store, &trainstate.State{Step: step, Loss: hist.TrainLoss, Seconds: seconds, RNG: map[string][]byte{"main": main}, Extra: extra})
}

// shardShapes returns the shapes of a training shard of m examples of b's batches (see
// batcher.shards).
func (b *batcher) shardShapes(m int) []shapes.Shape {
	in := []shapes.Shape{shapes.Make(DType, m, b.dim), shapes.Make(dtypes.Int32, m), shapes.Make(DType, m, b.dim)}
	if b.labels != nil {
		in = append(in, shapes.Make(dtypes.Int32, m))
	}
	return in
}

// newSource returns the batches' generator for seed and its source.
func newSource(seed int64) (*rand.Rand, *rand.PCG) {
	src := seeded.Source(seed)
	return rand.New(src), src
}
