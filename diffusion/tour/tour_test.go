package tour

import (
	"math"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

func TestSumOfSquares(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	got, err := SumOfSquares(b, []float32{1, 2, 3})
	if err != nil || got != 14 {
		t.Fatalf("SumOfSquares(1,2,3) = %v, %v; want 14", got, err)
	}
	if _, err := SumOfSquares(b, nil); err == nil {
		t.Error("SumOfSquares(nil) gave no error")
	}
}

func TestFitLineRecoversTheLine(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultLineFit()
	calls := 0
	fit, err := FitLine(b, cfg, func(step int, loss float64) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if calls != cfg.Steps || len(fit.Losses) != cfg.Steps {
		t.Fatalf("onStep called %d times, %d losses; want %d", calls, len(fit.Losses), cfg.Steps)
	}
	if math.Abs(fit.Slope-cfg.Slope) > 0.1 || math.Abs(fit.Intercept-cfg.Intercept) > 0.1 {
		t.Errorf("learned y = %.3f x + %.3f, want %.1f x + %.1f", fit.Slope, fit.Intercept, cfg.Slope, cfg.Intercept)
	}
	if last := fit.Losses[len(fit.Losses)-1]; last > 0.05 || last > fit.Losses[0]/10 {
		t.Errorf("loss went from %.4f to %.4f: did not converge", fit.Losses[0], last)
	}
	if _, err := FitLine(b, LineFitConfig{}, nil); err == nil {
		t.Error("FitLine with a zero config gave no error")
	}
}
