// Package editrun runs the editing tasks of CS180 project 5A (diffusion/edit) on the
// class-conditional MNIST DDPM of notebook 05, for notebook 08 and cmd/edit: it loads (or
// trains) the model, builds the strided classifier-free-guided sampler, draws every panel and
// measures every rate with the MNIST evaluator.
package editrun

import (
	"fmt"
	"math"

	"github.com/godiffusion/notebooks/diffusion/imageops"
	"github.com/godiffusion/notebooks/diffusion/preset"
)

// Pair is two classes, e.g. the upright and flipped readings of an anagram, or the low- and
// high-pass classes of a hybrid. View, for anagrams, names the transform of the second
// reading (imageops.TransformByName; "" is Config.AnagramView).
type Pair struct {
	A, B int
	View string
}

// String formats the pair as "a/b", followed by its view when it has one.
func (p Pair) String() string {
	if p.View != "" {
		return fmt.Sprintf("%d/%d %s", p.A, p.B, p.View)
	}
	return fmt.Sprintf("%d/%d", p.A, p.B)
}

// Config holds the sizes of the editing tasks at one preset. The algorithms and CS180 5A's
// constants (the noise levels, the stride, the guidance scale, the i_start values) are the
// same at every preset; the presets change how many digits and seeds are measured.
type Config struct {
	Preset preset.Preset
	// Stride of the strided time steps (5A: 30 on T = 1000: 990, 960, ..., 0).
	Stride int
	// Guidance is the classifier-free guidance scale (5A: 7).
	Guidance float64
	// NoiseTimes are the forward-process panel's time steps (5A: 250, 500, 750).
	NoiseTimes []int
	// BlurSigmas are the Gaussian blurs tried as classical denoisers (the best per noise
	// level, by mean squared error to the clean digits, is shown; kernel 2 ceil(2 sigma) + 1).
	BlurSigmas []float64
	// IterStart is the strided index iterative denoising starts from (5A: 10, t = 690) and
	// FrameEvery the steps between its shown frames (5A: 5).
	IterStart, FrameEvery int
	// Starts are SDEdit's i_start values (5A: 1, 3, 5, 7, 10, 20); CurveStarts those of the
	// measured curves (5A's and two with less noise, where the input's class must survive).
	Starts, CurveStarts []int
	// CurveOwnClass adds to the SDEdit curve the run guided to each digit's own class (the
	// evaluator reads the input's class at every i_start: 0.99-1.00 at cpu), a 40% longer
	// measurement.
	CurveOwnClass bool
	// Digits is the number of test digits of the SDEdit and inpainting rates (>= 100 at cpu);
	// Shown the number of digits of each panel.
	Digits, Shown int
	// Masks are the inpainting masks (imageops.MaskByName).
	Masks []string
	// Anagram and Hybrid pairs, the anagram's second view, the seeds per pair and the
	// guidance scales of the rate tables.
	AnagramPairs, HybridPairs []Pair
	AnagramView               string
	Seeds                     int
	Scales                    []float64
	// HybridBlur is the low-pass filter of hybrids: 5A's kernel 33, sigma 2 at 64 px, scaled
	// to 28 px (kernel 15, sigma 0.875). HybridSigmas are the stronger low-pass filters also
	// measured (at Guidance; kernel 2 ceil(4 sigma) + 1): MNIST's strokes are 2-3 px wide, so
	// at 28 px the scaled filter leaves the low-pass class nearly the whole digit.
	HybridBlur   imageops.Blur
	HybridSigmas []float64
}

