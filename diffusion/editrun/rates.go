package editrun

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/godiffusion/notebooks/diffusion/imageops"
	"github.com/godiffusion/notebooks/diffusion/plot"
)

// share returns the fraction of i where got[i] == want[i].
func share(got, want []int) float64 {
	k := 0
	for i := range got {
		if got[i] == want[i] {
			k++
		}
	}
	return float64(k) / float64(len(got))
}

// SDEditRates are the evaluator's verdicts on SDEdit of N test digits at each i_start:
// unconditional (the null class), guided to the digit's own class, and guided to another
// class (image-to-image translation).
type SDEditRates struct {
	N      int
	Starts []int
	Times  []int
	// KeepNull and KeepOwn: the share classified as the input's class, unconditional and
	// guided to it; Reach and KeepOther: guided to another class, the share classified as the
	// requested class and as the input's.
	KeepNull, KeepOwn, Reach, KeepOther []float64
	Took                                time.Duration
}

// MeasureSDEdit measures SDEdit on n test digits at the configured curve i_starts.
func (s *Session) MeasureSDEdit(n int) (*SDEditRates, error) {
	start := time.Now()
	images, labels, err := s.TestDigits(n, s.Session.Config.Seed+1)
	if err != nil {
		return nil, err
	}
	other := otherClasses(labels, s.Session.Config.Seed)
	uncond, err := s.Setup(1)
	if err != nil {
		return nil, err
	}
	guided, err := s.Setup(s.Config.Guidance)
	if err != nil {
		return nil, err
	}
	r := &SDEditRates{N: n, Starts: s.Config.CurveStarts}
	for _, st := range r.Starts {
		if st < 0 || st >= len(uncond.Grid)-1 {
			return nil, fmt.Errorf("editrun: i_start %d outside the %d strided steps", st, len(uncond.Grid)-1)
		}
		r.Times = append(r.Times, int(uncond.Grid[st]))
		res, err := uncond.SDEdit(images, nil, st)
		if err != nil {
			return nil, err
		}
		got, err := s.Classify(res.Images)
		if err != nil {
			return nil, err
		}
		r.KeepNull = append(r.KeepNull, share(got, labels))
		if res, err = guided.SDEdit(images, labels, st); err != nil {
			return nil, err
		}
		if got, err = s.Classify(res.Images); err != nil {
			return nil, err
		}
		r.KeepOwn = append(r.KeepOwn, share(got, labels))
		if res, err = guided.SDEdit(images, other, st); err != nil {
			return nil, err
		}
		if got, err = s.Classify(res.Images); err != nil {
			return nil, err
		}
		r.Reach, r.KeepOther = append(r.Reach, share(got, other)), append(r.KeepOther, share(got, labels))
	}
	r.Took = time.Since(start)
	return r, nil
}

// Figure plots the rates against i_start.
func (r *SDEditRates) Figure(guidance float64) ([]byte, error) {
	x := make([]float64, len(r.Starts))
	for i, s := range r.Starts {
		x[i] = float64(s)
	}
	return plot.Lines(plot.Options{Title: fmt.Sprintf("SDEdit of %d test digits (CFG %g): share classified as ...", r.N, guidance),
		XLabel: "i_start (strided index: larger = less noise)", YLabel: "share of digits", YMin: 0, YMax: 1.5},
		plot.Curve{Name: "unconditional: the input's class", X: x, Y: r.KeepNull},
		plot.Curve{Name: "guided to its own class: the input's class", X: x, Y: r.KeepOwn},
		plot.Curve{Name: "guided to another class: the requested class", X: x, Y: r.Reach},
		plot.Curve{Name: "guided to another class: the input's class", X: x, Y: r.KeepOther})
}

// Markdown is the table of the rates.
func (r *SDEditRates) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "SDEdit of %d test digits, share classified by the evaluator (%s):\n\n| i_start | t | unconditional: input's class | own class: input's class | other class: requested | other class: input's |\n|---:|---:|---:|---:|---:|---:|\n", r.N, r.Took.Round(time.Second))
	for i, st := range r.Starts {
		fmt.Fprintf(&b, "| %d | %d | %.2f | %.2f | %.2f | %.2f |\n", st, r.Times[i], r.KeepNull[i], r.KeepOwn[i], r.Reach[i], r.KeepOther[i])
	}
	return b.String()
}

// InpaintRates are the verdicts on inpainting N test digits with each mask: unconditionally
// (the share classified as the original) and guided to another class (the share classified
// as the requested class), and the largest change of a kept pixel (0: kept exactly).
type InpaintRates struct {
	N                  int
	Masks              []string
	Original, Reach    []float64
	MaxKeptChange      float64
	Took               time.Duration
	GeneratedFractions []float64
}

// MeasureInpaint measures inpainting on n test digits with every configured mask.
func (s *Session) MeasureInpaint(n int) (*InpaintRates, error) {
	start := time.Now()
	images, labels, err := s.TestDigits(n, s.Session.Config.Seed+2)
	if err != nil {
		return nil, err
	}
	other := otherClasses(labels, s.Session.Config.Seed)
	uncond, err := s.Setup(1)
	if err != nil {
		return nil, err
	}
	guided, err := s.Setup(s.Config.Guidance)
	if err != nil {
		return nil, err
	}
	r := &InpaintRates{N: n, Masks: s.Config.Masks}
	d := Shape.Size()
	for _, name := range r.Masks {
		mask, err := imageops.MaskByName(name, Shape)
		if err != nil {
			return nil, err
		}
		var gen float64
		for _, m := range mask {
			gen += float64(m)
		}
		r.GeneratedFractions = append(r.GeneratedFractions, gen/float64(d))
		res, err := uncond.Inpaint(images, mask, nil, 0)
		if err != nil {
			return nil, err
		}
		for j, v := range res.Images {
			if mask[j%d] == 0 {
				r.MaxKeptChange = math.Max(r.MaxKeptChange, math.Abs(float64(v-images[j])))
			}
		}
		got, err := s.Classify(res.Images)
		if err != nil {
			return nil, err
		}
		r.Original = append(r.Original, share(got, labels))
		if res, err = guided.Inpaint(images, mask, other, 0); err != nil {
			return nil, err
		}
		if got, err = s.Classify(res.Images); err != nil {
			return nil, err
		}
		r.Reach = append(r.Reach, share(got, other))
	}
	r.Took = time.Since(start)
	return r, nil
}

