// Package edit holds the image-editing algorithms of CS180 project 5A (after SDEdit, RePaint
// and Visual Anagrams) over any model of the sampling core: a sampling.Model of images, its
// Process and a time grid. Each algorithm is the sampling core's sampler with a different
// start, projection or noise estimate, never a copy of the loop:
//
//	Denoise     iterative denoising of an already noised image from grid[i_start]
//	Sample      sampling from pure noise (i_start = 0)
//	SDEdit      a clean image noised to grid[i_start] and denoised (image-to-image; with
//	            another condition, class-conditional image-to-image)
//	Inpaint     RePaint: after every step the known pixels are re-imposed, noised to the
//	            current time (sampling.Inpaint)
//	Anagram     a Model whose noise estimate is the mean of the (guided) estimates of
//	            several views of the image, each under its own condition, mapped back
//	Hybrid      a Model whose estimate is the low-pass of one condition's estimate plus
//	            the high-pass of another's
//
// OneStep is the one-step estimate x0 = (x_t - sigma eps) / alpha. Classifier-free guidance
// is sampling.ClassifierFree around the model, so every algorithm takes guided or unguided
// models alike; the conditions are class labels (sampling.Null for none), the part that text
// prompts play in 5A.
package edit

import (
	"fmt"
	"slices"

	"github.com/godiffusion/notebooks/diffusion/imageops"
	"github.com/godiffusion/notebooks/diffusion/sampling"
	"github.com/godiffusion/notebooks/diffusion/seeded"
)

// Setup is what editing runs share.
type Setup struct {
	// Model is the (usually guided) denoising model of images of Shape.
	Model   sampling.Model
	Process sampling.Process
	// Grid is the time grid from noise to data, e.g. sampling.StridedGrid(1000, 30): CS180
	// 5A's strided timesteps 990, 960, ..., 0 (and the clean end).
	Grid  []float64
	Shape imageops.Shape
	// Clip, if set, clips the clean-image estimates to the pixel range.
	Clip *sampling.Range
	// Variance is the ancestral sampler's step variance (default: the posterior variance
	// between consecutive grid times, as 5A's strided DDPM steps).
	Variance sampling.Variance
	Seed     int64
	// Record lists the step indices (0 = the start, Steps = the end) whose images Frames
	// keeps.
	Record []int
}

// Result is the outcome of an editing run.
type Result struct {
	Images []float32 // N images of Shape
	// Frames[k] holds the N images after step FrameSteps[k] (the steps of Setup.Record that
	// the run took), FrameTimes[k] their time.
	Frames     [][]float32
	FrameSteps []int
	FrameTimes []float64
}

// Steps returns the number of steps a run from grid index start takes.
func (s Setup) Steps(start int) int { return len(s.Grid) - 1 - start }

// options returns the sampler options of a run of the images of cond (or n unconditional
// images when cond is nil) from grid index start.
func (s Setup) options(n int, cond []int, start int) (sampling.Options, *Result, error) {
	if s.Model == nil || s.Process == nil {
		return sampling.Options{}, nil, fmt.Errorf("edit: a Setup needs a Model and a Process")
	}
	if err := s.Shape.Valid(); err != nil {
		return sampling.Options{}, nil, err
	}
	if cond != nil && len(cond) != n {
		return sampling.Options{}, nil, fmt.Errorf("edit: %d conditions for %d images", len(cond), n)
	}
	if start < 0 || start >= len(s.Grid)-1 {
		return sampling.Options{}, nil, fmt.Errorf("edit: i_start must be in [0, %d] for a grid of %d steps, got %d", len(s.Grid)-2, len(s.Grid)-1, start)
	}
	res := &Result{}
	o := sampling.Options{N: n, Dim: s.Shape.Size(), Process: s.Process, Grid: s.Grid, Cond: cond, Seed: s.Seed,
		StartIndex: start, Clip: s.Clip}
	if len(s.Record) > 0 {
		want := map[int]bool{}
		for _, k := range s.Record {
			want[k] = true
		}
		o.Callback = func(st *sampling.Step) error {
			if want[st.Index] {
				res.Frames = append(res.Frames, append([]float32(nil), st.X...))
				res.FrameSteps = append(res.FrameSteps, st.Index)
				res.FrameTimes = append(res.FrameTimes, st.T)
			}
			return nil
		}
	}
	return o, res, nil
}

