package editrun

import (
	"fmt"

	"github.com/godiffusion/notebooks/diffusion/plot"
)

// panel is a figure of images in rows and columns (the model's pixel range).
type panel struct {
	title      string
	rowLabels  []string
	colTitles  []string
	rows       [][][]float32
	lo, hi     float32
	scale      int
	fontSize   float64
	labelWidth int
}

// image returns image i of a flat batch of digits.
func image(batch []float32, i int) []float32 {
	d := Shape.Size()
	return batch[i*d : (i+1)*d]
}

// png renders the panel.
func (p panel) png() ([]byte, error) {
	var imgs [][]float32
	cols := 0
	for _, r := range p.rows {
		cols = max(cols, len(r))
	}
	for _, r := range p.rows {
		for c := range cols {
			if c < len(r) && r[c] != nil {
				imgs = append(imgs, r[c])
			} else {
				imgs = append(imgs, make([]float32, Shape.Size())) // blank: the low value
				for j := range imgs[len(imgs)-1] {
					imgs[len(imgs)-1][j] = p.lo
				}
			}
		}
	}
	scale := p.scale
	if scale == 0 {
		scale = 3
	}
	return plot.ImageGrid(imgs, plot.GridOptions{Height: 28, Width: 28, Rows: len(p.rows), Cols: cols,
		Min: float64(p.lo), Max: float64(p.hi), Scale: scale, Title: p.title, RowLabels: p.rowLabels, ColTitles: p.colTitles, FontSize: p.fontSize})
}

func (s *Session) panel(title string) panel {
	return panel{title: title, lo: s.DDPM.PixelLo, hi: s.DDPM.PixelHi}
}

// ForwardFigure draws, for each shown digit, the digit noised to each noise level, its best
// Gaussian blur and the model's one-step estimate (5A 1.1-1.3).
func (s *Session) ForwardFigure(d *DenoiseStudy, shown int) ([]byte, error) {
	p := s.panel("Forward process, Gaussian blur and one-step denoising")
	p.colTitles = []string{"digit"}
	for _, t := range d.Times {
		p.colTitles = append(p.colTitles, fmt.Sprintf("t=%d", t), "blur", "one step")
	}
	for i := range min(shown, len(d.Labels)) {
		row := [][]float32{image(d.Clean, i)}
		for k := range d.Times {
			row = append(row, image(d.Noisy[k], i), image(d.Blurred[k], i), image(d.OneStep[k], i))
		}
		p.rows = append(p.rows, row)
	}
	return p.png()
}

// IterativeFigure draws the frames of iterative denoising (every FrameEvery steps from
// i_start), one digit per row, then the comparison of 5A 1.4: the clean digit, the noisy
// start, the iterative result, the one-step estimate and the best blur.
func (s *Session) IterativeFigure(d *DenoiseStudy, shown int) ([]byte, error) {
	p := s.panel(fmt.Sprintf("Iterative denoising from i_start = %d (t = %d), every %d strided steps", d.IterStart, d.IterT, s.Config.FrameEvery))
	for _, t := range d.Iter.FrameTimes {
		p.colTitles = append(p.colTitles, timeTitle(t))
	}
	p.colTitles = append(p.colTitles, "clean", "one step", "blur")
	for i := range min(shown, len(d.Labels)) {
		var row [][]float32
		for _, f := range d.Iter.Frames {
			row = append(row, image(f, i))
		}
		row = append(row, image(d.Clean, i), image(d.IterOneStep, i), image(d.IterBlurred, i))
		p.rows = append(p.rows, row)
	}
	return p.png()
}

// timeTitle labels a strided time step (the clean end -1 is "result").
func timeTitle(t float64) string {
	if t < 0 {
		return "result"
	}
	return fmt.Sprintf("t=%d", int(t))
}