// PresetConfig returns the configuration of a preset.
func PresetConfig(p preset.Preset) (Config, error) {
	if _, err := preset.Parse(string(p)); err != nil {
		return Config{}, err
	}
	return Config{
		Preset:        p,
		Stride:        30,
		Guidance:      7,
		NoiseTimes:    []int{250, 500, 750},
		BlurSigmas:    []float64{0.5, 0.75, 1, 1.5, 2, 3},
		IterStart:     10,
		FrameEvery:    5,
		Starts:        []int{1, 3, 5, 7, 10, 20},
		CurveStarts:   []int{1, 3, 5, 7, 10, 20, 25, 30},
		Digits:        preset.Pick(p, 10, 100, 500),
		CurveOwnClass: p == preset.Paper,
		Shown:         preset.Pick(p, 3, 5, 5),
		Masks:         []string{"center", "bottom"},
		AnagramPairs:  []Pair{{A: 6, B: 9}, {A: 6, B: 9, View: "rot180"}, {A: 1, B: 7}, {A: 2, B: 5}},
		HybridPairs:   []Pair{{A: 0, B: 1}, {A: 3, B: 8}, {A: 4, B: 9}},
		AnagramView:   "flip",
		Seeds:         preset.Pick(p, 2, 20, 100),
		Scales:        preset.Pick(p, []float64{7}, []float64{1, 3, 7}, []float64{1, 3, 7, 12}),
		HybridBlur:    imageops.Blur{Kernel: 33, Sigma: 2}.Scaled(64, 28),
		HybridSigmas:  preset.Pick(p, []float64{2}, []float64{1.5, 2.5}, []float64{1.5, 2.5, 3.5}),
	}, nil
}

// Validate reports settings no run can use.
func (c Config) Validate() error {
	if c.Stride < 1 {
		return fmt.Errorf("editrun: stride must be >= 1, got %d", c.Stride)
	}
	if !(c.Guidance >= 0) {
		return fmt.Errorf("editrun: guidance must be >= 0, got %g", c.Guidance)
	}
	for _, w := range c.Scales {
		if !(w >= 0) {
			return fmt.Errorf("editrun: guidance scales must be >= 0, got %g", w)
		}
	}
	if c.Digits < 1 || c.Shown < 1 || c.Seeds < 1 {
		return fmt.Errorf("editrun: digits, shown and seeds must be >= 1, got %d, %d, %d", c.Digits, c.Shown, c.Seeds)
	}
	for _, ps := range [][]Pair{c.AnagramPairs, c.HybridPairs} {
		for _, p := range ps {
			if p.A < 0 || p.A > 9 || p.B < 0 || p.B > 9 {
				return fmt.Errorf("editrun: pair %s: classes must be digits 0-9", p)
			}
			if _, err := imageops.TransformByName(c.viewOf(p), imageops.Square(28, 1)); err != nil {
				return fmt.Errorf("editrun: pair %s: %w", p, err)
			}
		}
	}
	for _, sg := range c.HybridSigmas {
		if err := hybridBlur(sg).Validate(); err != nil {
			return fmt.Errorf("editrun: hybrid sigma: %w", err)
		}
	}
	for _, m := range c.Masks {
		if _, err := imageops.MaskByName(m, imageops.Square(28, 1)); err != nil {
			return fmt.Errorf("editrun: %w", err)
		}
	}
	if _, err := imageops.TransformByName(c.AnagramView, imageops.Square(28, 1)); err != nil {
		return fmt.Errorf("editrun: %w", err)
	}
	return c.HybridBlur.Validate()
}

// viewOf returns the name of the second view of an anagram pair.
func (c Config) viewOf(p Pair) string {
	if p.View != "" {
		return p.View
	}
	return c.AnagramView
}

// hybridBlur returns the Gaussian of sigma with kernel 2 ceil(4 sigma) + 1.
func hybridBlur(sigma float64) imageops.Blur {
	return imageops.Blur{Kernel: 2*int(math.Ceil(4*sigma)) + 1, Sigma: sigma}
}

// HybridBlurs returns the low-pass filters of the hybrid study: HybridBlur, then one per
// HybridSigmas.
func (c Config) HybridBlurs() []imageops.Blur {
	out := []imageops.Blur{c.HybridBlur}
	for _, sg := range c.HybridSigmas {
		out = append(out, hybridBlur(sg))
	}
	return out
}
