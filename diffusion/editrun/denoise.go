package editrun

import (
	"fmt"
	"math"
	"strings"

	"github.com/godiffusion/notebooks/diffusion/edit"
	"github.com/godiffusion/notebooks/diffusion/imageops"
)

// DenoiseStudy is CS180 5A's parts 1.1-1.4 on test digits: the forward process at a few
// noise levels, classical Gaussian-blur denoising, one-step denoising with the model and
// iterative denoising from a strided start, with the mean squared error of each against the
// clean digits (pixels in [0, 1]). The model is unconditional here (the null class: 5A's
// generic prompt).
type DenoiseStudy struct {
	Clean  []float32 // the digits, model pixel range
	Labels []int
	Times  []int // the noise levels of the forward panel
	// Per noise level: the noisy digits, the best blur of them (Blurs) and the one-step
	// estimates; their errors.
	Noisy, Blurred, OneStep   [][]float32
	Blurs                     []imageops.Blur
	MSENoisy, MSEBlur, MSEOne []float64
	IterStart, IterT          int // the strided start of iterative denoising and its time
	IterNoisy                 []float32
	Iter                      *edit.Result // with a frame every FrameEvery steps
	IterOneStep, IterBlurred  []float32
	IterBlur                  imageops.Blur
	IterMSENoisy, IterMSE     float64
	IterMSEOne, IterMSEBlur   float64
}

// blurFor returns the Gaussian blur of sigma with kernel 2 ceil(2 sigma) + 1.
func blurFor(sigma float64) imageops.Blur {
	return imageops.Blur{Kernel: 2*int(math.Ceil(2*sigma)) + 1, Sigma: sigma}
}

// mse returns the mean squared error of a against b, both in the model's pixel range, in
// [0, 1] units.
func (s *Session) mse(a, b []float32) float64 {
	r := float64(s.DDPM.PixelHi - s.DDPM.PixelLo)
	var sum float64
	for i := range a {
		d := float64(a[i]-b[i]) / r
		sum += d * d
	}
	return sum / float64(len(a))
}

// bestBlur returns the blur of the configured sigmas that brings noisy closest to clean.
func (s *Session) bestBlur(noisy, clean []float32) ([]float32, imageops.Blur, float64, error) {
	var best []float32
	var bb imageops.Blur
	be := math.Inf(1)
	for _, sg := range s.Config.BlurSigmas {
		b := blurFor(sg)
		out, err := b.Apply(noisy, Shape)
		if err != nil {
			return nil, b, 0, err
		}
		if e := s.mse(out, clean); e < be {
			best, bb, be = out, b, e
		}
	}
	if best == nil {
		return nil, bb, 0, fmt.Errorf("editrun: no blur sigmas configured")
	}
	return best, bb, be, nil
}

// Denoise runs the study on n test digits.
func (s *Session) Denoise(n int) (*DenoiseStudy, error) {
	clean, labels, err := s.TestDigits(n, s.Session.Config.Seed)
	if err != nil {
		return nil, err
	}
	return s.DenoiseOn(clean, labels)
}

// DenoiseOn runs the study on the given digits (model pixel range) of the given labels.
func (s *Session) DenoiseOn(clean []float32, labels []int) (*DenoiseStudy, error) {
	n, err := Shape.Count(len(clean))
	if err != nil {
		return nil, err
	}
	setup, err := s.Setup(1)
	if err != nil {
		return nil, err
	}
	p := s.DDPM.Process()
	d := &DenoiseStudy{Clean: clean, Labels: labels, Times: s.Config.NoiseTimes}
	for _, t := range d.Times {
		noisy, err := edit.Noise(p, clean, Shape, float64(t), s.Session.Config.Seed)
		if err != nil {
			return nil, err
		}
		blurred, b, eb, err := s.bestBlur(noisy, clean)
		if err != nil {
			return nil, err
		}
		ts := make([]float64, n)
		for i := range ts {
			ts[i] = float64(t)
		}
		one, err := s.oneStep(setup, noisy, ts)
		if err != nil {
			return nil, err
		}
		d.Noisy, d.Blurred, d.OneStep, d.Blurs = append(d.Noisy, noisy), append(d.Blurred, blurred), append(d.OneStep, one), append(d.Blurs, b)
		d.MSENoisy, d.MSEBlur, d.MSEOne = append(d.MSENoisy, s.mse(noisy, clean)), append(d.MSEBlur, eb), append(d.MSEOne, s.mse(one, clean))
	}
	// Iterative denoising from grid[IterStart].
	d.IterStart = s.Config.IterStart
	if d.IterStart < 0 || d.IterStart >= len(setup.Grid)-1 {
		return nil, fmt.Errorf("editrun: iterative start %d outside the %d strided steps", d.IterStart, len(setup.Grid)-1)
	}
	t := setup.Grid[d.IterStart]
	d.IterT = int(t)
	if d.IterNoisy, err = edit.Noise(p, clean, Shape, t, s.Session.Config.Seed); err != nil {
		return nil, err
	}
	steps := setup.Steps(d.IterStart)
	for k := 0; k <= steps; k += max(1, s.Config.FrameEvery) {
		setup.Record = append(setup.Record, k)
	}
	if setup.Record[len(setup.Record)-1] != steps {
		setup.Record = append(setup.Record, steps)
	}
	if d.Iter, err = setup.Denoise(d.IterNoisy, nil, d.IterStart); err != nil {
		return nil, err
	}
	ts := make([]float64, n)
	for i := range ts {
		ts[i] = t
	}
	if d.IterOneStep, err = s.oneStep(setup, d.IterNoisy, ts); err != nil {
		return nil, err
	}
	var eb float64
	if d.IterBlurred, d.IterBlur, eb, err = s.bestBlur(d.IterNoisy, clean); err != nil {
		return nil, err
	}
	d.IterMSENoisy, d.IterMSE, d.IterMSEOne, d.IterMSEBlur = s.mse(d.IterNoisy, clean), s.mse(d.Iter.Images, clean), s.mse(d.IterOneStep, clean), eb
	return d, nil
}

// Markdown is the table of the study's mean squared errors.
func (d *DenoiseStudy) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Mean squared error to the clean digits (pixels in [0, 1]), %d test digits:\n\n| t | noisy | best Gaussian blur | one-step (model) | iterative (model) |\n|---:|---:|---:|---:|---:|\n", len(d.Labels))
	for i, t := range d.Times {
		fmt.Fprintf(&b, "| %d | %.4f | %.4f (kernel %d, sigma %g) | %.4f | |\n", t, d.MSENoisy[i], d.MSEBlur[i], d.Blurs[i].Kernel, d.Blurs[i].Sigma, d.MSEOne[i])
	}
	fmt.Fprintf(&b, "| %d (i_start %d) | %.4f | %.4f (kernel %d, sigma %g) | %.4f | %.4f |\n", d.IterT, d.IterStart, d.IterMSENoisy, d.IterMSEBlur, d.IterBlur.Kernel, d.IterBlur.Sigma, d.IterMSEOne, d.IterMSE)
	return b.String()
}

// oneStep returns the unconditional one-step estimates of noisy at times ts, clipped to the
// pixel range (as the samplers clip theirs).
func (s *Session) oneStep(setup edit.Setup, noisy []float32, ts []float64) ([]float32, error) {
	x0, err := edit.OneStep(setup.Model, setup.Process, noisy, ts, nil)
	if err != nil {
		return nil, err
	}
	for i, v := range x0 {
		x0[i] = min(s.DDPM.PixelHi, max(s.DDPM.PixelLo, v))
	}
	return x0, nil
}