// Markdown is the table of the rates.
func (r *InpaintRates) Markdown(guidance float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Inpainting of %d test digits (%s; largest change of a kept pixel: %g):\n\n| mask | generated | unconditional: classified as the original | guided (CFG %g) to another class: classified as it |\n|---|---:|---:|---:|\n", r.N, r.Took.Round(time.Second), r.MaxKeptChange, guidance)
	for i, m := range r.Masks {
		fmt.Fprintf(&b, "| %s | %.0f%% | %.2f | %.2f |\n", m, 100*r.GeneratedFractions[i], r.Original[i], r.Reach[i])
	}
	return b.String()
}

// PairRate is the verdict on anagrams or hybrids of one pair at one guidance scale: the share
// of N samples read as A (upright, or blurred), as B (through the view, or up close), and as
// both.
type PairRate struct {
	Pair         Pair
	Scale        float64
	N            int
	A, B, Both   float64
	Took         time.Duration
	Kind, Viewed string
}

// MeasureAnagrams measures the configured anagram pairs at every configured guidance scale
// with Seeds samples each.
func (s *Session) MeasureAnagrams() ([]PairRate, error) {
	var out []PairRate
	for _, w := range s.Config.Scales {
		for _, pair := range s.Config.AnagramPairs {
			start := time.Now()
			imgs, view, err := s.Anagrams(pair, w, s.Config.Seeds)
			if err != nil {
				return nil, err
			}
			seen, err := view.Apply(imgs)
			if err != nil {
				return nil, err
			}
			r, err := s.pairRate(pair, w, imgs, seen)
			if err != nil {
				return nil, err
			}
			r.Kind, r.Viewed, r.Took = "anagram", s.Config.AnagramView, time.Since(start)
			out = append(out, r)
		}
	}
	return out, nil
}

// MeasureHybrids measures the configured hybrid pairs at every configured guidance scale
// with Seeds samples each: class A is read on the blurred image, class B on the image.
func (s *Session) MeasureHybrids() ([]PairRate, error) {
	var out []PairRate
	for _, w := range s.Config.Scales {
		for _, pair := range s.Config.HybridPairs {
			start := time.Now()
			imgs, err := s.Hybrids(pair, w, s.Config.Seeds)
			if err != nil {
				return nil, err
			}
			blurred, err := s.Config.HybridBlur.Apply(imgs, Shape)
			if err != nil {
				return nil, err
			}
			r, err := s.pairRate(pair, w, blurred, imgs)
			if err != nil {
				return nil, err
			}
			r.Kind, r.Viewed, r.Took = "hybrid", "blurred", time.Since(start)
			out = append(out, r)
		}
	}
	return out, nil
}

// pairRate classifies the A readings and the B readings of the same samples.
func (s *Session) pairRate(pair Pair, w float64, asA, asB []float32) (PairRate, error) {
	ga, err := s.Classify(asA)
	if err != nil {
		return PairRate{}, err
	}
	gb, err := s.Classify(asB)
	if err != nil {
		return PairRate{}, err
	}
	r := PairRate{Pair: pair, Scale: w, N: len(ga)}
	for i := range ga {
		a, b := ga[i] == pair.A, gb[i] == pair.B
		if a {
			r.A++
		}
		if b {
			r.B++
		}
		if a && b {
			r.Both++
		}
	}
	n := float64(r.N)
	r.A, r.B, r.Both = r.A/n, r.B/n, r.Both/n
	return r, nil
}

// PairMarkdown is the table of anagram or hybrid rates.
func PairMarkdown(rates []PairRate) string {
	if len(rates) == 0 {
		return ""
	}
	var b strings.Builder
	a, bb := "upright", rates[0].Viewed
	if rates[0].Kind == "hybrid" {
		a, bb = "blurred: low-pass class", "up close: high-pass class"
	} else {
		a, bb = "upright: first class", bb+": second class"
	}
	fmt.Fprintf(&b, "| %s pair | CFG | samples | %s | %s | both | time |\n|---|---:|---:|---:|---:|---:|---:|\n", rates[0].Kind, a, bb)
	for _, r := range rates {
		fmt.Fprintf(&b, "| %s | %g | %d | %.2f | %.2f | **%.2f** | %s |\n", r.Pair, r.Scale, r.N, r.A, r.B, r.Both, r.Took.Round(100*time.Millisecond))
	}
	return b.String()
}

// ScaleFigure plots the share read both ways against the guidance scale, one curve per pair.
func ScaleFigure(title string, rates []PairRate) ([]byte, error) {
	var curves []plot.Curve
	idx := map[Pair]int{}
	for _, r := range rates {
		k, ok := idx[r.Pair]
		if !ok {
			k = len(curves)
			idx[r.Pair] = k
			curves = append(curves, plot.Curve{Name: r.Pair.String()})
		}
		curves[k].X = append(curves[k].X, r.Scale)
		curves[k].Y = append(curves[k].Y, r.Both)
	}
	return plot.Lines(plot.Options{Title: title, XLabel: "classifier-free guidance scale", YLabel: "share read both ways", YMin: 0, YMax: 1.5}, curves...)
}
