package statesrun

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/godiffusion/notebooks/diffusion/data/states"
	"github.com/godiffusion/notebooks/diffusion/ddpm"
	"github.com/godiffusion/notebooks/diffusion/plot"
	"github.com/godiffusion/notebooks/diffusion/schedule"
	"gonum.org/v1/plot/vg"
)

// The figures of the STATES notebooks, as PNG. Axis ranges are the same in every scatter
// plot so that figures compare at a glance.
const (
	plotMin, plotMax = -2.6, 2.6
)

var fixedAxes = plot.Options{XMin: plotMin, XMax: plotMax, YMin: plotMin, YMax: plotMax}

// ByState groups points (N rows) by label, one coloured and named group per state.
func ByState(points [][2]float64, labels []int) []plot.Points {
	groups := make([]plot.Points, states.NumLabels)
	for k := range groups {
		groups[k] = plot.Points{Name: states.Names[k], Color: plot.Palette[k]}
	}
	for i, p := range points {
		if l := labels[i]; l >= 0 && l < states.NumLabels {
			groups[l].XY = append(groups[l].XY, p)
		}
	}
	return groups
}

// DataFigure is the scatter plot of the dataset, coloured by state; name says which
// dataset it is (e.g. "builtin" or the file name).
func DataFigure(ds *states.Dataset, name string) ([]byte, error) {
	opts := fixedAxes
	opts.Title, opts.Width, opts.Height = fmt.Sprintf("STATES (%s): %d points", name, ds.Len()), 16*vg.Centimeter, 14*vg.Centimeter
	return plot.Scatter(opts, ByState(ds.Points, ds.Labels)...)
}

// ForwardFigure shows x_t ~ q(x_t | x_0) of the dataset at the given time steps (0-based).
func ForwardFigure(ds *states.Dataset, ts []int, seed uint64) ([]byte, error) {
	s, err := schedule.New(schedule.DefaultConfig())
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	var panels []plot.Panel
	for _, t := range ts {
		if t < 0 || t >= s.T() {
			return nil, fmt.Errorf("statesrun: time step %d outside [0, %d)", t, s.T())
		}
		a := s.AlphaBars[t]
		noisy := make([][2]float64, ds.Len())
		for i, p := range ds.Points {
			for k := range 2 {
				noisy[i][k] = math.Sqrt(a)*p[k] + math.Sqrt(1-a)*rng.NormFloat64()
			}
		}
		panels = append(panels, plot.Panel{Title: fmt.Sprintf("t = %d (abar %.3f)", t+1, a), Groups: ByState(noisy, ds.Labels)})
	}
	opts := plot.Options{Title: "Forward process q(x_t | x_0)", XMin: -4, XMax: 4, YMin: -4, YMax: 4}
	return plot.ScatterPanels(opts, len(panels), panels...)
}

// LossFigure plots the training loss (a moving average over 1% of the steps) and the
// validation loss of a run.
func LossFigure(h *History, title string) ([]byte, error) {
	if h == nil || h.History == nil || len(h.TrainLoss) == 0 {
		return nil, fmt.Errorf("statesrun: no training history to plot")
	}
	x, y := smooth(h.TrainLoss, max(1, len(h.TrainLoss)/100))
	curves := []plot.Curve{{Name: "train (moving average)", X: x, Y: y}}
	if len(h.ValSteps) > 0 {
		curves = append(curves, plot.Curve{Name: "validation", X: ints(h.ValSteps), Y: h.ValLoss})
	}
	return plot.Lines(plot.Options{Title: title, XLabel: "step", YLabel: "loss", LogY: true}, curves...)
}

// AccuracyFigure plots a classifier's training and validation accuracy.
func AccuracyFigure(h *History) ([]byte, error) {
	if h == nil || h.History == nil || len(h.TrainAcc) == 0 {
		return nil, fmt.Errorf("statesrun: no accuracy history to plot")
	}
	x, y := smooth(h.TrainAcc, max(1, len(h.TrainAcc)/100))
	curves := []plot.Curve{{Name: "train (moving average)", X: x, Y: y}}
	if len(h.ValAcc) > 0 {
		curves = append(curves, plot.Curve{Name: "validation", X: ints(h.ValSteps), Y: h.ValAcc})
	}
	return plot.Lines(plot.Options{Title: "Classifier accuracy on noisy inputs (t uniform)", XLabel: "step", YLabel: "accuracy"}, curves...)
}

