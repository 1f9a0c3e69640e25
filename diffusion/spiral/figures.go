package spiral

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	dplot "github.com/godiffusion/notebooks/diffusion/plot"
	"github.com/godiffusion/notebooks/diffusion/sampling"
)

// View is the square of the figures: [-View, View]^2 (the spiral reaches radius 2; noise 3).
const View = 3.0

// points converts flat points to plot points.
func points(x []float32) [][2]float64 {
	out := make([][2]float64, len(x)/Dim)
	for i := range out {
		out[i] = [2]float64{float64(x[2*i]), float64(x[2*i+1])}
	}
	return out
}

var sampleColor = color.RGBA{31, 119, 180, 255}

func panelOpts(title string) dplot.Options {
	return dplot.Options{Title: title, XMin: -View, XMax: View, YMin: -View, YMax: View, Width: 5 * vg.Centimeter}
}

// ForwardFigure shows the K-step forward diffusion: n samples of the exact marginal p_k at
// the steps ks (drawn as alpha_k x0 + sigma_k eps from p0 samples), over the contours'
// stand-in, the component means alpha_k mu_m.
func (s *Study) ForwardFigure(ks []int, n int) ([]byte, error) {
	if len(ks) == 0 {
		return nil, errors.New("spiral.ForwardFigure: no steps")
	}
	x0 := s.P0(n, 10)
	rng := rand.New(rand.NewPCG(uint64(s.Config.Seed), 0xf0))
	z := make([]float32, len(x0))
	for i := range z {
		z[i] = float32(rng.NormFloat64())
	}
	var panels []dplot.Panel
	for _, k := range ks {
		if k < 0 || k > s.Config.K {
			return nil, fmt.Errorf("spiral.ForwardFigure: step %d outside [0, %d]", k, s.Config.K)
		}
		t := float64(k) / float64(s.Config.K)
		xt, err := sampling.Forward(s.Config.Process.VPSDE(), x0, z, t)
		if err != nil {
			return nil, err
		}
		a, sg, _ := s.Config.Process.Scales(t)
		g := s.Mixture.At(a, sg)
		panels = append(panels, dplot.Panel{Title: fmt.Sprintf("k = %d (abar %.3g)", k, a*a), Groups: []dplot.Points{
			{Name: "x_k", XY: points(xt), Color: sampleColor},
			{Name: "sqrt(abar) mu_m", XY: g.Means, Color: color.RGBA{214, 39, 40, 255}, Radius: vg.Points(2)},
		}})
	}
	return dplot.ScatterPanels(panelOpts(fmt.Sprintf("Forward diffusion of p0 over K = %d steps (%d samples)", s.Config.K, n)), len(ks), panels...)
}

// SnapshotsFigure shows the samples of a sampler run at its snapshot steps (in the order of
// ks), one panel each.
func SnapshotsFigure(title string, run *SampleRun, ks []int) ([]byte, error) {
	if run == nil || len(ks) == 0 {
		return nil, errors.New("spiral.SnapshotsFigure: no run or no steps")
	}
	var panels []dplot.Panel
	for _, k := range ks {
		x, ok := run.Snapshots[k]
		if !ok {
			return nil, fmt.Errorf("spiral.SnapshotsFigure: the run has no snapshot at k = %d", k)
		}
		panels = append(panels, dplot.Panel{Title: fmt.Sprintf("k = %d", k), Groups: []dplot.Points{{XY: points(x), Color: sampleColor}}})
	}
	return dplot.ScatterPanels(panelOpts(title), len(ks), panels...)
}

// SetsFigure shows point sets side by side, one panel each, with the same axes.
func SetsFigure(title string, names []string, sets [][]float32) ([]byte, error) {
	if len(names) != len(sets) || len(sets) == 0 {
		return nil, fmt.Errorf("spiral.SetsFigure: %d names for %d sets", len(names), len(sets))
	}
	var panels []dplot.Panel
	for i, x := range sets {
		panels = append(panels, dplot.Panel{Title: names[i], Groups: []dplot.Points{{XY: points(x), Color: sampleColor}}})
	}
	return dplot.ScatterPanels(panelOpts(title), len(sets), panels...)
}

// quiver is a gonum plotter drawing arrows (x, y) -> (x, y) + (u, v).
type quiver struct {
	x, y, u, v []float64
	color      color.Color
}

