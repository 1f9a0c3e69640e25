package mnistrun

import (
	"fmt"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/imagediff"
	"github.com/godiffusion/notebooks/diffusion/mnisteval"
	"github.com/godiffusion/notebooks/diffusion/preset"
)

// Evaluator loads the MNIST evaluator from dir, or trains it at preset p (a few minutes at cpu,
// seconds at smoke) and saves it there when there is none trained at p or a larger preset.
func Evaluator(b compute.Backend, dir string, p preset.Preset) (*mnisteval.Evaluator, bool, error) {
	return mnisteval.LoadOrTrain(b, dir, p, nil)
}

// Score has the evaluator score class-conditional samples (in the pixel range [lo, hi]) against
// their requested labels.
func Score(ev *mnisteval.Evaluator, s *imagediff.Samples, lo, hi float32) (*mnisteval.Report, error) {
	if len(s.Labels) != s.N {
		return nil, fmt.Errorf("mnistrun: %d samples with %d labels: only class-conditional samples can be scored", s.N, len(s.Labels))
	}
	return ev.Score(ToUnit(s.Images, lo, hi), s.Labels)
}