// ProbeFigure plots the NLL of samples drawn during training, with the NLL of the data.
func ProbeFigure(h *History, dataNLL float64) ([]byte, error) {
	if h == nil || len(h.Probes) == 0 {
		return nil, fmt.Errorf("statesrun: no NLL probes in the history")
	}
	var x, y []float64
	for _, p := range h.Probes {
		x, y = append(x, float64(p.Step)), append(y, p.NLL)
	}
	return plot.Lines(plot.Options{Title: "NLL of samples during training (DDIM probes)", XLabel: "step", YLabel: "NLL (nats)"},
		plot.Curve{Name: "samples", X: x, Y: y},
		plot.Curve{Name: "real data", X: []float64{x[0], x[len(x)-1]}, Y: []float64{dataNLL, dataNLL}})
}

// SamplesFigure is the scatter plot of generated points over the data in grey.
func SamplesFigure(ds *states.Dataset, samples [][2]float64, title string) ([]byte, error) {
	opts := fixedAxes
	opts.Title, opts.Width, opts.Height = title, 16*vg.Centimeter, 14*vg.Centimeter
	return plot.Scatter(opts,
		plot.Points{Name: "data", XY: ds.Points, Color: lightGrey},
		plot.Points{Name: "samples", XY: samples, Color: plot.Palette[0], Radius: 0.8})
}

// FramesFigure shows the reverse process: recorded frames of a sampler.
func FramesFigure(s *ddpm.Samples, T int) ([]byte, error) {
	if s == nil || len(s.Frames) == 0 {
		return nil, fmt.Errorf("statesrun: no frames recorded (set RecordEvery)")
	}
	var panels []plot.Panel
	for i, f := range s.Frames {
		panels = append(panels, plot.Panel{Title: fmt.Sprintf("t = %d", T-s.FrameSteps[i]), Groups: []plot.Points{{XY: Points(f), Color: plot.Palette[0]}}})
	}
	return plot.ScatterPanels(plot.Options{Title: "Reverse process (ancestral sampling)", XMin: -3.5, XMax: 3.5, YMin: -3.5, YMax: 3.5},
		min(len(panels), 6), panels...)
}

// StepsFigure plots NLL against the number of sampler steps.
func StepsFigure(scores []StepScore, dataNLL float64) ([]byte, error) {
	// One curve per sampler; the last score of the reference sampler (ancestral DDPM at all T
	// steps) is drawn as a horizontal line.
	var names []string
	xs, ys := map[string][]float64{}, map[string][]float64{}
	if len(scores) == 0 {
		return nil, fmt.Errorf("statesrun: no scores to plot")
	}
	ref := scores[len(scores)-1]
	lo, hi := math.Inf(1), float64(ref.Steps)
	for _, s := range scores[:len(scores)-1] {
		if _, ok := xs[s.Sampler]; !ok {
			names = append(names, s.Sampler)
		}
		xs[s.Sampler], ys[s.Sampler] = append(xs[s.Sampler], float64(s.Steps)), append(ys[s.Sampler], s.Report.NLL)
		lo, hi = math.Min(lo, float64(s.Steps)), math.Max(hi, float64(s.Steps))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("statesrun: only the reference sampler to plot")
	}
	var curves []plot.Curve
	for _, n := range names {
		curves = append(curves, plot.Curve{Name: samplerLabel(n), X: xs[n], Y: ys[n]})
	}
	curves = append(curves,
		plot.Curve{Name: fmt.Sprintf("ancestral DDPM, %d steps", ref.Steps), X: []float64{lo, hi}, Y: []float64{ref.Report.NLL, ref.Report.NLL}},
		plot.Curve{Name: "real data", X: []float64{lo, hi}, Y: []float64{dataNLL, dataNLL}})
	// The y range shows the differences near the data's NLL; the few-step values far above
	// it leave the top of the figure (they are in the table).
	// (A poorly trained model, e.g. at smoke, widens it so every curve's best point and the
	// reference line stay visible.)
	ymin, ymax := dataNLL, math.Max(dataNLL+0.4, ref.Report.NLL+0.1)
	for _, s := range scores {
		ymin = math.Min(ymin, s.Report.NLL)
	}
	for _, n := range names {
		ymax = math.Max(ymax, slices.Min(ys[n])+0.1)
	}
	return plot.Lines(plot.Options{Title: "Sample NLL vs number of sampling steps", XLabel: "steps (log scale)", YLabel: "NLL (nats)", LogX: true,
		YMin: ymin - 0.02, YMax: ymax}, curves...)
}

