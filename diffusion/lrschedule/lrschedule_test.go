package lrschedule

import (
	"math"
	"strings"
	"testing"
)

func TestAt(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	e := Schedule{Kind: Exponential, LR: 1, FinalFraction: 0.1, Steps: 11}
	if !near(e.At(0), 1) || !near(e.At(10), 0.1) || !near(e.At(5), math.Sqrt(0.1)) {
		t.Errorf("exponential: %g %g %g", e.At(0), e.At(5), e.At(10))
	}
	c := Schedule{Kind: Cosine, LR: 1, FinalFraction: 0.1, Steps: 11}
	if !near(c.At(0), 1) || !near(c.At(5), 0.55) || !near(c.At(10), 0.1) {
		t.Errorf("cosine: %g %g %g", c.At(0), c.At(5), c.At(10))
	}
	c.FinalFraction = 0 // 0 means 0
	if !near(c.At(10), 0) || !near(c.At(5), 0.5) {
		t.Errorf("cosine to 0: %g %g", c.At(5), c.At(10))
	}
	for _, k := range []Kind{"", Constant} {
		if s := (Schedule{Kind: k, LR: 0.3, Steps: 5}); s.At(4) != 0.3 || s.Varies() {
			t.Errorf("%q: %g", k, s.At(4))
		}
	}
	if s := (Schedule{Kind: Cosine, LR: 0.3, Steps: 1}); s.At(0) != 0.3 {
		t.Errorf("one step: %g", s.At(0))
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		s    Schedule
		want string
	}{
		{Schedule{Kind: "linear", LR: 1, Steps: 2}, "unknown schedule"},
		{Schedule{Kind: Exponential, LR: 1, Steps: 2}, "final fraction in (0, 1]"},
		{Schedule{Kind: Cosine, LR: 0, Steps: 2}, "learning rate"},
		{Schedule{Kind: Cosine, LR: 1, FinalFraction: 2, Steps: 2}, "outside [0, 1]"},
		{Schedule{Kind: Constant, LR: 1, Steps: 0}, "steps"},
	} {
		if err := c.s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %q", c.s, err, c.want)
		}
	}
	if err := (Schedule{Kind: Exponential, LR: 1e-2, FinalFraction: 0.1, Steps: 100}).Validate(); err != nil {
		t.Error(err)
	}
}
