package latent

import (
	"fmt"
	"image/color"
	"math"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/plot"
	"github.com/godiffusion/notebooks/diffusion/spiral"
)

// LossFigure plots the validation denoising loss of latent trainings (name -> history).
func LossFigure(names []string, hists []*spiral.History) ([]byte, error) {
	if len(names) != len(hists) || len(hists) == 0 {
		return nil, fmt.Errorf("latent.LossFigure: %d names for %d histories", len(names), len(hists))
	}
	var curves []plot.Curve
	for i, h := range hists {
		if h == nil {
			continue
		}
		c := plot.Curve{Name: names[i]}
		for j, st := range h.ValSteps {
			c.X = append(c.X, float64(st))
			c.Y = append(c.Y, h.ValDSM[j])
		}
		curves = append(curves, c)
	}
	if len(curves) == 0 {
		return nil, fmt.Errorf("latent.LossFigure: no histories")
	}
	return plot.Lines(plot.Options{Title: "Latent score networks: validation DSM loss", XLabel: "step", YLabel: "E|s + eps/sigma|^2 / 2",
		Width: 12 * vg.Centimeter, Height: 8 * vg.Centimeter}, curves...)
}

// xy returns the first two coordinates of latents (d values each).
func xy(z []float32, d int) [][2]float64 {
	out := make([][2]float64, 0, len(z)/d)
	for i := 0; i+d <= len(z); i += d {
		out = append(out, [2]float64{float64(z[i]), float64(z[i+1])})
	}
	return out
}

// LatentPanel is one generated set of LatentsFigure.
type LatentPanel struct {
	Title   string
	Samples *Samples
	// ByDigit colours the samples by their requested digit (conditional samples).
	ByDigit bool
}

// LatentsFigure draws generated latents over the encoder means of the test set (grey), one
// panel per set (the first two coordinates when d_z > 2).
func (s *Study) LatentsFigure(panels ...LatentPanel) ([]byte, error) {
	d := s.Latent()
	if d < 2 {
		return nil, fmt.Errorf("latent.LatentsFigure: needs d_z >= 2, the VAE has %d", d)
	}
	if len(panels) == 0 {
		return nil, fmt.Errorf("latent.LatentsFigure: no panels")
	}
	zt, err := s.VAE.Encode(s.Test.Images)
	if err != nil {
		return nil, err
	}
	data := plot.Points{Name: "test-set encoder means", XY: xy(zt, d), Color: color.RGBA{190, 190, 190, 255}, Radius: 0.6}
	var out []plot.Panel
	for _, p := range panels {
		if p.Samples == nil {
			return nil, fmt.Errorf("latent.LatentsFigure: panel %q has no samples", p.Title)
		}
		groups := []plot.Points{data}
		if p.ByDigit && p.Samples.Labels != nil {
			byDigit := make([]plot.Points, mnist.NumClasses)
			for k := range byDigit {
				byDigit[k] = plot.Points{Name: fmt.Sprint(k), Color: plot.Palette[k%len(plot.Palette)], Radius: 1.2}
			}
			pts := xy(p.Samples.Latents, d)
			for i, y := range p.Samples.Labels {
				byDigit[y].XY = append(byDigit[y].XY, pts[i])
			}
			groups = append(groups, byDigit...)
		} else {
			groups = append(groups, plot.Points{Name: "generated", XY: xy(p.Samples.Latents, d), Color: color.RGBA{214, 39, 40, 255}, Radius: 1.2})
		}
		out = append(out, plot.Panel{Title: p.Title, Groups: groups})
	}
	title := fmt.Sprintf("Generated latents (colour) over the test set's encoder means (grey), d_z = %d", d)
	if d > 2 {
		title += " (first 2 coordinates)"
	}
	width := 9 * vg.Centimeter
	if len(out) == 1 {
		width = 15 * vg.Centimeter
	}
	return plot.ScatterPanels(plot.Options{Title: title, Width: width}, len(out), out...)
}

// DigitGridFigure draws conditional samples in a grid of one row per digit (the samples'
// labels must be BalancedLabels: sample i is digit i % 10); cols samples per row.
func DigitGridFigure(smp *Samples, cols int, title string) ([]byte, error) {
	if smp == nil || smp.Labels == nil || cols < 1 || smp.N < cols*mnist.NumClasses {
		return nil, fmt.Errorf("latent.DigitGridFigure: needs >= %d conditional samples", cols*mnist.NumClasses)
	}
	px := mnist.Rows * mnist.Cols
	var imgs []float32
	labels := make([]string, mnist.NumClasses)
	for d := range mnist.NumClasses {
		labels[d] = fmt.Sprint(d)
		got := 0
		for i := 0; i < smp.N && got < cols; i++ {
			if smp.Labels[i] == d {
				imgs = append(imgs, smp.Images[i*px:(i+1)*px]...)
				got++
			}
		}
		if got < cols {
			return nil, fmt.Errorf("latent.DigitGridFigure: only %d samples of digit %d", got, d)
		}
	}
	split, err := plot.SplitImages(imgs, mnist.Rows, mnist.Cols)
	if err != nil {
		return nil, err
	}
	return plot.ImageGrid(split, plot.GridOptions{Height: mnist.Rows, Width: mnist.Cols, Rows: mnist.NumClasses, Cols: cols, Scale: 2, RowLabels: labels, Title: title})
}