func (s Setup) run(o sampling.Options, res *Result) (*Result, error) {
	v := s.Variance
	if v == "" {
		v = sampling.PosteriorVariance
	}
	out, err := sampling.Ancestral(s.Model, o, v)
	if err != nil {
		return nil, fmt.Errorf("edit: %w", err)
	}
	res.Images = out
	return res, nil
}

// count returns the number of images in images.
func (s Setup) count(images []float32) (int, error) { return s.Shape.Count(len(images)) }

// Sample draws images from pure noise under the conditions cond (one per image; nil and n
// for unconditional sampling).
func (s Setup) Sample(n int, cond []int) (*Result, error) {
	if cond != nil {
		n = len(cond)
	}
	o, res, err := s.options(n, cond, 0)
	if err != nil {
		return nil, err
	}
	return s.run(o, res)
}

// Denoise denoises images that are already noised to grid[start] (CS180 5A's
// iterative_denoise from i_start).
func (s Setup) Denoise(noisy []float32, cond []int, start int) (*Result, error) {
	n, err := s.count(noisy)
	if err != nil {
		return nil, err
	}
	o, res, err := s.options(n, cond, start)
	if err != nil {
		return nil, err
	}
	o.XStart, o.XStartNoised = noisy, true
	return s.run(o, res)
}

// SDEdit noises clean images to grid[start] with the run's seed and denoises them under the
// conditions cond (Meng et al. 2022): the larger start, the less noise and the closer the
// result stays to the input. With conditions other than the images' own classes it is
// class-conditional image-to-image translation.
func (s Setup) SDEdit(images []float32, cond []int, start int) (*Result, error) {
	n, err := s.count(images)
	if err != nil {
		return nil, err
	}
	o, res, err := s.options(n, cond, start)
	if err != nil {
		return nil, err
	}
	o.XStart = images
	return s.run(o, res)
}

// Inpaint fills the pixels of images where mask (one image, or one per image) is 1 and keeps
// those where it is 0, sampling from pure noise (start 0) or from the images noised to
// grid[start], and re-imposing the known pixels, noised to the current time, after every
// step (RePaint, Lugmayr et al. 2022; CS180 5A). The kept pixels of the result equal the
// input's exactly.
func (s Setup) Inpaint(images, mask []float32, cond []int, start int) (*Result, error) {
	n, err := s.count(images)
	if err != nil {
		return nil, err
	}
	if len(mask) == s.Shape.Size() {
		mask = slices.Repeat(mask, n)
	}
	if len(mask) != len(images) {
		return nil, fmt.Errorf("edit: a mask of %d values for %d images of %d values (give one image's mask or one per image)", len(mask), n, s.Shape.Size())
	}
	o, res, err := s.options(n, cond, start)
	if err != nil {
		return nil, err
	}
	if start > 0 {
		o.XStart = images
	}
	if o.Project, err = sampling.Inpaint(images, mask); err != nil {
		return nil, fmt.Errorf("edit: %w", err)
	}
	return s.run(o, res)
}

// OneStep returns the one-step clean-image estimate of m for the images x at times t (one
// per image): x0 = (x_t - sigma eps) / alpha for a noise model, whatever m predicts.
func OneStep(m sampling.Model, p sampling.Process, x []float32, t []float64, cond []int) ([]float32, error) {
	if m == nil || p == nil {
		return nil, fmt.Errorf("edit: OneStep needs a model and a process")
	}
	pred, err := m.Predict(x, t, cond)
	if err != nil {
		return nil, fmt.Errorf("edit: %w", err)
	}
	x0, err := sampling.Convert(p, m.Predicts(), sampling.X0, x, pred, t)
	if err != nil {
		return nil, fmt.Errorf("edit: %w", err)
	}
	return x0, nil
}

// Noise returns images noised to time t with q(x_t | x_0) of process p, the noise of image i
// drawn from a stream of (seed, i) (the forward process of 5A's first panel).
func Noise(p sampling.Process, images []float32, shape imageops.Shape, t float64, seed int64) ([]float32, error) {
	n, err := shape.Count(len(images))
	if err != nil {
		return nil, err
	}
	z := make([]float32, 0, len(images))
	for i := range n {
		z = append(z, seeded.Normals(imageStream(seed, i), shape.Size())...)
	}
	return sampling.Forward(p, images, z, t)
}
