package editrun

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/godiffusion/notebooks/diffusion/edit"
	"github.com/godiffusion/notebooks/diffusion/imageops"
	"github.com/godiffusion/notebooks/diffusion/sampling"
)

// classes returns 0, 1, ..., n-1 modulo 10.
func classes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i % 10
	}
	return out
}

// SamplesFigure draws n digits (classes 0, 1, ... in turn) from pure noise with the same
// seeds three ways: unconditionally, conditionally without guidance, and with
// classifier-free guidance of the configured scale (5A 1.5-1.6).
func (s *Session) SamplesFigure(n int) ([]byte, error) {
	cond := classes(n)
	p := s.panel(fmt.Sprintf("Sampling from pure noise (%d strided steps), same seeds", len(cond)))
	p.title = fmt.Sprintf("Sampling from pure noise, same seeds; columns: the class asked")
	for _, c := range cond {
		p.colTitles = append(p.colTitles, fmt.Sprint(c))
	}
	for _, run := range []struct {
		label    string
		guidance float64
		cond     []int
	}{{"unconditional", 1, nil}, {"class, no CFG", 1, cond}, {fmt.Sprintf("class, CFG %g", s.Config.Guidance), s.Config.Guidance, cond}} {
		setup, err := s.Setup(run.guidance)
		if err != nil {
			return nil, err
		}
		res, err := setup.Sample(n, run.cond)
		if err != nil {
			return nil, err
		}
		var row [][]float32
		for i := range n {
			row = append(row, image(res.Images, i))
		}
		p.rows = append(p.rows, row)
		p.rowLabels = append(p.rowLabels, run.label)
	}
	return p.png()
}

// startTitle labels an i_start column with its time.
func startTitle(grid []float64, start int) string {
	return fmt.Sprintf("i=%d (t=%d)", start, int(grid[start]))
}

// SDEditAll runs SDEdit on the images (model pixel range) at every configured i_start under
// the conditions cond (one per image: its own class, sampling.Null, or another class for
// image-to-image) with classifier-free guidance; results[k] are the images of Starts[k].
func (s *Session) SDEditAll(images []float32, cond []int) ([][]float32, error) {
	setup, err := s.Setup(s.Config.Guidance)
	if err != nil {
		return nil, err
	}
	var out [][]float32
	for _, start := range s.Config.Starts {
		res, err := setup.SDEdit(images, cond, start)
		if err != nil {
			return nil, err
		}
		out = append(out, res.Images)
	}
	return out, nil
}

// SDEditFigure draws the results of SDEditAll one input per row: the input, then the result
// at each i_start, from the most noise to the least.
func (s *Session) SDEditFigure(images []float32, results [][]float32, rowLabels []string, title string) ([]byte, error) {
	n, err := Shape.Count(len(images))
	if err != nil {
		return nil, err
	}
	grid, err := s.Grid()
	if err != nil {
		return nil, err
	}
	if len(results) != len(s.Config.Starts) {
		return nil, fmt.Errorf("editrun: %d SDEdit results for %d i_starts", len(results), len(s.Config.Starts))
	}
	p := s.panel(title)
	p.rowLabels = rowLabels
	p.colTitles = []string{"input"}
	for _, start := range s.Config.Starts {
		p.colTitles = append(p.colTitles, startTitle(grid, start))
	}
	for i := range n {
		row := [][]float32{image(images, i)}
		for _, r := range results {
			row = append(row, image(r, i))
		}
		p.rows = append(p.rows, row)
	}
	return p.png()
}

// SDEditCell is SDEditAll and SDEditFigure in one call.
func (s *Session) SDEditCell(images []float32, cond []int, rowLabels []string, title string) ([]byte, error) {
	res, err := s.SDEditAll(images, cond)
	if err != nil {
		return nil, err
	}
	return s.SDEditFigure(images, res, rowLabels, title)
}

// InpaintWith inpaints the images where mask (one image's) is 1: unconditionally when cond
// is nil, else guided (CFG) to the conditions.
func (s *Session) InpaintWith(images, mask []float32, cond []int) ([]float32, error) {
	w := s.Config.Guidance
	if cond == nil {
		w = 1
	}
	setup, err := s.Setup(w)
	if err != nil {
		return nil, err
	}
	res, err := setup.Inpaint(images, mask, cond, 0)
	if err != nil {
		return nil, err
	}
	return res.Images, nil
}

// keptView returns the images with the generated region (mask 1) grey.
func (s *Session) keptView(images, mask []float32) []float32 {
	mid := (s.DDPM.PixelLo + s.DDPM.PixelHi) / 2
	out := slices.Clone(images)
	d := Shape.Size()
	for j := range out {
		if mask[j%d] == 1 {
			out[j] = mid
		}
	}
	return out
}

// InpaintResultFigure draws, one input per row, the input, its kept part and the result.
func (s *Session) InpaintResultFigure(images, mask, results []float32, rowLabels []string) ([]byte, error) {
	n, err := Shape.Count(len(images))
	if err != nil {
		return nil, err
	}
	kept := s.keptView(images, mask)
	p := s.panel("Inpainting (RePaint)")
	p.colTitles, p.rowLabels = []string{"input", "kept", "result"}, rowLabels
	for i := range n {
		p.rows = append(p.rows, [][]float32{image(images, i), image(kept, i), image(results, i)})
	}
	return p.png()
}

