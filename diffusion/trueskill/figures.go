package trueskill

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"time"

	dplot "github.com/godiffusion/notebooks/diffusion/plot"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// gTicks are gonum's default ticks labelled without trailing zeros.
type gTicks struct{}

// Ticks implements plot.Ticker.
func (gTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', 6, 64)
		}
	}
	return ticks
}

func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xlabel, ylabel
	p.X.Tick.Marker, p.Y.Tick.Marker = gTicks{}, gTicks{}
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

func renderPNG(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	png, err := dplot.PNG(p, w, h)
	if err != nil {
		return nil, fmt.Errorf("trueskill: figure: %w", err)
	}
	return png, nil
}

// renderRow draws plots side by side, each w x h, and returns the PNG.
func renderRow(w, h vg.Length, plots ...*plot.Plot) ([]byte, error) {
	png, err := dplot.Tiles("", [][]*plot.Plot{plots}, w, h)
	if err != nil {
		return nil, fmt.Errorf("trueskill: figure: %w", err)
	}
	return png, nil
}

func colour(i int) color.RGBA { return dplot.Palette[i%len(dplot.Palette)] }

func addLine(p *plot.Plot, name string, xs, ys []float64, c color.Color, width float64, dashed bool) error {
	xy := make(plotter.XYs, len(xs))
	for i := range xs {
		xy[i] = plotter.XY{X: xs[i], Y: ys[i]}
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return fmt.Errorf("trueskill: figure: %w", err)
	}
	l.Color, l.Width = c, vg.Points(width)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	p.Add(l)
	if name != "" {
		p.Legend.Add(name, l)
	}
	return nil
}

func gaussianCurve(g Gaussian, lo, hi float64, n int) ([]float64, []float64) {
	xs, ys := make([]float64, n), make([]float64, n)
	for i := range xs {
		xs[i] = lo + (hi-lo)*float64(i)/float64(n-1)
		ys[i] = g.Density(xs[i])
	}
	return xs, ys
}

func indices(n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = float64(i)
	}
	return x
}

