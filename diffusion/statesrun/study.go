package statesrun

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/ddpm"
	"github.com/godiffusion/notebooks/diffusion/metrics"
	"github.com/godiffusion/notebooks/diffusion/plot"
	"github.com/godiffusion/notebooks/diffusion/preset"
	"github.com/godiffusion/notebooks/diffusion/sampling"
)

// Unconditional targets of issue 15 at the cpu preset: off-outline, precision, recall (all
// together) and NLL.
const (
	TargetOffOutline = 0.003
	TargetPrecision  = 0.93
	TargetRecall     = 0.96
	TargetNLL        = 2.16
)

// PublishedReport is the published solution's unconditional samples (course data, 5000
// points, 250 GPU epochs) scored with this project's estimators (metrics, k = 3): a
// reference row for the course data only.
var PublishedReport = metrics.Report{Samples: 5000, NLL: 2.149, Precision: 0.928, Recall: 0.956, OffOutline: 0.0032,
	OffOutlineThreshold: metrics.DefaultOffOutlineThreshold}

// StudyVariant is one autoguided curve of the sampler study: a sampler over all T steps
// autoguided by one weak checkpoint with an interval, scored at each scale of Scales.
type StudyVariant struct {
	Sampler string
	Autoguide
	Scales []float64
}

// Study is the sampler study of notebook 01: plain samplers against the number of steps and
// autoguided variants against the scale w.
type Study struct {
	Samplers []string // names of sampling.SamplerNames
	Steps    []int    // numbers of steps of each plain sampler (T: all)
	Variants []StudyVariant
	// VariantSteps is the number of steps of the variants (0: T).
	VariantSteps int
	// BestSteps, if set, also scores Best (autoguided) at these numbers of steps.
	Best      Sampler
	BestSteps []int
}