// ImagesFigure draws the first rows*cols digits of a set in a grid (fewer rows when the set
// is smaller).
func ImagesFigure(smp *Samples, rows, cols int, title string) ([]byte, error) {
	px := mnist.Rows * mnist.Cols
	if smp == nil || rows < 1 || cols < 1 || smp.N < 1 {
		return nil, fmt.Errorf("latent.ImagesFigure: needs samples, rows >= 1 and cols >= 1")
	}
	n := min(smp.N, rows*cols)
	cols = min(cols, n)
	rows = (n + cols - 1) / cols
	split, err := plot.SplitImages(smp.Images[:n*px], mnist.Rows, mnist.Cols)
	if err != nil {
		return nil, err
	}
	return plot.ImageGrid(split, plot.GridOptions{Height: mnist.Rows, Width: mnist.Cols, Rows: rows, Cols: cols, Scale: 2, Title: title})
}

// SweepFigure plots the trade-off of a guidance sweep in one figure: the evaluator's accuracy
// (left) and the FID (right) against the guidance scale w, for one or more sweeps (name ->
// rows; e.g. d_z = 2 and d_z = 8).
func SweepFigure(names []string, sweeps [][]Row) ([]byte, error) {
	if len(names) != len(sweeps) || len(sweeps) == 0 {
		return nil, fmt.Errorf("latent.SweepFigure: %d names for %d sweeps", len(names), len(sweeps))
	}
	acc, fid := gplot.New(), gplot.New()
	acc.Title.Text, fid.Title.Text = "evaluator accuracy vs guidance", "FID vs guidance"
	acc.X.Label.Text, fid.X.Label.Text = "guidance scale w", "guidance scale w"
	acc.Y.Label.Text, fid.Y.Label.Text = "accuracy (requested digit)", "FID (evaluator features)"
	acc.Y.Min, acc.Y.Max = 0, 1.7 // room for the legend above the curves
	fidMax := 0.0
	for i, rows := range sweeps {
		var pa, pf, ma, mf plotter.XYs
		for _, r := range rows {
			if r.Classes == nil || math.IsNaN(r.Guidance) {
				continue
			}
			pa = append(pa, plotter.XY{X: r.Guidance, Y: r.Classes.Accuracy})
			pf = append(pf, plotter.XY{X: r.Guidance, Y: r.FID})
			fidMax = max(fidMax, r.FID)
			if r.Mode != nil && r.Mode.Classes != nil {
				fidMax = max(fidMax, r.Mode.FID)
				ma = append(ma, plotter.XY{X: r.Guidance, Y: r.Mode.Classes.Accuracy})
				mf = append(mf, plotter.XY{X: r.Guidance, Y: r.Mode.FID})
			}
		}
		if len(pa) == 0 {
			return nil, fmt.Errorf("latent.SweepFigure: sweep %q has no conditional rows", names[i])
		}
		for _, pp := range []struct {
			p    *gplot.Plot
			xys  plotter.XYs
			mode bool
		}{{acc, pa, false}, {fid, pf, false}, {acc, ma, true}, {fid, mf, true}} {
			if len(pp.xys) == 0 {
				continue
			}
			l, pts, err := plotter.NewLinePoints(pp.xys)
			if err != nil {
				return nil, fmt.Errorf("latent.SweepFigure: %w", err)
			}
			l.Color, pts.Color = plot.Palette[i%len(plot.Palette)], plot.Palette[i%len(plot.Palette)]
			l.Width = vg.Points(1.5)
			name := names[i] + ", mean images"
			if pp.mode {
				l.Dashes, pts.Shape, name = []vg.Length{vg.Points(5), vg.Points(3)}, draw.TriangleGlyph{}, names[i]+", mode images"
			}
			pp.p.Add(l, pts)
			pp.p.Legend.Add(name, l, pts)
		}
	}
	target, err := plotter.NewLine(plotter.XYs{{X: 0, Y: AccuracyTarget}, {X: maxGuidance(sweeps), Y: AccuracyTarget}})
	if err != nil {
		return nil, err
	}
	target.Color, target.Dashes = color.RGBA{127, 127, 127, 255}, []vg.Length{vg.Points(4), vg.Points(3)}
	acc.Add(target)
	acc.Legend.Add(fmt.Sprintf("target %.2f", AccuracyTarget), target)
	acc.Legend.Top, acc.Legend.Left = true, false
	acc.Add(plotter.NewGrid())
	fid.Add(plotter.NewGrid())
	fid.Legend.Top = true
	fid.Y.Min, fid.Y.Max = 0, 1.6*fidMax
	return plot.Tiles("Classifier-free guidance: accuracy against FID", [][]*gplot.Plot{{acc, fid}}, 11*vg.Centimeter, 9.5*vg.Centimeter)
}

func maxGuidance(sweeps [][]Row) float64 {
	m := 1.0
	for _, rows := range sweeps {
		for _, r := range rows {
			if !math.IsNaN(r.Guidance) {
				m = max(m, r.Guidance)
			}
		}
	}
	return m
}