// TraceFigure plots the chains of s1 and s2 of a Gibbs run with its burn-in marked;
// only the first maxIter iterations are drawn (0: all).
func TraceFigure(g *GibbsResult, maxIter int) ([]byte, error) {
	n := len(g.S1)
	if maxIter > 0 && maxIter < n {
		n = maxIter
	}
	if n == 0 {
		return nil, errors.New("trueskill: trace of an empty chain")
	}
	p := newPlot(fmt.Sprintf("Gibbs sampler: trace (burn-in %d of %d iterations shown)", g.BurnIn, n), "iteration", "skill")
	x := indices(n + 1) // iteration 0 is the start
	y1 := append([]float64{g.Start[0]}, g.S1[:n]...)
	y2 := append([]float64{g.Start[1]}, g.S2[:n]...)
	if err := addLine(p, "s1", x, y1, colour(0), 0.8, false); err != nil {
		return nil, err
	}
	if err := addLine(p, "s2", x, y2, colour(1), 0.8, false); err != nil {
		return nil, err
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range y1 {
		lo, hi = math.Min(lo, math.Min(y1[i], y2[i])), math.Max(hi, math.Max(y1[i], y2[i]))
	}
	p.Y.Min, p.Y.Max = lo, hi+0.25*(hi-lo) // room for the legend
	b := float64(g.BurnIn)
	if err := addLine(p, "end of burn-in", []float64{b, b}, []float64{lo, hi}, color.Black, 1.2, true); err != nil {
		return nil, err
	}
	return renderPNG(p, 16*vg.Centimeter, 8*vg.Centimeter)
}

// histogram adds a density-normalised histogram of x.
func histogram(p *plot.Plot, name string, x []float64, bins int, c color.RGBA) error {
	h, err := plotter.NewHist(plotter.Values(x), bins)
	if err != nil {
		return fmt.Errorf("trueskill: histogram: %w", err)
	}
	h.Normalize(1)
	h.FillColor = color.NRGBA{c.R, c.G, c.B, 90}
	h.LineStyle.Width = 0
	p.Add(h)
	p.Legend.Add(name, h)
	return nil
}

// HistogramFigure plots the post-burn-in samples of s1 and s2 as histograms with the
// Gaussians fitted to them (their sample mean and variance), one panel each.
func HistogramFigure(g *GibbsResult) ([]byte, error) {
	s1, s2 := g.Kept(0)
	q1, q2 := g.Posterior(0)
	var plots []*plot.Plot
	for i, d := range []struct {
		name string
		x    []float64
		q    Gaussian
	}{{"s1", s1, q1}, {"s2", s2, q2}} {
		p := newPlot(fmt.Sprintf("%s: %d Gibbs samples after burn-in", d.name, len(d.x)), d.name, "density")
		if err := histogram(p, "samples", d.x, 40, colour(i)); err != nil {
			return nil, err
		}
		xs, ys := gaussianCurve(d.q, d.q.Mean-4.5*d.q.SD(), d.q.Mean+4.5*d.q.SD(), 200)
		if err := addLine(p, "fitted "+d.q.String(), xs, ys, colour(i), 2, false); err != nil {
			return nil, err
		}
		p.X.Min, p.X.Max = xs[0], xs[len(xs)-1]
		p.Y.Min, p.Y.Max = 0, 1.45*d.q.Density(d.q.Mean) // room for the legend
		plots = append(plots, p)
	}
	return renderRow(8.5*vg.Centimeter, 8*vg.Centimeter, plots...)
}

// CompareFigure shows the posteriors of s1 and s2 of one match by the three methods,
// one panel each: Gibbs samples (histograms), message passing (EP Gaussians) and the
// exact marginals (grid integration); the title of each gives the time each took.
func CompareFigure(g *GibbsResult, ep *Messages, exact *GridPosterior) ([]byte, error) {
	s1, s2 := g.Kept(0)
	var plots []*plot.Plot
	for i, d := range []struct {
		name       string
		x          []float64
		q          Gaussian
		grid, marg []float64
	}{{"s1", s1, ep.Post1, exact.S1, exact.Marg1}, {"s2", s2, ep.Post2, exact.S2, exact.Marg2}} {
		p := newPlot(fmt.Sprintf("%s: Gibbs %s, EP %s, exact %s", d.name, g.Duration.Round(time.Microsecond), ep.Duration.Round(10*time.Nanosecond), exact.Duration.Round(time.Microsecond)), d.name, "density")
		if err := histogram(p, fmt.Sprintf("Gibbs, %d samples", len(d.x)), d.x, 40, colour(i)); err != nil {
			return nil, err
		}
		lo, hi := d.q.Mean-4.5*d.q.SD(), d.q.Mean+4.5*d.q.SD()
		xs, ys := gaussianCurve(d.q, lo, hi, 200)
		if err := addLine(p, "EP "+d.q.String(), xs, ys, colour(i), 2.5, false); err != nil {
			return nil, err
		}
		if err := addLine(p, "exact (grid)", d.grid, d.marg, color.Black, 1.2, true); err != nil {
			return nil, err
		}
		p.X.Min, p.X.Max = lo, hi
		p.Y.Min, p.Y.Max = 0, 1.45*d.q.Density(d.q.Mean) // room for the legend
		plots = append(plots, p)
	}
	return renderRow(8.5*vg.Centimeter, 8*vg.Centimeter, plots...)
}

// ShuffleFigure shows the final rank of every team (ordered by its rank in the order
// played) under each random order of the matches.
func ShuffleFigure(st *ShuffleStudy, title string) ([]byte, error) {
	if len(st.BaseRanks) == 0 {
		return nil, errors.New("trueskill: shuffle figure of no teams")
	}
	p := newPlot(title, "team, by its rank in the order played", "rank after ADF")
	p.Legend.Left = true
	var pts plotter.XYs
	for k, rk := range st.Ranks {
		for i, r := range rk {
			jitter := 0.3 * (float64(k%7)/6 - 0.5)
			pts = append(pts, plotter.XY{X: st.BaseRanks[i] + jitter, Y: r})
		}
	}
	if len(pts) > 0 {
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("trueskill: figure: %w", err)
		}
		sc.GlyphStyle.Color = color.NRGBA{31, 119, 180, 120}
		sc.GlyphStyle.Radius = vg.Points(2)
		p.Add(sc)
		p.Legend.Add(fmt.Sprintf("%d shuffled orders", len(st.Ranks)), sc)
	}
	n := len(st.BaseRanks)
	diag := indices(n + 1)
	if err := addLine(p, "order played", diag[1:], diag[1:], colour(3), 1.5, false); err != nil {
		return nil, err
	}
	p.Y.Scale = plot.LinearScale{}
	p.Y.Min, p.Y.Max = 0.5, float64(n)+0.5
	p.X.Min, p.X.Max = 0.5, float64(n)+0.5
	return renderPNG(p, 16*vg.Centimeter, 10*vg.Centimeter)
}

// CalibrationCurve is one model's reliability diagram.
type CalibrationCurve struct {
	Name string
	Bins []CalibrationBin
}

