package statesrun

import (
	"math"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/preset"
)

func TestApplyOverrides(t *testing.T) {
	base, err := PresetConfig(preset.Smoke)
	if err != nil {
		t.Fatal(err)
	}
	c := base
	if err := c.Apply(Overrides{}); err != nil || c.Model.DenoiserTrain.Steps != base.Model.DenoiserTrain.Steps || c.Model.DenoiserTrain.LR != base.Model.DenoiserTrain.LR || c.NumSamples != base.NumSamples {
		t.Fatalf("empty overrides changed the configuration (%v)", err)
	}
	if err := c.Apply(Overrides{Steps: 7, Batch: 16, LR: 0.5, TimeSkew: 2, CSteps: 9, CBatch: 8, CLR: 0.25, Samples: 33, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	d, k := c.Model.DenoiserTrain, c.Model.ClassifierTrain
	if d.Steps != 7 || d.BatchSize != 16 || d.LR != 0.5 || d.TimeSkew != 2 || k.Steps != 9 || k.BatchSize != 8 || k.LR != 0.25 ||
		c.NumSamples != 33 || d.Workers != 2 || k.Workers != 2 || c.Model.Speed.Workers != 2 {
		t.Errorf("overrides not applied: %+v %+v samples %d", d, k, c.NumSamples)
	}
	for flag, o := range map[string]Overrides{
		"--steps":     {Steps: -1},
		"--batch":     {Batch: -64},
		"--csteps":    {CSteps: -2},
		"--cbatch":    {CBatch: 500, DataPoints: 400},
		"--samples":   {Samples: -5},
		"--lr":        {LR: math.NaN()},
		"--clr":       {CLR: -0.1},
		"--time_skew": {TimeSkew: 0.5},
	} {
		c := base
		err := c.Apply(o)
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%+v: %v, want an error naming %s", o, err, flag)
		}
	}
	if err := (&base).Apply(Overrides{Batch: 400, DataPoints: 400}); err != nil {
		t.Errorf("a batch of all the points: %v", err)
	}
}