// Plot draws the arrows with small heads.
func (q quiver) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	sty := draw.LineStyle{Color: q.color, Width: vg.Points(0.7)}
	for i := range q.x {
		x0, y0 := trX(q.x[i]), trY(q.y[i])
		x1, y1 := trX(q.x[i]+q.u[i]), trY(q.y[i]+q.v[i])
		dx, dy := float64(x1-x0), float64(y1-y0)
		l := math.Hypot(dx, dy)
		if l < 0.3 {
			continue
		}
		c.StrokeLine2(sty, x0, y0, x1, y1)
		head := math.Min(3, 0.35*l)
		ang := math.Atan2(dy, dx)
		for _, da := range []float64{2.6, -2.6} {
			c.StrokeLine2(sty, x1, y1, x1+vg.Length(head*math.Cos(ang+da)), y1+vg.Length(head*math.Sin(ang+da)))
		}
	}
}

// DataRange implements plot.DataRanger.
func (q quiver) DataRange() (xmin, xmax, ymin, ymax float64) { return -View, View, -View, View }

// Field is one score field of a quiver figure.
type Field struct {
	Name  string
	Model sampling.Model // predicts sampling.Score
}

// QuiverFigure draws the score fields (rows) at the times ts (columns) on a grid of g x g
// points of [-View, View]^2: each arrow points along the score, full length at and above the
// median magnitude of the time's fields, shorter (sqrt) below it, so that the zeros of the
// field (the modes) show; the same scale for every row of a column. The red dots are the
// means of the marginal's components (when a field is the Exact score).
func QuiverFigure(title string, fields []Field, ts []float64, g int) ([]byte, error) {
	if len(fields) == 0 || len(ts) == 0 || g < 2 {
		return nil, errors.New("spiral.QuiverFigure: need fields, times and a grid of >= 2 points per axis")
	}
	xs := make([]float32, 0, 2*g*g)
	for i := range g {
		for j := range g {
			xs = append(xs, float32(-View+2*View*(float64(j)+0.5)/float64(g)), float32(-View+2*View*(float64(i)+0.5)/float64(g)))
		}
	}
	spacing := 2 * View / float64(g)
	plots := make([][]*plot.Plot, len(fields))
	for r := range plots {
		plots[r] = make([]*plot.Plot, len(ts))
	}
	for c, t := range ts {
		tt := make([]float64, g*g)
		for i := range tt {
			tt[i] = t
		}
		scores := make([][]float32, len(fields))
		var mags []float64
		for r, f := range fields {
			if f.Model == nil {
				return nil, fmt.Errorf("spiral.QuiverFigure: %s has no model", f.Name)
			}
			if f.Model.Predicts() != sampling.Score {
				return nil, fmt.Errorf("spiral.QuiverFigure: %s predicts %s, not a score", f.Name, f.Model.Predicts())
			}
			s, err := f.Model.Predict(xs, tt, nil)
			if err != nil {
				return nil, fmt.Errorf("spiral.QuiverFigure: %s: %w", f.Name, err)
			}
			scores[r] = s
			for i := range g * g {
				mags = append(mags, math.Hypot(float64(s[2*i]), float64(s[2*i+1])))
			}
		}
		slices.Sort(mags)
		ref := mags[len(mags)/2] // the median magnitude of this time's fields
		a, sg, err := procOf(fields).Scales(t)
		if err != nil {
			return nil, err
		}
		for r, f := range fields {
			q := quiver{color: color.RGBA{31, 119, 180, 255}}
			for i := range g * g {
				u, v := float64(scores[r][2*i]), float64(scores[r][2*i+1])
				m := math.Hypot(u, v)
				if !(m > 0) || math.IsInf(m, 0) {
					continue
				}
				l := 0.9 * spacing * math.Min(1, math.Sqrt(m/ref))
				q.x, q.y = append(q.x, float64(xs[2*i])), append(q.y, float64(xs[2*i+1]))
				q.u, q.v = append(q.u, u/m*l), append(q.v, v/m*l)
			}
			p := plot.New()
			p.Title.Text = fmt.Sprintf("%s, t = %.2g", f.Name, t)
			p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = -View, View, -View, View
			p.Add(q)
			if mix := mixOf(fields); mix != nil {
				if err := addMeans(p, mix.At(a, sg).Means); err != nil {
					return nil, err
				}
			}
			plots[r][c] = p
		}
	}
	return tiles(title, plots, 5.5*vg.Centimeter)
}

// tiles renders a grid of gonum plots of size cell each, with a title, to PNG.
func tiles(title string, plots [][]*plot.Plot, cell vg.Length) ([]byte, error) {
	png, err := dplot.Tiles(title, plots, cell, cell)
	if err != nil {
		return nil, fmt.Errorf("spiral: %w", err)
	}
	return png, nil
}

