package sampling

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// TestGrids: CS180's strided steps, the even grids of ddpm/imagediff, uniform grids, errors.
func TestGrids(t *testing.T) {
	g := must[[]float64](t)(StridedGrid(1000, 30))
	if len(g) != 35 || g[0] != 990 || g[1] != 960 || g[33] != 0 || g[34] != -1 {
		t.Errorf("StridedGrid(1000, 30) = %v", g)
	}
	g = must[[]float64](t)(EvenGrid(500, 500))
	for i, v := range g[:500] {
		if v != float64(499-i) {
			t.Fatalf("EvenGrid(500, 500)[%d] = %g", i, v)
		}
	}
	// ddpm.DDIMTimeSteps(T, S), reversed: round(i (T-1) / (S-1)).
	g = must[[]float64](t)(EvenGrid(500, 7))
	for i := range 7 {
		if want := math.Round(float64(6-i) * 499 / 6); g[i] != want {
			t.Errorf("EvenGrid(500, 7)[%d] = %g, want %g", i, g[i], want)
		}
	}
	if g := must[[]float64](t)(EvenGrid(10, 1)); !slices.Equal(g, []float64{9, -1}) {
		t.Errorf("EvenGrid(10, 1) = %v", g)
	}
	if g := must[[]float64](t)(UniformGrid(0, 1, 4)); !slices.Equal(g, []float64{0, 0.25, 0.5, 0.75, 1}) {
		t.Errorf("UniformGrid(0, 1, 4) = %v", g)
	}
	if g := must[[]float64](t)(UniformGrid(1, 0, 2)); !slices.Equal(g, []float64{1, 0.5, 0}) {
		t.Errorf("UniformGrid(1, 0, 2) = %v", g)
	}
	for name, err := range map[string]error{
		"strided T 0":      second(StridedGrid(0, 3)),
		"strided stride 0": second(StridedGrid(10, 0)),
		"even steps 0":     second(EvenGrid(10, 0)),
		"even steps > T":   second(EvenGrid(10, 11)),
		"uniform steps 0":  second(UniformGrid(0, 1, 0)),
		"uniform empty":    second(UniformGrid(1, 1, 3)),
	} {
		if err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestProcesses: scales against the schedule and closed forms, derivatives against finite
// differences, domain errors.
func TestProcesses(t *testing.T) {
	s := mustSchedule(t, schedule.DefaultConfig())
	d := Discrete{s}
	for _, k := range []int{0, 7, 499} {
		sc := must[Scales](t)(d.Scales(float64(k)))
		if math.Abs(sc.Alpha-math.Sqrt(s.AlphaBars[k])) > 1e-15 || math.Abs(sc.Sigma-math.Sqrt(1-s.AlphaBars[k])) > 1e-15 {
			t.Errorf("Discrete(%d) = %+v", k, sc)
		}
	}
	if sc := must[Scales](t)(d.Scales(-1)); sc.Alpha != 1 || sc.Sigma != 0 {
		t.Errorf("Discrete(-1) = %+v, want the clean data", sc)
	}
	vp := VPSDE{BetaMin: 0.1, BetaMax: 20}
	for _, tt := range []float64{0.01, 0.3, 0.9} {
		sc := must[Scales](t)(vp.Scales(tt))
		lo, hi := must[Scales](t)(vp.Scales(tt-1e-6)), must[Scales](t)(vp.Scales(tt+1e-6))
		if math.Abs(sc.Alpha*sc.Alpha+sc.Sigma*sc.Sigma-1) > 1e-12 {
			t.Errorf("VPSDE(%g) not variance preserving: %+v", tt, sc)
		}
		if math.Abs(sc.DAlpha-(hi.Alpha-lo.Alpha)/2e-6) > 1e-5 || math.Abs(sc.DSigma-(hi.Sigma-lo.Sigma)/2e-6) > 1e-5*(1+sc.DSigma) {
			t.Errorf("VPSDE(%g) derivatives %g %g, finite differences %g %g", tt, sc.DAlpha, sc.DSigma, (hi.Alpha-lo.Alpha)/2e-6, (hi.Sigma-lo.Sigma)/2e-6)
		}
		want := math.Exp(-(0.1*tt + 19.9*tt*tt/2))
		if math.Abs(sc.Alpha*sc.Alpha-want) > 1e-12 {
			t.Errorf("VPSDE(%g) abar %g want %g", tt, sc.Alpha*sc.Alpha, want)
		}
	}
	if sc := must[Scales](t)(Flow{}.Scales(0.25)); sc != (Scales{Alpha: 0.25, Sigma: 0.75, DAlpha: 1, DSigma: -1}) {
		t.Errorf("Flow(0.25) = %+v", sc)
	}
	for name, err := range map[string]error{
		"discrete 2.5":     second(d.Scales(2.5)),
		"discrete 500":     second(d.Scales(500)),
		"discrete -2":      second(d.Scales(-2)),
		"discrete nil":     second(Discrete{}.Scales(0)),
		"vpsde 1.5":        second(vp.Scales(1.5)),
		"vpsde bad betas":  second(VPSDE{BetaMin: 2, BetaMax: 1}.Scales(0.5)),
		"flow -0.1":        second(Flow{}.Scales(-0.1)),
		"forward mismatch": second(Forward(Flow{}, make([]float32, 3), make([]float32, 2), 0.5)),
	} {
		if err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	x := must[[]float32](t)(Forward(d, []float32{2, -3}, []float32{0.5, 1}, -1))
	if !slices.Equal(x, []float32{2, -3}) {
		t.Errorf("Forward to the clean end = %v, want the data", x)
	}
}

// TestErrors: bad input is an error naming the problem, never a panic.
func TestErrors(t *testing.T) {
	p := Discrete{mustSchedule(t, schedule.DefaultConfig())}
	grid := must[[]float64](t)(EvenGrid(500, 10))
	good := func() Options { return Options{N: 4, Dim: 2, Process: p, Grid: grid} }
	m := &gaussModel{p: p, mus: [][]float64{testMu()}, s: testS, kind: Noise}
	bad := func(kind Prediction) Model {
		return &gaussModel{p: p, mus: [][]float64{testMu()}, s: testS, kind: kind}
	}
	short := FuncModel{Kind: Noise, Func: func(x []float32, _ []float64, _ []int) ([]float32, error) { return x[:1], nil }}
	cases := []struct {
		name, want string
		err        error
	}{
		{"zero steps", "at least 2 times", second(DDIM(m, Options{N: 4, Dim: 2, Process: p, Grid: []float64{-1}}, 0))},
		{"no grid", "at least 2 times", second(EulerODE(m, Options{N: 4, Dim: 2, Process: p}))},
		{"wrong order", "from noise to data", second(DDIM(m, Options{N: 4, Dim: 2, Process: p, Grid: []float64{-1, 10}}, 0))},
		{"non-integer step", "not an integer step", second(DDIM(m, Options{N: 4, Dim: 2, Process: p, Grid: []float64{10.5, -1}}, 0))},
		{"N 0", "N >= 1", second(DDIM(m, Options{Dim: 2, Process: p, Grid: grid}, 0))},
		{"nil process", "nil Process", second(DDIM(m, Options{N: 1, Dim: 2, Grid: grid}, 0))},
		{"nil model", "nil model", second(DDIM(nil, good(), 0))},
		{"unknown kind", "unknown prediction kind", second(DDIM(bad("eps"), good(), 0))},
		{"eta < 0", "eta", second(DDIM(m, good(), -1))},
		{"bad variance", "unknown variance", second(Ancestral(m, good(), "big"))},
		{"cond length", "3 conditions for 4 samples", second(DDIM(m, func() Options { o := good(); o.Cond = []int{0, 0, 0}; return o }(), 0))},
		{"start length", "XStart has 3 values", second(DDIM(m, func() Options { o := good(); o.XStart = make([]float32, 3); return o }(), 0))},
		{"start index", "StartIndex", second(DDIM(m, func() Options { o := good(); o.StartIndex = 10; return o }(), 0))},
		{"noised without start", "XStartNoised without XStart", second(DDIM(m, func() Options { o := good(); o.XStartNoised = true; return o }(), 0))},
		{"clip range", "clip range", second(DDIM(m, func() Options { o := good(); o.Clip = &Range{1, -1}; return o }(), 0))},
		{"short prediction", "returned 1 values", second(DDIM(short, good(), 0))},
		{"noise at alpha 0", "alpha(t) = 0", second(DDIM(bad(Noise), Options{N: 2, Dim: 2, Process: Flow{}, Grid: []float64{0, 1}}, 0))},
		{"cfg scale < 0", "guidance scale", second(ClassifierFree(m, -1, nil))},
		{"cfg NaN", "guidance scale", second(ClassifierFree(m, math.NaN(), nil))},
		{"cfg interval", "empty guidance interval", second(ClassifierFree(m, 2, &Interval{Lo: 2, Hi: 1}))},
		{"autoguidance scale", "guidance scale", second(Autoguidance(m, m, -0.5, nil))},
		{"classifier scale", "guidance scale", second(ClassifierGuidance(m, p, func([]float32, []float64, []int) ([]float32, error) { return nil, nil }, -2, nil))},
		{"classifier nil grad", "gradient function", second(ClassifierGuidance(m, p, nil, 1, nil))},
		{"classifier interval", "empty guidance interval", second(ClassifierGuidance(m, p, func([]float32, []float64, []int) ([]float32, error) { return nil, nil }, 1, &Interval{Lo: 5, Hi: 4}))},
		{"convert kind", "unknown prediction kind", second(Convert(p, Noise, "v", []float32{1, 2}, []float32{1, 2}, []float64{3}))},
		{"convert shape", "do not make", second(Convert(p, Noise, X0, []float32{1, 2, 3}, []float32{1, 2, 3}, []float64{3, 4}))},
		{"sampler name", "unknown sampler", second(SamplerByName("euler-heun", 0))},
	}
	for _, c := range cases {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, c.err, c.want)
		}
	}
}

// TestSamplerByName: every listed name resolves.
func TestSamplerByName(t *testing.T) {
	for _, name := range SamplerNames() {
		if _, err := SamplerByName(name, 0); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
