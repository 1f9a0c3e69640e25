package editrun

import (
	"fmt"
	"math/rand/v2"

	"github.com/godiffusion/notebooks/diffusion/edit"
	"github.com/godiffusion/notebooks/diffusion/imagediff"
	"github.com/godiffusion/notebooks/diffusion/imageops"
	"github.com/godiffusion/notebooks/diffusion/metrics"
	"github.com/godiffusion/notebooks/diffusion/mnisteval"
	"github.com/godiffusion/notebooks/diffusion/mnistrun"
	"github.com/godiffusion/notebooks/diffusion/progress"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/workdir"
)

// Shape is the shape of an MNIST digit.
var Shape = imageops.Square(28, 1)

// Session is what the cells of notebook 08 and cmd/edit start from: the MNIST session of the
// preset, the editing configuration and the trained class-conditional DDPM of notebook 05.
type Session struct {
	*mnistrun.Session
	Config Config
	// DDPM is notebook 05's class-conditional DDPM (pixels in [-1, 1]).
	DDPM *imagediff.Model
	base sampling.Model
	ev   *mnisteval.Evaluator
}

// Open returns the session of a preset and seed. It loads the DDPM of notebook 05 from
// outputs/checkpoints when one trained with the preset's configuration is there, and trains
// it (with a progress bar, saying so) when none is.
func Open(presetName string, seed int64) (*Session, error) {
	ms, err := mnistrun.Setup(presetName, seed)
	if err != nil {
		return nil, err
	}
	cfg, err := PresetConfig(ms.Config.Preset)
	if err != nil {
		return nil, err
	}
	task := ms.Config.DDPM
	dir, err := workdir.Checkpoint(task.Name)
	if err != nil {
		return nil, err
	}
	var bar *progress.Bar
	m, _, trained, err := mnistrun.Ensure(ms.Backend, task, ms.Train, dir, nil, func(step int, loss float64) {
		if bar == nil {
			fmt.Printf("no %s checkpoint of the %s preset in %s: training it as notebook 05 does\n", task.Name, ms.Config.Preset, dir)
			bar = progress.New(task.Name, task.Train.Steps)
		}
		bar.Update(step, fmt.Sprintf("loss %.4f", loss))
	})
	if err != nil {
		return nil, err
	}
	if trained && bar != nil {
		bar.Done("saved")
	}
	base, err := m.SamplingModel(0)
	if err != nil {
		return nil, err
	}
	return &Session{Session: ms, Config: cfg, DDPM: m, base: base}, nil
}

// Evaluator returns the session's MNIST evaluator (loaded or trained once).
func (s *Session) Evaluator() (*mnisteval.Evaluator, error) {
	if s.ev == nil {
		ev, err := s.Session.Evaluator()
		if err != nil {
			return nil, err
		}
		s.ev = ev
	}
	return s.ev, nil
}

// Grid returns the strided time steps of the DDPM (5A: 990, 960, ..., 0 and the clean end).
func (s *Session) Grid() ([]float64, error) {
	return sampling.StridedGrid(s.DDPM.Schedule().T(), s.Config.Stride)
}

// Setup returns the editing setup of the DDPM with classifier-free guidance of the given
// scale (1: the conditional model, 0: the unconditional one), the strided grid, clipping to
// the pixel range and the session's seed.
func (s *Session) Setup(guidance float64) (edit.Setup, error) {
	m, err := sampling.ClassifierFree(s.base, guidance, nil)
	if err != nil {
		return edit.Setup{}, err
	}
	grid, err := s.Grid()
	if err != nil {
		return edit.Setup{}, err
	}
	return edit.Setup{Model: m, Process: s.DDPM.Process(), Grid: grid, Shape: Shape,
		Clip: &sampling.Range{Lo: float64(s.DDPM.PixelLo), Hi: float64(s.DDPM.PixelHi)}, Seed: s.Session.Config.Seed}, nil
}

// ToModel maps digits with pixels in [0, 1] to the model's pixel range.
func (s *Session) ToModel(unit []float32) []float32 {
	lo, hi := s.DDPM.PixelLo, s.DDPM.PixelHi
	out := make([]float32, len(unit))
	for i, v := range unit {
		out[i] = lo + (hi-lo)*v
	}
	return out
}

// ToUnit maps images in the model's pixel range to [0, 1] (clipped).
func (s *Session) ToUnit(images []float32) []float32 {
	return mnistrun.ToUnit(images, s.DDPM.PixelLo, s.DDPM.PixelHi)
}

// TestDigits returns n test digits in the model's pixel range and their labels, the first n
// of a permutation of the test set drawn from seed (the same digits for the same seed).
func (s *Session) TestDigits(n int, seed int64) ([]float32, []int, error) {
	if n < 1 || n > s.Test.N {
		return nil, nil, fmt.Errorf("editrun: %d test digits asked, the test set has %d", n, s.Test.N)
	}
	perm := rand.New(rand.NewPCG(uint64(seed), 0x5eed)).Perm(s.Test.N)[:n]
	const px = 28 * 28
	unit := make([]float32, 0, n*px)
	labels := make([]int, n)
	for i, j := range perm {
		unit = append(unit, s.Test.Images[j*px:(j+1)*px]...)
		labels[i] = s.Test.Labels[j]
	}
	return s.ToModel(unit), labels, nil
}

// Classify returns the evaluator's class of each image (model pixel range).
func (s *Session) Classify(images []float32) ([]int, error) {
	ev, err := s.Evaluator()
	if err != nil {
		return nil, err
	}
	n, err := Shape.Count(len(images))
	if err != nil {
		return nil, err
	}
	probs, _, err := ev.Outputs(s.ToUnit(images), n)
	if err != nil {
		return nil, err
	}
	return metrics.Predictions(probs, 10)
}
