package editrun

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/godiffusion/notebooks/diffusion/edit"
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
	// guided to it (KeepOwn only with Config.CurveOwnClass); Reach and KeepOther: guided to another class, the share classified as the
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
	uncond, guided, err := s.setups()
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
		if s.Config.CurveOwnClass {
			if res, err = guided.SDEdit(images, labels, st); err != nil {
				return nil, err
			}
			if got, err = s.Classify(res.Images); err != nil {
				return nil, err
			}
			r.KeepOwn = append(r.KeepOwn, share(got, labels))
		}
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
	curves := []plot.Curve{{Name: "unconditional: the input's class", X: x, Y: r.KeepNull},
		{Name: "guided to another class: the requested class", X: x, Y: r.Reach},
		{Name: "guided to another class: the input's class", X: x, Y: r.KeepOther}}
	if r.KeepOwn != nil {
		curves = append(curves, plot.Curve{Name: "guided to its own class: the input's class", X: x, Y: r.KeepOwn})
	}
	return plot.Lines(plot.Options{Title: fmt.Sprintf("SDEdit of %d test digits (CFG %g): share classified as ...", r.N, guidance),
		XLabel: "i_start (strided index: larger = less noise)", YLabel: "share of digits", YMin: 0, YMax: 1.5}, curves...)
}

// Markdown is the table of the rates.
func (r *SDEditRates) Markdown() string {
	var b strings.Builder
	own, sep := "", ""
	if r.KeepOwn != nil {
		own, sep = " own class: input's class |", "---:|"
	}
	fmt.Fprintf(&b, "SDEdit of %d test digits, share classified by the evaluator (%s):\n\n| i_start | t | unconditional: input's class |%s other class: requested | other class: input's |\n|---:|---:|---:|%s---:|---:|\n", r.N, r.Took.Round(time.Second), own, sep)
	for i, st := range r.Starts {
		o := ""
		if r.KeepOwn != nil {
			o = fmt.Sprintf(" %.2f |", r.KeepOwn[i])
		}
		fmt.Fprintf(&b, "| %d | %d | %.2f |%s %.2f | %.2f |\n", st, r.Times[i], r.KeepNull[i], o, r.Reach[i], r.KeepOther[i])
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
	uncond, guided, err := s.setups()
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
	Blur         imageops.Blur // hybrids: the low-pass filter
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
			r.Kind, r.Viewed, r.Took = "anagram", s.Config.viewOf(pair), time.Since(start)
			out = append(out, r)
		}
	}
	return out, nil
}

// MeasureHybrids measures the configured hybrid pairs with Seeds samples each, with
// HybridBlur at every configured guidance scale and with the stronger filters of
// HybridSigmas at Guidance: class A is read on the image low-passed by its filter, class B
// on the image.
func (s *Session) MeasureHybrids() ([]PairRate, error) {
	var out []PairRate
	for k, b := range s.Config.HybridBlurs() {
		scales := s.Config.Scales
		if k > 0 {
			scales = []float64{s.Config.Guidance}
		}
		for _, w := range scales {
			for _, pair := range s.Config.HybridPairs {
				start := time.Now()
				imgs, err := s.Hybrids(pair, b, w, s.Config.Seeds)
				if err != nil {
					return nil, err
				}
				blurred, err := b.Apply(imgs, Shape)
				if err != nil {
					return nil, err
				}
				r, err := s.pairRate(pair, w, blurred, imgs)
				if err != nil {
					return nil, err
				}
				r.Kind, r.Viewed, r.Blur, r.Took = "hybrid", "blurred", b, time.Since(start)
				out = append(out, r)
			}
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
	if rates[0].Kind == "hybrid" {
		b.WriteString("| hybrid pair (low/high) | low-pass filter | CFG | samples | blurred: low-pass class | up close: high-pass class | both | time |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	} else {
		b.WriteString("| anagram pair | second view | CFG | samples | upright: first class | through the view: second class | both | time |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	}
	for _, r := range rates {
		second := r.Viewed
		if r.Kind == "hybrid" {
			second = fmt.Sprintf("kernel %d, sigma %g", r.Blur.Kernel, r.Blur.Sigma)
		}
		fmt.Fprintf(&b, "| %d/%d | %s | %g | %d | %.2f | %.2f | **%.2f** | %s |\n", r.Pair.A, r.Pair.B, second, r.Scale, r.N, r.A, r.B, r.Both, r.Took.Round(100*time.Millisecond))
	}
	return b.String()
}

// ScaleFigure plots the share read both ways against the guidance scale, one curve per pair
// (and hybrid filter: only the filters measured at more than one scale are drawn).
func ScaleFigure(title string, rates []PairRate) ([]byte, error) {
	var curves []plot.Curve
	type key struct {
		p Pair
		b imageops.Blur
	}
	idx := map[key]int{}
	for _, r := range rates {
		k, ok := idx[key{r.Pair, r.Blur}]
		if !ok {
			k = len(curves)
			idx[key{r.Pair, r.Blur}] = k
			name := r.Pair.String()
			if r.Kind == "anagram" {
				name = fmt.Sprintf("%d/%d %s", r.Pair.A, r.Pair.B, r.Viewed)
			}
			curves = append(curves, plot.Curve{Name: name})
		}
		curves[k].X = append(curves[k].X, r.Scale)
		curves[k].Y = append(curves[k].Y, r.Both)
	}
	var drawn []plot.Curve
	for _, c := range curves {
		if len(c.X) > 1 {
			drawn = append(drawn, c)
		}
	}
	if len(drawn) == 0 {
		drawn = curves
	}
	return plot.Lines(plot.Options{Title: title, XLabel: "classifier-free guidance scale", YLabel: "share read both ways", YMin: 0, YMax: 1.5}, drawn...)
}

// setups returns the unguided setup (conditional model, or unconditional with Null
// conditions) and the setup guided with the configured scale.
func (s *Session) setups() (uncond, guided edit.Setup, err error) {
	if uncond, err = s.Setup(1); err != nil {
		return
	}
	guided, err = s.Setup(s.Config.Guidance)
	return
}
