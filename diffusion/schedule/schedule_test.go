package schedule

import (
	"math"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

func TestLinearClosedForms(t *testing.T) {
	s, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if s.T() != 500 || s.Betas[0] != 1e-4 || !near(s.Betas[499], 0.02, 1e-12) {
		t.Fatalf("betas: T=%d first=%g last=%g", s.T(), s.Betas[0], s.Betas[499])
	}
	for _, tt := range []int{0, 1, 100, 250, 499} {
		beta := 1e-4 + (0.02-1e-4)*float64(tt)/499
		if !near(s.Betas[tt], beta, 1e-12) || !near(s.Alphas[tt], 1-beta, 1e-12) {
			t.Errorf("t=%d: beta %g want %g", tt, s.Betas[tt], beta)
		}
		// log abar_t = sum_{s<=t} log(1 - beta_s).
		logAbar := 0.0
		for k := 0; k <= tt; k++ {
			logAbar += math.Log1p(-(1e-4 + (0.02-1e-4)*float64(k)/499))
		}
		if !near(s.AlphaBars[tt], math.Exp(logAbar), 1e-10) {
			t.Errorf("t=%d: abar %g want %g", tt, s.AlphaBars[tt], math.Exp(logAbar))
		}
		if !near(s.TimeInput[tt], -1+2*float64(tt)/499, 1e-12) {
			t.Errorf("t=%d: time input %g", tt, s.TimeInput[tt])
		}
	}
	// Known value of the course's schedule: abar_499 ~= 0.00657 (4.0e-3 .. 7e-3), noise dominates.
	if s.AlphaBars[499] > 0.01 || s.AlphaBars[499] < 0.004 {
		t.Errorf("abar_T = %g, want ~0.0066", s.AlphaBars[499])
	}
	if s.TimeInput[0] != -1 || s.TimeInput[499] != 1 {
		t.Errorf("time input ends %g %g", s.TimeInput[0], s.TimeInput[499])
	}
	if s.AlphaBarPrev(0) != 1 || s.AlphaBarPrev(10) != s.AlphaBars[9] {
		t.Error("AlphaBarPrev")
	}
	if !near(s.PosteriorVariance(10), (1-s.AlphaBars[9])/(1-s.AlphaBars[10])*s.Betas[10], 1e-12) || s.PosteriorVariance(0) != 0 {
		t.Error("PosteriorVariance")
	}
}

func TestCosineClosedForm(t *testing.T) {
	s, err := New(CosineConfig(1000))
	if err != nil {
		t.Fatal(err)
	}
	f := func(t float64) float64 { c := math.Cos((t/1000 + 0.008) / 1.008 * math.Pi / 2); return c * c }
	for _, tt := range []int{0, 10, 500, 900} {
		// abar_t = f(t+1)/f(0) while no beta is clipped.
		if want := f(float64(tt+1)) / f(0); !near(s.AlphaBars[tt], want, 1e-9) {
			t.Errorf("t=%d: abar %g want %g", tt, s.AlphaBars[tt], want)
		}
	}
	if s.Betas[999] != 0.999 {
		t.Errorf("last beta %g, want clipped to 0.999", s.Betas[999])
	}
}

func TestInvalidConfigs(t *testing.T) {
	for _, c := range []Config{{Kind: Linear, T: 0, BetaStart: 1e-4, BetaEnd: 0.02},
		{Kind: Linear, T: 10, BetaStart: 0.5, BetaEnd: 0.1}, {Kind: "foo", T: 10}, {Kind: Cosine, T: 10}} {
		if _, err := New(c); err == nil {
			t.Errorf("config %+v: want error", c)
		}
	}
}

func TestQSampleGraph(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := New(DefaultConfig())
	x0 := [][]float32{{1, 2}, {-3, 0.5}, {0.25, -1}}
	noise := [][]float32{{0.1, -0.2}, {1, 1}, {-2, 0.3}}
	ts := []int32{0, 250, 499}
	exec, err := NewExec(b, func(x0, t, noise *Node) (*Node, *Node) {
		return s.QSample(x0, t, noise), s.TimeInputNode(t, dtypes.Float32)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Call(x0, ts, noise)
	if err != nil {
		t.Fatal(err)
	}
	xt := out[0].Value().([][]float32)
	tn := tensors.MustCopyFlatData[float32](out[1])
	for i, tt := range ts {
		ab := s.AlphaBars[tt]
		for j := range 2 {
			want := math.Sqrt(ab)*float64(x0[i][j]) + math.Sqrt(1-ab)*float64(noise[i][j])
			if !near(float64(xt[i][j]), want, 1e-5) {
				t.Errorf("x_t[%d][%d] = %g want %g", i, j, xt[i][j], want)
			}
		}
		if !near(float64(tn[i]), s.TimeInput[tt], 1e-6) {
			t.Errorf("time input[%d] = %g want %g", i, tn[i], s.TimeInput[tt])
		}
	}
}