// LossFigure plots the training loss (a moving average) and the validation Hyvarinen loss of
// each history, with the exact score's validation loss, the minimum.
func LossFigure(names []string, hists []*History) ([]byte, error) {
	if len(names) != len(hists) || len(hists) == 0 {
		return nil, fmt.Errorf("spiral.LossFigure: %d names for %d histories", len(names), len(hists))
	}
	var curves []dplot.Curve
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, h := range hists {
		if h == nil || len(h.ValSteps) == 0 {
			return nil, fmt.Errorf("spiral.LossFigure: %s has no validation losses", names[i])
		}
		xs := make([]float64, len(h.ValSteps))
		for j, s := range h.ValSteps {
			xs[j] = float64(s)
		}
		curves = append(curves, dplot.Curve{Name: names[i] + ": val. Hyvarinen loss", X: xs, Y: h.ValHyvarinen})
		lo, hi = math.Min(lo, slices.Min(h.ValHyvarinen)), math.Max(hi, slices.Max(h.ValHyvarinen))
		lo = math.Min(lo, h.ExactHyvarinen)
	}
	last := float64(hists[0].ValSteps[len(hists[0].ValSteps)-1])
	curves = append(curves, dplot.Curve{Name: fmt.Sprintf("exact score (%.3f)", hists[0].ExactHyvarinen), X: []float64{0, last}, Y: []float64{hists[0].ExactHyvarinen, hists[0].ExactHyvarinen}})
	hi = math.Min(hi, lo+4*(math.Abs(lo)+1))
	return dplot.Lines(dplot.Options{Title: "Validation Hyvarinen loss (unweighted, t ~ U[1/K, 1])",
		XLabel: "step", YLabel: "loss", YMin: lo - 0.2, YMax: hi + 0.2}, curves...)
}

// TrainLossFigure plots the training objective of each history (moving average over window
// steps).
func TrainLossFigure(names []string, hists []*History, window int) ([]byte, error) {
	if len(names) != len(hists) || len(hists) == 0 {
		return nil, fmt.Errorf("spiral.TrainLossFigure: %d names for %d histories", len(names), len(hists))
	}
	window = max(1, window)
	var curves []dplot.Curve
	for i, h := range hists {
		var xs, ys []float64
		sum := 0.0
		for j, l := range h.TrainLoss {
			sum += l
			if j >= window {
				sum -= h.TrainLoss[j-window]
			}
			if j+1 >= window {
				xs, ys = append(xs, float64(j+1)), append(ys, sum/float64(window))
			}
		}
		curves = append(curves, dplot.Curve{Name: fmt.Sprintf("%s (%s weighting)", names[i], h.Config.Weighting), X: xs, Y: ys})
	}
	return dplot.Lines(dplot.Options{Title: fmt.Sprintf("Training objectives (moving average of %d steps)", window), XLabel: "step", YLabel: "loss"}, curves...)
}

// FieldTimes are the times of the score-field figures (the exam shows t = 0.5 among others).
var FieldTimes = []float64{0.02, 0.1, 0.5, 0.9}

// SnapshotSteps returns the steps k of the snapshot figures: K, 3K/4, K/2, K/4, K/10, K/20, 0.
func SnapshotSteps(K int) []int {
	var out []int
	for _, f := range []float64{1, 0.75, 0.5, 0.25, 0.1, 0.05, 0} {
		k := int(math.Round(f * float64(K)))
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// SamplesFigure shows the sample sets side by side (four per row).
func SamplesFigure(sets []NamedSet) ([]byte, error) {
	if len(sets) == 0 {
		return nil, errors.New("spiral.SamplesFigure: no sets")
	}
	var panels []dplot.Panel
	for _, s := range sets {
		panels = append(panels, dplot.Panel{Title: s.Name, Groups: []dplot.Points{{XY: points(s.Points), Color: sampleColor}}})
	}
	o := panelOpts("Samples of every sampler")
	o.Width = 7 * vg.Centimeter
	return dplot.ScatterPanels(o, 4, panels...)
}

// mixOf returns the mixture of the first Exact field, or nil.
func mixOf(fields []Field) *Mixture {
	for _, f := range fields {
		if e, ok := f.Model.(Exact); ok {
			return e.Mixture
		}
	}
	return nil
}

// procOf returns the process of the first Exact or *Net field (DefaultProcess otherwise).
func procOf(fields []Field) Process {
	for _, f := range fields {
		switch m := f.Model.(type) {
		case Exact:
			return m.Process
		case *Net:
			return m.Process
		}
	}
	return DefaultProcess()
}

// addMeans draws the component means as small red dots.
func addMeans(p *plot.Plot, means [][2]float64) error {
	xys := make(plotter.XYs, len(means))
	for i, m := range means {
		xys[i] = plotter.XY{X: m[0], Y: m[1]}
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	s.GlyphStyle.Shape = draw.CircleGlyph{}
	s.GlyphStyle.Radius = vg.Points(1.5)
	s.GlyphStyle.Color = color.RGBA{214, 39, 40, 255}
	p.Add(s)
	return nil
}