// otherClasses returns, for each label, a different class drawn from seed.
func otherClasses(labels []int, seed int64) []int {
	r := rand.New(rand.NewPCG(uint64(seed), 0x07e2))
	out := make([]int, len(labels))
	for i, a := range labels {
		out[i] = (a + 1 + r.IntN(9)) % 10
	}
	return out
}

// InpaintFigure inpaints the images with every configured mask, unconditionally and guided
// to another class, and draws for each image and mask: the input, the kept part (the
// generated region grey), the unconditional result and the result guided to the other
// class.
func (s *Session) InpaintFigure(images []float32, labels []int) ([]byte, error) {
	n, err := Shape.Count(len(images))
	if err != nil {
		return nil, err
	}
	uncond, guided, err := s.setups()
	if err != nil {
		return nil, err
	}
	other := otherClasses(labels, s.Session.Config.Seed)
	p := s.panel("Inpainting (RePaint)")
	p.colTitles = []string{"input", "kept", "unconditional", "to class"}
	for _, name := range s.Config.Masks {
		mask, err := imageops.MaskByName(name, Shape)
		if err != nil {
			return nil, err
		}
		ru, err := uncond.Inpaint(images, mask, nil, 0)
		if err != nil {
			return nil, err
		}
		rg, err := guided.Inpaint(images, mask, other, 0)
		if err != nil {
			return nil, err
		}
		kept := s.keptView(images, mask)
		for i := range n {
			p.rows = append(p.rows, [][]float32{image(images, i), image(kept, i), image(ru.Images, i), image(rg.Images, i)})
			p.rowLabels = append(p.rowLabels, fmt.Sprintf("%s, %d->%d", name, labels[i], other[i]))
		}
	}
	return p.png()
}

// Anagrams returns n visual anagrams of a pair (class A as is, class B seen through the
// pair's view, e.g. flipped) with guidance scale w, and the view.
func (s *Session) Anagrams(pair Pair, w float64, n int) ([]float32, imageops.Transform, error) {
	view, err := imageops.TransformByName(s.Config.viewOf(pair), Shape)
	if err != nil {
		return nil, view, err
	}
	id, _ := imageops.Identity(Shape)
	setup, err := s.Setup(w)
	if err != nil {
		return nil, view, err
	}
	if setup.Model, err = edit.Anagram(setup.Model, edit.View{Transform: id, Cond: pair.A}, edit.View{Transform: view, Cond: pair.B}); err != nil {
		return nil, view, err
	}
	res, err := setup.Sample(n, nil)
	if err != nil {
		return nil, view, err
	}
	return res.Images, view, nil
}

// Hybrids returns n hybrid images of a pair (class A in the low frequencies, class B in the
// high ones, split by the low-pass filter blur) with guidance scale w.
func (s *Session) Hybrids(pair Pair, blur imageops.Blur, w float64, n int) ([]float32, error) {
	setup, err := s.Setup(w)
	if err != nil {
		return nil, err
	}
	if setup.Model, err = edit.Hybrid(setup.Model, Shape, blur, pair.A, pair.B); err != nil {
		return nil, err
	}
	res, err := setup.Sample(n, nil)
	if err != nil {
		return nil, err
	}
	return res.Images, nil
}

// AnagramFigure draws k anagrams of every configured pair at the configured guidance: for
// each pair a row as generated and a row seen through the view.
func (s *Session) AnagramFigure(k int) ([]byte, error) {
	p := s.panel(fmt.Sprintf("Visual anagrams (CFG %g)", s.Config.Guidance))
	for _, pair := range s.Config.AnagramPairs {
		imgs, view, err := s.Anagrams(pair, s.Config.Guidance, k)
		if err != nil {
			return nil, err
		}
		seen, err := view.Apply(imgs)
		if err != nil {
			return nil, err
		}
		var up, fl [][]float32
		for i := range k {
			up, fl = append(up, image(imgs, i)), append(fl, image(seen, i))
		}
		p.rows = append(p.rows, up, fl)
		p.rowLabels = append(p.rowLabels, fmt.Sprintf("%d upright", pair.A), fmt.Sprintf("%d %s", pair.B, s.Config.viewOf(pair)))
	}
	return p.png()
}

// HybridFigure draws k hybrids of every configured pair at the configured guidance, for
// every low-pass filter of the study (a group of k columns each): for each pair a row as
// generated (the high-pass class up close) and a row blurred by the filter (the low-pass
// class from afar).
func (s *Session) HybridFigure(k int) ([]byte, error) {
	p := s.panel(fmt.Sprintf("Hybrid images (CFG %g)", s.Config.Guidance))
	blurs := s.Config.HybridBlurs()
	for _, b := range blurs {
		for i := range k {
			title := ""
			if i == 0 {
				title = fmt.Sprintf("sigma %g", b.Sigma)
			}
			p.colTitles = append(p.colTitles, title)
		}
	}
	for _, pair := range s.Config.HybridPairs {
		var up, bl [][]float32
		for _, b := range blurs {
			imgs, err := s.Hybrids(pair, b, s.Config.Guidance, k)
			if err != nil {
				return nil, err
			}
			blurred, err := b.Apply(imgs, Shape)
			if err != nil {
				return nil, err
			}
			for i := range k {
				up, bl = append(up, image(imgs, i)), append(bl, image(blurred, i))
			}
		}
		p.rows = append(p.rows, up, bl)
		p.rowLabels = append(p.rowLabels, fmt.Sprintf("%d up close", pair.B), fmt.Sprintf("%d blurred", pair.A))
	}
	return p.png()
}

// nullConds returns n Null conditions.
func nullConds(n int) []int { return slices.Repeat([]int{sampling.Null}, n) }
