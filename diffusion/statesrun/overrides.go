package statesrun

import (
	"fmt"
	"math"
)

// Overrides are the training and sampling flags of notebooks 01-02 and cmd/states, named as
// the notebooks' flags. Zero keeps the preset's value; a negative, NaN or infinite value is
// an error naming the flag.
type Overrides struct {
	Steps, Batch    int     // denoiser training steps and batch size (--steps, --batch)
	LR, TimeSkew    float64 // denoiser learning rate (--lr) and time-step skew k >= 1 (--time_skew)
	CSteps, CBatch  int     // classifier training steps and batch size (--csteps, --cbatch)
	CLR             float64 // classifier learning rate (--clr)
	Samples         int     // samples per set (--samples)
	Workers         int     // parallel training and sampling shards (cmd/states -workers)
	DataPoints      int     // if > 0, the number of training points the batch sizes must not exceed
	CheckpointEvery int     // if > 0, save the resumable training state every this many steps
}

// Apply checks o and writes its non-zero values into c.
func (c *Config) Apply(o Overrides) error {
	for _, f := range []struct {
		name string
		v    int
		dst  []*int
	}{
		{"steps", o.Steps, []*int{&c.Model.DenoiserTrain.Steps}},
		{"batch", o.Batch, []*int{&c.Model.DenoiserTrain.BatchSize}},
		{"csteps", o.CSteps, []*int{&c.Model.ClassifierTrain.Steps}},
		{"cbatch", o.CBatch, []*int{&c.Model.ClassifierTrain.BatchSize}},
		{"samples", o.Samples, []*int{&c.NumSamples}},
		{"workers", o.Workers, []*int{&c.Model.DenoiserTrain.Workers, &c.Model.ClassifierTrain.Workers, &c.Model.Speed.Workers}},
		{"checkpoint_every", o.CheckpointEvery, []*int{&c.CheckpointEvery}},
	} {
		if f.v < 0 {
			return fmt.Errorf("statesrun: --%s %d: want >= 1 (0: the preset's)", f.name, f.v)
		}
		if (f.name == "batch" || f.name == "cbatch") && o.DataPoints > 0 && f.v > o.DataPoints {
			return fmt.Errorf("statesrun: --%s %d: larger than the %d training points", f.name, f.v, o.DataPoints)
		}
		if f.v > 0 {
			for _, d := range f.dst {
				*d = f.v
			}
		}
	}
	for _, f := range []struct {
		name string
		v    float64
		dst  *float64
	}{{"lr", o.LR, &c.Model.DenoiserTrain.LR}, {"clr", o.CLR, &c.Model.ClassifierTrain.LR}, {"time_skew", o.TimeSkew, &c.Model.DenoiserTrain.TimeSkew}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("statesrun: --%s %g: want a finite number > 0 (0: the preset's)", f.name, f.v)
		}
		if f.name == "time_skew" && f.v != 0 && f.v < 1 {
			return fmt.Errorf("statesrun: --time_skew %g: want an exponent >= 1 (1: uniform time steps; 0: the preset's)", f.v)
		}
		if f.v > 0 {
			*f.dst = f.v
		}
	}
	return nil
}
