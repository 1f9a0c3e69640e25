// Package tour holds the small computations of the tour notebook (00_tour.ipynb): a
// one-op GoMLX graph and a few steps of training a line fit with GoMLX's trainer and
// Adam optimizer. They prove the plumbing (backend, compilation, training, plotting)
// before the diffusion assignments.
package tour

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/compute"
	"github.com/gomlx/exceptions"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/loss"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// SumOfSquares computes sum(x_i^2) as a GoMLX graph compiled for backend b.
func SumOfSquares(b compute.Backend, x []float32) (sum float32, err error) {
	if len(x) == 0 {
		return 0, errors.New("SumOfSquares: empty input")
	}
	err = exceptions.TryCatch[error](func() {
		exec := graph.MustNewExec(b, func(x *graph.Node) *graph.Node {
			return graph.ReduceAllSum(graph.Square(x))
		})
		defer exec.Finalize()
		out := exec.MustCall1(x)
		sum = tensors.ToScalar[float32](out)
	})
	return sum, err
}

// LineFitConfig configures FitLine: data y = Slope*x + Intercept + Noise*N(0,1) with
// x ~ U(-1, 1), and a one-unit dense layer trained with Adam on the mean squared error.
type LineFitConfig struct {
	Steps        int     // training steps
	Batch        int     // examples per step
	LearningRate float64 // Adam learning rate
	Seed         uint64  // data seed
	Slope        float64 // true slope
	Intercept    float64 // true intercept
	Noise        float64 // standard deviation of the label noise
}

// DefaultLineFit returns a configuration that converges in a few hundred steps.
func DefaultLineFit() LineFitConfig {
	return LineFitConfig{Steps: 300, Batch: 64, LearningRate: 0.05, Seed: 1, Slope: 3, Intercept: -1, Noise: 0.1}
}

// LineFit is the outcome of FitLine.
type LineFit struct {
	Losses    []float64 // training loss of every step
	Slope     float64   // learned slope
	Intercept float64   // learned intercept
}

// FitLine trains the line fit described by cfg on backend b. onStep, when not nil, is
// called after every step with the 1-based step number and the step's loss.
func FitLine(b compute.Backend, cfg LineFitConfig, onStep func(step int, loss float64)) (*LineFit, error) {
	if cfg.Steps <= 0 || cfg.Batch <= 0 || cfg.LearningRate <= 0 {
		return nil, fmt.Errorf("FitLine: steps (%d), batch (%d) and learning rate (%g) must be positive",
			cfg.Steps, cfg.Batch, cfg.LearningRate)
	}
	res := &LineFit{}
	err := exceptions.TryCatch[error](func() {
		store := model.NewStore()
		modelFn := func(scope *model.Scope, x *graph.Node) *graph.Node {
			return layers.DenseWithBias(scope.In("line"), x, 1)
		}
		trainer := train.NewTrainer(b, store, modelFn, loss.MeanSquaredError,
			optimizer.Adam().LearningRate(cfg.LearningRate).Done(), nil, nil)
		rng := rand.New(rand.NewPCG(cfg.Seed, 0))
		xs := make([]float32, cfg.Batch)
		ys := make([]float32, cfg.Batch)
		for step := 1; step <= cfg.Steps; step++ {
			for i := range xs {
				x := rng.Float64()*2 - 1
				xs[i] = float32(x)
				ys[i] = float32(cfg.Slope*x + cfg.Intercept + cfg.Noise*rng.NormFloat64())
			}
			batch := train.Batch{
				Inputs: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(xs, cfg.Batch, 1)},
				Labels: []*tensors.Tensor{tensors.FromFlatDataAndDimensions(ys, cfg.Batch, 1)},
			}
			metrics, err := trainer.TrainStep(batch)
			if err != nil {
				panic(err)
			}
			l := tensors.ToScalar[float32](metrics[0])
			res.Losses = append(res.Losses, float64(l))
			if onStep != nil {
				onStep(step, float64(l))
			}
		}
		// Read the line back by evaluating the model at x = 0 and x = 1.
		exec := model.MustNewExec(b, store, func(scope *model.Scope, x *graph.Node) *graph.Node {
			return modelFn(scope, x)
		})
		defer exec.Finalize()
		out := tensors.MustCopyFlatData[float32](exec.MustCall1(tensors.FromFlatDataAndDimensions([]float32{0, 1}, 2, 1)))
		res.Intercept = float64(out[0])
		res.Slope = float64(out[1] - out[0])
	})
	if err != nil {
		return nil, fmt.Errorf("FitLine: %w", err)
	}
	return res, nil
}
