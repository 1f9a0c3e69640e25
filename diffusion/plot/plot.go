// Package plot renders the project's figures to PNG with gonum/plot: curves (loss,
// metrics over training) and 2-D scatter plots. PNG survives every export (notebook,
// HTML, PDF). Display a PNG in a notebook with gonbui.DisplayPNG.
package plot

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Options are the common settings of a figure.
type Options struct {
	Title          string
	XLabel, YLabel string
	Width, Height  vg.Length // default 16 cm x 10 cm
	LogY           bool      // logarithmic y axis (non-positive values are dropped)
	LogX           bool      // logarithmic x axis (non-positive values are dropped)
	EqualAxes      bool      // same scale on both axes (for point clouds)
	// Fixed axis ranges, used when Min < Max: Lines clips the curves to them; scatter plots
	// start from them and widen to points outside.
	XMin, XMax, YMin, YMax float64
}

func (o Options) size() (vg.Length, vg.Length) {
	w, h := o.Width, o.Height
	if w <= 0 {
		w = 16 * vg.Centimeter
	}
	if h <= 0 {
		h = 10 * vg.Centimeter
	}
	return w, h
}

// Curve is one named line of a line plot.
type Curve struct {
	Name string
	X, Y []float64
}

// Palette is the colour cycle used for curves and point groups (Tableau 10).
var Palette = []color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	{188, 189, 34, 255}, {23, 190, 207, 255},
}

// Lines draws curves and returns the PNG.
func Lines(opts Options, curves ...Curve) ([]byte, error) {
	if len(curves) == 0 {
		return nil, errors.New("plot.Lines: no curves")
	}
	p := newPlot(opts)
	if opts.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	} else {
		p.Y.Tick.Marker = PreciseTicks{}
	}
	if opts.LogX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{}
	} else {
		p.X.Tick.Marker = PreciseTicks{}
	}
	for i, c := range curves {
		if len(c.X) != len(c.Y) {
			return nil, fmt.Errorf("plot.Lines: curve %q has %d x and %d y values", c.Name, len(c.X), len(c.Y))
		}
		xys := make(plotter.XYs, 0, len(c.X))
		for j := range c.X {
			if isFinite(c.X[j]) && isFinite(c.Y[j]) && (!opts.LogY || c.Y[j] > 0) && (!opts.LogX || c.X[j] > 0) {
				xys = append(xys, plotter.XY{X: c.X[j], Y: c.Y[j]})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("plot.Lines: %w", err)
		}
		line.Color = Palette[i%len(Palette)]
		line.Width = vg.Points(1.5)
		p.Add(line)
		if c.Name != "" {
			p.Legend.Add(c.Name, line)
		}
	}
	p.Add(plotter.NewGrid())
	fixRanges(p, opts) // after p.Add, which widens the axes to the data
	return render(p, opts)
}

// fixRanges applies the fixed axis ranges of opts (lines outside them are clipped).
func fixRanges(p *plot.Plot, opts Options) {
	if opts.XMin < opts.XMax {
		p.X.Min, p.X.Max = opts.XMin, opts.XMax
	}
	if opts.YMin < opts.YMax {
		p.Y.Min, p.Y.Max = opts.YMin, opts.YMax
	}
}

// Points is one named group of 2-D points of a scatter plot.
type Points struct {
	Name   string
	XY     [][2]float64
	Color  color.Color // Palette by group index when nil
	Radius vg.Length   // default 1 point
}

// Scatter draws groups of points and returns the PNG.
func Scatter(opts Options, groups ...Points) ([]byte, error) {
	if len(groups) == 0 {
		return nil, errors.New("plot.Scatter: no points")
	}
	p := newPlot(opts)
	for i, g := range groups {
		if err := addScatter(p, g, i); err != nil {
			return nil, err
		}
	}
	if opts.EqualAxes {
		equalize(p, opts)
	}
	return render(p, opts)
}

func newPlot(opts Options) *plot.Plot {
	p := plot.New()
	p.Title.Text = opts.Title
	p.X.Label.Text = opts.XLabel
	p.Y.Label.Text = opts.YLabel
	p.Legend.Top = true
	fixRanges(p, opts)
	return p
}

// equalize widens the narrower axis so one unit has the same length on both axes.
func equalize(p *plot.Plot, opts Options) {
	w, h := opts.size()
	xr, yr := p.X.Max-p.X.Min, p.Y.Max-p.Y.Min
	if xr <= 0 || yr <= 0 {
		return
	}
	aspect := float64(w) / float64(h) // approximate: ignores the space of labels
	if xr/yr < aspect {
		c, half := (p.X.Min+p.X.Max)/2, yr*aspect/2
		p.X.Min, p.X.Max = c-half, c+half
	} else {
		c, half := (p.Y.Min+p.Y.Max)/2, xr/aspect/2
		p.Y.Min, p.Y.Max = c-half, c+half
	}
}

func render(p *plot.Plot, opts Options) ([]byte, error) {
	w, h := opts.size()
	return PNG(p, w, h)
}

// PNG renders a gonum plot of w x h as PNG bytes (for figures built with gonum/plot
// directly).
func PNG(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	return buf.Bytes(), nil
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// logTicks labels 1, 2, 3 and 5 times the powers of ten (1, 1.5, 2, 3, 4, 5, 6 and 8 times
// when the axis spans less than a decade), so that a short log axis still has several
// labelled ticks (gonum's LogTicks labels powers of ten only).
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	mults := []float64{1, 2, 3, 5}
	if hi/lo < 10 {
		mults = []float64{1, 1.5, 2, 3, 4, 5, 6, 8}
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for _, m := range mults {
			v := m * base
			if v < lo || v > hi {
				continue
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 3, 64)})
		}
	}
	return ticks
}

// PreciseTicks (a gonum Ticker) are gonum's default ticks labelled with as many decimals as their spacing
// needs (the default labels of a narrow range such as 2.14..2.23 can all read "2.2").
type PreciseTicks struct{}

// Ticks implements plot.Ticker.
func (PreciseTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	step := math.Inf(1)
	prev := math.NaN()
	for _, t := range ticks {
		if t.Label == "" {
			continue
		}
		if !math.IsNaN(prev) {
			step = math.Min(step, t.Value-prev)
		}
		prev = t.Value
	}
	if math.IsInf(step, 1) || step <= 0 {
		return ticks
	}
	decimals := max(0, int(math.Ceil(-math.Log10(step)-1e-9)))
	// Enough decimals for every labelled value: gonum's ticks can be offset from round
	// numbers (2.25, 3.25, 4.25 with step 1), which 0 decimals would mislabel as 2, 3, 4.
	for ; decimals < 12; decimals++ {
		exact := true
		for _, t := range ticks {
			if t.Label == "" {
				continue
			}
			r, _ := strconv.ParseFloat(strconv.FormatFloat(t.Value, 'f', decimals, 64), 64)
			if math.Abs(r-t.Value) > 1e-9*math.Max(step, math.Abs(t.Value)) {
				exact = false
				break
			}
		}
		if exact {
			break
		}
	}
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', decimals, 64)
		}
	}
	return ticks
}