// CalibrationFigure plots observed win frequencies against predicted win probabilities
// (bins with fewer than minCount matches are left out).
func CalibrationFigure(title string, minCount int, curves ...CalibrationCurve) ([]byte, error) {
	p := newPlot(title, "predicted p(team 1 wins | decided)", "observed share of team 1 wins")
	p.Legend.Top = false
	if err := addLine(p, "perfect calibration", []float64{0, 1}, []float64{0, 1}, color.Gray{140}, 1, true); err != nil {
		return nil, err
	}
	for i, c := range curves {
		var xs, ys []float64
		for _, b := range c.Bins {
			if b.Count >= minCount && b.Count > 0 {
				xs, ys = append(xs, b.Predicted), append(ys, b.Observed)
			}
		}
		if len(xs) == 0 {
			continue
		}
		if err := addLine(p, c.Name, xs, ys, colour(i), 1.5, false); err != nil {
			return nil, err
		}
		xy := make(plotter.XYs, len(xs))
		for j := range xs {
			xy[j] = plotter.XY{X: xs[j], Y: ys[j]}
		}
		sc, err := plotter.NewScatter(xy)
		if err != nil {
			return nil, fmt.Errorf("trueskill: figure: %w", err)
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Radius = colour(i), vg.Points(2.5)
		p.Add(sc)
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	return renderPNG(p, 12*vg.Centimeter, 11*vg.Centimeter)
}

// FactorGraphFigure draws the factor graph of one match: variables as circles (y
// shaded: observed), factors as black squares, each factor labelled with its density.
func FactorGraphFigure() ([]byte, error) {
	w, h := 17*vg.Centimeter, 7*vg.Centimeter
	c := vgimg.New(w, h)
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	u := vg.Centimeter
	pos := func(x, y float64) vg.Point { return vg.Point{X: vg.Length(x) * u, Y: vg.Length(y) * u} }
	font := plot.DefaultFont
	font.Size = vg.Points(11)
	text := func(at vg.Point, s string, size float64, xa draw.XAlignment) {
		f := font
		f.Size = vg.Points(size)
		st := draw.TextStyle{Color: color.Black, Font: f, Handler: plot.DefaultTextHandler, XAlign: xa, YAlign: draw.YCenter}
		dc.FillText(st, at, s)
	}
	line := func(a, b vg.Point) {
		dc.StrokeLine2(draw.LineStyle{Color: color.Black, Width: vg.Points(1.2)}, a.X, a.Y, b.X, b.Y)
	}
	r := 0.55
	circle := func(at vg.Point, name string, shaded bool) {
		var path vg.Path
		path.Move(vg.Point{X: at.X + vg.Length(r)*u, Y: at.Y})
		path.Arc(at, vg.Length(r)*u, 0, 2*math.Pi)
		path.Close()
		if shaded {
			dc.SetColor(color.Gray{200})
		} else {
			dc.SetColor(color.White)
		}
		dc.Fill(path)
		dc.SetLineStyle(draw.LineStyle{Color: color.Black, Width: vg.Points(1.5)})
		dc.Stroke(path)
		text(at, name, 14, draw.XCenter)
	}
	square := func(at vg.Point, label string, below bool, dx float64) {
		s := vg.Length(0.22) * u
		var path vg.Path
		path.Move(vg.Point{X: at.X - s, Y: at.Y - s})
		path.Line(vg.Point{X: at.X + s, Y: at.Y - s})
		path.Line(vg.Point{X: at.X + s, Y: at.Y + s})
		path.Line(vg.Point{X: at.X - s, Y: at.Y + s})
		path.Close()
		dc.SetColor(color.Black)
		dc.Fill(path)
		dy := 0.65
		if below {
			dy = -0.65
		}
		text(vg.Point{X: at.X + vg.Length(dx)*u, Y: at.Y + vg.Length(dy)*u}, label, 10, draw.XCenter)
	}
	f1, s1 := pos(1.6, 5.3), pos(4.4, 5.3)
	f2, s2 := pos(1.6, 1.7), pos(4.4, 1.7)
	ft, t := pos(7.6, 3.5), pos(10.4, 3.5)
	fy, y := pos(13.0, 3.5), pos(15.6, 3.5)
	for _, e := range [][2]vg.Point{{f1, s1}, {f2, s2}, {s1, ft}, {s2, ft}, {ft, t}, {t, fy}, {fy, y}} {
		line(e[0], e[1])
	}
	square(f1, "N(s1; μ1, σ1²)", false, 0)
	square(f2, "N(s2; μ2, σ2²)", true, 0)
	square(ft, "N(t; s1 − s2, σt²)", true, 1.1)
	square(fy, "1(y = sign t)", true, 0)
	circle(s1, "s1", false)
	circle(s2, "s2", false)
	circle(t, "t", false)
	circle(y, "y", true)
	text(pos(8.5, 6.5), "TrueSkill, one match: p(s1, s2, t, y) = N(s1) N(s2) N(t; s1 − s2) 1(y = sign t)", 11, draw.XCenter)
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("trueskill: factor graph: %w", err)
	}
	return buf.Bytes(), nil
}
