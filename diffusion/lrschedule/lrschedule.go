// Package lrschedule is the one home of the learning-rate schedules of every trainer (the
// STATES MLPs, the MNIST UNets, the MNIST evaluator): a schedule kind with one meaning per
// field, the rate at each step, and setting it on a GoMLX optimizer.
package lrschedule

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// Kind names a learning-rate schedule.
type Kind string

const (
	// Constant keeps the learning rate fixed (the default, "").
	Constant Kind = "constant"
	// Exponential decays the learning rate geometrically from LR at the first step to
	// LR*FinalFraction at the last (CS180: torch ExponentialLR with gamma = 0.1^(1/epochs),
	// a final fraction of 0.1).
	Exponential Kind = "exponential"
	// Cosine decays it along a half cosine from LR to LR*FinalFraction.
	Cosine Kind = "cosine"
)

// Valid reports a kind this package does not know ("" is Constant): "want constant, cosine or
// exponential".
func (k Kind) Valid() error {
	switch k {
	case "", Constant, Cosine, Exponential:
		return nil
	}
	return fmt.Errorf("want %s, %s or %s", Constant, Cosine, Exponential)
}

// Schedule is a learning-rate schedule over Steps optimizer steps.
type Schedule struct {
	Kind Kind
	LR   float64 // the first step's rate
	// FinalFraction is the last step's rate as a fraction of LR (Exponential, Cosine; 0 means
	// 0, which Exponential does not accept).
	FinalFraction float64
	Steps         int
}

// Validate reports a schedule that At cannot follow, naming the field.
func (s Schedule) Validate() error {
	if err := s.Kind.Valid(); err != nil {
		return fmt.Errorf("lrschedule: unknown schedule %q: %w", s.Kind, err)
	}
	if s.Kind == Exponential && !(s.FinalFraction > 0) {
		return fmt.Errorf("lrschedule: an exponential schedule needs a final fraction in (0, 1], got %g", s.FinalFraction)
	}
	if !(s.LR > 0) || math.IsInf(s.LR, 0) {
		return fmt.Errorf("lrschedule: learning rate must be a finite number > 0, got %g", s.LR)
	}
	if !(s.FinalFraction >= 0 && s.FinalFraction <= 1) {
		return fmt.Errorf("lrschedule: final fraction %g outside [0, 1]", s.FinalFraction)
	}
	if s.Steps < 1 {
		return fmt.Errorf("lrschedule: steps must be >= 1, got %d", s.Steps)
	}
	return nil
}

// Varies reports whether the rate changes from step to step.
func (s Schedule) Varies() bool { return s.Kind != "" && s.Kind != Constant && s.Steps > 1 }

// At returns the learning rate of step (0-based): LR at step 0, LR*FinalFraction at step
// Steps-1.
func (s Schedule) At(step int) float64 {
	if !s.Varies() {
		return s.LR
	}
	f := s.FinalFraction
	frac := float64(step) / float64(s.Steps-1)
	if s.Kind == Exponential {
		return s.LR * math.Pow(f, frac)
	}
	return s.LR * (f + (1-f)*0.5*(1+math.Cos(math.Pi*frac)))
}

// Set sets the learning-rate variable of the optimizer whose state is in store (GoMLX's
// optimizers read it every step); it does nothing when the optimizer has not created it yet.
func Set(store *model.Store, lr float64) error {
	for v := range store.IterVariables() {
		if v.Name() == optimizer.ParamLearningRate {
			return v.SetValue(tensors.FromScalar(float32(lr)))
		}
	}
	return nil
}