// samplerLabel is the legend name of a sampler of sampling.SamplerNames.
func samplerLabel(name string) string {
	switch name {
	case "ddim":
		return "DDIM"
	case "ddpm":
		return "ancestral (beta)"
	case "ddpm-posterior":
		return "ancestral (posterior variance)"
	case "dpm++2m":
		return "DPM-Solver++(2M)"
	case "heun":
		return "Heun (PF-ODE)"
	case "euler":
		return "Euler (PF-ODE)"
	}
	return name
}

// RegionsFigure is the classifier's prediction map at time step t (0-based): decision
// regions over the plane, and the data coloured by the predicted state.
func RegionsFigure(c *ddpm.Classifier, ds *states.Dataset, t int) ([]byte, error) {
	const n = 120
	grid, err := c.PredictGrid(plotMin, plotMax, plotMin, plotMax, n, n, t)
	if err != nil {
		return nil, err
	}
	flat := ds.Flat32()
	ts := make([]int, ds.Len())
	for i := range ts {
		ts[i] = t
	}
	probs, err := c.Probabilities(flat, ts)
	if err != nil {
		return nil, err
	}
	pred := make([]int, ds.Len())
	wrong := 0
	for i := range pred {
		best := 0
		for k := 1; k < states.NumLabels; k++ {
			if probs[i*states.NumLabels+k] > probs[i*states.NumLabels+best] {
				best = k
			}
		}
		pred[i] = best
		if best != ds.Labels[i] {
			wrong++
		}
	}
	title := fmt.Sprintf("Classifier at t = %d: regions and data by predicted state (%.1f%% correct)", t+1, 100*(1-float64(wrong)/float64(ds.Len())))
	return plot.Regions(plot.Options{Title: title, Width: 16 * vg.Centimeter, Height: 14 * vg.Centimeter}, n, n, plotMin, plotMax, plotMin, plotMax,
		func(ix, iy int) int { return grid.ArgMax(ix, iy) }, ByState(ds.Points, pred)...)
}

// TimeAccuracyFigure plots the classifier's accuracy against t.
func TimeAccuracyFigure(acc []ddpm.TimeAccuracy) ([]byte, error) {
	var x, y []float64
	for _, a := range acc {
		x, y = append(x, float64(a.TStart+a.TEnd)/2+1), append(y, a.Accuracy)
	}
	return plot.Lines(plot.Options{Title: "Classifier accuracy vs diffusion time", XLabel: "t", YLabel: "accuracy", YMin: 0, YMax: 1.02},
		plot.Curve{Name: "validation", X: x, Y: y},
		plot.Curve{Name: "chance", X: []float64{x[0], x[len(x)-1]}, Y: []float64{0.2, 0.2}})
}

// GuidedFigure shows guided samples: one panel per state and one with all five.
func GuidedFigure(ds *states.Dataset, sets []GuidedSet) ([]byte, error) {
	var panels []plot.Panel
	var all []plot.Points
	for _, s := range sets {
		pts := plot.Points{XY: Points(s.Points), Color: plot.Palette[s.Label], Radius: 0.7}
		panels = append(panels, plot.Panel{
			Title:  fmt.Sprintf("%s (NLL %.3f, purity %.1f%%)", s.Name, s.Report.NLL, 100*s.Report.Purity),
			Groups: []plot.Points{{XY: ds.Points, Color: lightGrey, Radius: 0.6}, pts},
		})
		all = append(all, pts)
	}
	panels = append(panels, plot.Panel{Title: "all five", Groups: all})
	return plot.ScatterPanels(plot.Options{Title: "Classifier-guided samples", Width: 7 * vg.Centimeter, XMin: plotMin, XMax: plotMax, YMin: plotMin, YMax: plotMax}, 3, panels...)
}

func smooth(v []float64, w int) (x, y []float64) {
	sum := 0.0
	for i := range v {
		sum += v[i]
		if i >= w {
			sum -= v[i-w]
		}
		n := min(i+1, w)
		x, y = append(x, float64(i+1)), append(y, sum/float64(n))
	}
	return
}

func ints(v []int) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

var lightGrey = plotGrey{}

type plotGrey struct{}

func (plotGrey) RGBA() (r, g, b, a uint32) { return 0xcccc, 0xcccc, 0xcccc, 0xffff }