// ScoreStudy runs the study on the denoiser d trained into dir (its weak checkpoints): n
// points per row, scored against the data. The plain rows come first (sampler by sampler,
// increasing steps), then the autoguided ones.
func ScoreStudy(b compute.Backend, d *ddpm.Denoiser, dir string, data *Data, st Study, n int, speed ddpm.Speed, seed int64) ([]StepScore, error) {
	var out []StepScore
	add := func(s Sampler, steps int) error {
		s.Steps = steps
		sc, err := ScoreSampler(b, d, dir, data, s, n, speed, seed)
		if err == nil {
			out = append(out, sc)
		}
		return err
	}
	T := d.Schedule.T()
	for _, name := range st.Samplers {
		for _, steps := range st.Steps {
			if err := add(Sampler{Name: name}, min(steps, T)); err != nil {
				return nil, err
			}
		}
	}
	for _, v := range st.Variants {
		for _, w := range v.Scales {
			ag := v.Autoguide
			ag.W = w
			steps := T
			if st.VariantSteps > 0 {
				steps = min(st.VariantSteps, T)
			}
			if err := add(Sampler{Name: v.Sampler, Autoguide: ag}, steps); err != nil {
				return nil, err
			}
		}
	}
	if st.Best.On() {
		for _, steps := range st.BestSteps {
			if err := add(st.Best, min(steps, T)); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// ScoreSampler draws n points with s from the denoiser d trained into dir (its weak
// checkpoints; b and dir are used only when s is autoguided) and scores them against the data.
func ScoreSampler(b compute.Backend, d *ddpm.Denoiser, dir string, data *Data, s Sampler, n int, speed ddpm.Speed, seed int64) (StepScore, error) {
	steps := s.Steps
	if steps == 0 {
		steps = d.Schedule.T()
	}
	smp, err := s.Sample(b, d, dir, n, speed, seed, 0)
	if err != nil {
		return StepScore{}, fmt.Errorf("statesrun: %s: %w", s, err)
	}
	rep, err := data.Reference.Evaluate(Points(smp.Points))
	if err != nil {
		return StepScore{}, err
	}
	sc := StepScore{Sampler: s.Name, Steps: steps, Report: rep, Duration: smp.Duration}
	if s.On() {
		sc.Weak, sc.Scale, sc.Interval = s.Weak, s.W, s.Interval
	}
	return sc, nil
}

// StudyTable is the markdown table of a study's scores, with the published solution's row
// when published is set (course data only) and the targets in the heading.
func StudyTable(scores []StepScore, published bool) string {
	var names []string
	var reps []metrics.Report
	for _, s := range scores {
		names = append(names, fmt.Sprintf("%s (%s)", studyName(s), s.Duration.Round(100*time.Millisecond)))
		reps = append(reps, s.Report)
	}
	if published {
		names = append(names, "**published solution** (its samples, our estimators; course data)")
		reps = append(reps, PublishedReport)
	}
	return fmt.Sprintf("Targets: off-outline <= %.1f%%, precision >= %.2f and recall >= %.2f together, NLL <= %.2f.\n\n",
		100*TargetOffOutline, TargetPrecision, TargetRecall, TargetNLL) + metrics.MarkdownTable(names, reps)
}

// studyName is a row's name: the sampler's legend name, steps and autoguidance.
func studyName(s StepScore) string {
	name := fmt.Sprintf("%s, %d steps", samplerLabel(s.Sampler), s.Steps)
	if s.Weak > 0 {
		name += ", " + Autoguide{Weak: s.Weak, W: s.Scale, Interval: s.Interval}.String()
	}
	return name
}

// variantKey names the autoguided curve of a score (its sampler, weak model and interval).
func variantKey(s StepScore) string {
	k := fmt.Sprintf("%s, weak %d", samplerLabel(s.Sampler), s.Weak)
	if s.Interval != nil {
		k += fmt.Sprintf(", k in [%g, %g]", s.Interval.Lo, s.Interval.Hi)
	}
	return k
}

// StudyFigure plots a study: off-outline, NLL, precision and recall (columns) against the
// number of steps (top row: plain samplers and the autoguided ones at several steps) and
// against the autoguidance scale w at the most steps of the study (bottom row: one curve per
// weak model and interval, from the plain sampler's score at w = 1), with the targets as dashed lines and the published
// solution's scores as dotted ones when published is set.
func StudyFigure(scores []StepScore, published bool) ([]byte, error) {
	if len(scores) == 0 {
		return nil, fmt.Errorf("statesrun: no scores to plot")
	}
	type curve struct {
		name string
		xy   plotter.XYs
		reps []metrics.Report
	}
	var steps, ws []*curve
	stepTicks := func(cs []*curve) gplot.ConstantTicks {
		var xs []float64
		for _, c := range cs {
			for _, q := range c.xy {
				if !slices.Contains(xs, q.X) {
					xs = append(xs, q.X)
				}
			}
		}
		slices.Sort(xs)
		var ticks gplot.ConstantTicks
		for _, x := range xs {
			ticks = append(ticks, gplot.Tick{Value: x, Label: strconv.FormatFloat(x, 'f', -1, 64)})
		}
		return ticks
	}
	find := func(cs *[]*curve, name string) *curve {
		for _, c := range *cs {
			if c.name == name {
				return c
			}
		}
		c := &curve{name: name}
		*cs = append(*cs, c)
		return c
	}
	T := 0
	for _, s := range scores {
		T = max(T, s.Steps)
	}
	var variants []string
	for _, s := range scores {
		if s.Weak > 0 && !slices.Contains(variants, variantKey(s)) {
			variants = append(variants, variantKey(s))
		}
	}
	for _, s := range scores {
		name := samplerLabel(s.Sampler)
		if s.Weak > 0 {
			name += ", " + Autoguide{Weak: s.Weak, W: s.Scale, Interval: s.Interval}.String()
		}
		c := find(&steps, name)
		c.xy, c.reps = append(c.xy, plotter.XY{X: float64(s.Steps)}), append(c.reps, s.Report)
		if s.Steps != T {
			continue
		}
		if s.Weak > 0 {
			c := find(&ws, variantKey(s))
			c.xy, c.reps = append(c.xy, plotter.XY{X: s.Scale}), append(c.reps, s.Report)
			continue
		}
		for _, v := range variants { // the plain sampler is each of its variants at w = 1
			if strings.HasPrefix(v, samplerLabel(s.Sampler)+", weak ") {
				c := find(&ws, v)
				c.xy, c.reps = append(c.xy, plotter.XY{X: 1}), append(c.reps, s.Report)
			}
		}
	}
	steps = slices.DeleteFunc(steps, func(c *curve) bool { return len(c.xy) < 2 })
	metricsOf := []struct {
		title  string
		value  func(metrics.Report) float64
		target float64
	}{
		{"off-outline (%)", func(r metrics.Report) float64 { return 100 * r.OffOutline }, 100 * TargetOffOutline},
		{"NLL (nats)", func(r metrics.Report) float64 { return r.NLL }, TargetNLL},
		{"precision", func(r metrics.Report) float64 { return r.Precision }, TargetPrecision},
		{"recall", func(r metrics.Report) float64 { return r.Recall }, TargetRecall},
	}
	var rows [][]*gplot.Plot
	for row, cs := range [][]*curve{steps, ws} {
		if len(cs) == 0 {
			continue
		}
		var plots []*gplot.Plot
		for col, m := range metricsOf {
			p := gplot.New()
			p.Title.Text = m.title
			p.X.Label.Text = "steps (log scale)"
			p.Y.Tick.Marker = plot.PreciseTicks{}
			if row == 1 {
				p.X.Label.Text, p.X.Tick.Marker = "autoguidance scale w", plot.PreciseTicks{}
			} else {
				p.X.Scale, p.X.Tick.Marker = gplot.LogScale{}, stepTicks(cs)
			}
			lo, hi := math.Inf(1), math.Inf(-1)
			vmin, vmax := math.Inf(1), math.Inf(-1)
			for i, c := range cs {
				xy := make(plotter.XYs, len(c.xy))
				for j := range c.xy {
					xy[j] = plotter.XY{X: c.xy[j].X, Y: m.value(c.reps[j])}
				}
				slices.SortFunc(xy, func(a, b plotter.XY) int { return int(math.Copysign(1, a.X-b.X)) })
				for _, q := range xy {
					lo, hi = math.Min(lo, q.X), math.Max(hi, q.X)
					vmin, vmax = math.Min(vmin, q.Y), math.Max(vmax, q.Y)
				}
				l, pts, err := plotter.NewLinePoints(xy)
				if err != nil {
					return nil, fmt.Errorf("statesrun.StudyFigure: %w", err)
				}
				l.Color, pts.Color = plot.Palette[(i+4*row)%len(plot.Palette)], plot.Palette[(i+4*row)%len(plot.Palette)]
				l.Width = vg.Points(1.5)
				p.Add(l, pts)
				if col == 0 {
					p.Legend.Add(c.name, l, pts)
				}
			}
			hline := func(y float64, dashes []vg.Length, name string) error {
				l, err := plotter.NewLine(plotter.XYs{{X: lo, Y: y}, {X: hi, Y: y}})
				if err != nil {
					return err
				}
				l.Color, l.Dashes = color.RGBA{100, 100, 100, 255}, dashes
				p.Add(l)
				if col == 1 {
					p.Legend.Add(name, l)
				}
				return nil
			}
			if err := hline(m.target, []vg.Length{vg.Points(5), vg.Points(3)}, "target"); err != nil {
				return nil, err
			}
			if published {
				if err := hline(m.value(PublishedReport), []vg.Length{vg.Points(1), vg.Points(2)}, "published solution"); err != nil {
					return nil, err
				}
			}
			// Zoom to the region near the targets: few-step rows far off leave the panel
			// (they are in the table).
			switch col {
			case 0:
				p.Y.Min, p.Y.Max = 0, math.Min(vmax, math.Max(5, 2*vmin))*1.05
			case 1:
				p.Y.Min, p.Y.Max = math.Min(vmin, 2.14)-0.005, math.Min(vmax, math.Max(2.22, vmin+0.08))+0.005
			}
			p.Legend.Top, p.Legend.TextStyle.Font.Size = true, vg.Points(7)
			p.Add(plotter.NewGrid())
			plots = append(plots, p)
		}
		rows = append(rows, plots)
	}
	return plot.Tiles("Sampler study: plain samplers vs steps (top), autoguidance vs w (bottom)", rows, 9*vg.Centimeter, 8*vg.Centimeter)
}

// PresetStudy is the sampler study of notebook 01 at cfg's preset: the plain samplers
// (ancestral with beta and with the posterior variance, DDIM) against the steps, and the
// autoguided variants (weak checkpoint, interval) against w, with the deliverable sampler
// (cfg.Sampler) against the steps.
func PresetStudy(cfg Config) Study {
	T := cfg.Model.Schedule.T
	st := Study{Samplers: []string{"ddpm", "ddpm-posterior", "ddim"}, Steps: []int{20, 50, 100, 250, T}}
	ws := cfg.WeakSteps
	if len(ws) == 0 {
		return st
	}
	low := &sampling.Interval{Lo: 0, Hi: 99}
	if cfg.Preset == preset.Smoke {
		st.Steps, st.VariantSteps = []int{10, 50}, 50
		st.Variants = []StudyVariant{{Sampler: "ddpm", Autoguide: Autoguide{Weak: ws[len(ws)-1]}, Scales: []float64{2}},
			{Sampler: "ddpm", Autoguide: Autoguide{Weak: ws[len(ws)-1], Interval: low}, Scales: []float64{2}}}
	} else {
		weak := func(step int) int {
			if slices.Contains(ws, step) {
				return step
			}
			return ws[len(ws)-1]
		}
		st.Variants = []StudyVariant{
			{Sampler: "ddpm", Autoguide: Autoguide{Weak: weak(1000)}, Scales: []float64{1.5, 2}},
			{Sampler: "ddpm", Autoguide: Autoguide{Weak: weak(3000)}, Scales: []float64{1.5, 2, 2.5}},
			{Sampler: "ddpm", Autoguide: Autoguide{Weak: weak(3000), Interval: low}, Scales: []float64{2, 3}},
		}
	}
	if cfg.Sampler.On() && cfg.Preset != preset.Smoke {
		st.Best, st.BestSteps = cfg.Sampler, []int{50, 100, 250}
	}
	return st
}
