package ddpm

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/dataparallel"
	"github.com/godiffusion/notebooks/diffusion/sampling"
)

// Process returns the denoiser's forward process for the shared samplers: sampling.Discrete on
// its schedule (time = step index k, -1 the clean data).
func (d *Denoiser) Process() sampling.Process { return sampling.Discrete{Schedule: d.Schedule} }

// SamplingModel returns the denoiser as a sampling.Model predicting the noise at step index k
// (per point; the network sees linspace(-1, 1, T)[k]), so that every sampler and guidance
// wrapper of diffusion/sampling runs on it. The denoiser is unconditional: it ignores the
// conditions, which are the labels classifier guidance steers to (Classifier.GuidanceGrad).
func (d *Denoiser) SamplingModel() (sampling.Model, error) { return d.shardedModel(1) }

// SamplingModelSharded is SamplingModel evaluating the network on speed.Workers shards of the
// points concurrently (the samples do not depend on it).
func (d *Denoiser) SamplingModelSharded(speed Speed) (sampling.Model, error) {
	return d.shardedModel(speed.Workers)
}

// shardedModel is SamplingModel evaluating the network on up to workers shards of the points
// concurrently.
func (d *Denoiser) shardedModel(workers int) (sampling.Model, error) {
	exec, err := model.NewExec1(d.backend, d.store, func(scope *model.Scope, x, t *Node) *Node {
		return d.Graph(scope.ResetVisited(), x, t)
	})
	if err != nil {
		return nil, err
	}
	return &denoiserModel{d: d, exec: exec, workers: workers}, nil
}

type denoiserModel struct {
	d       *Denoiser
	exec    *model.ExecOneOutput
	workers int
}

// Predicts returns sampling.Noise.
func (m *denoiserModel) Predicts() sampling.Prediction { return sampling.Noise }

// Predict returns the predicted noise of the points x at step indices t.
func (m *denoiserModel) Predict(x []float32, t []float64, cond []int) (eps []float32, err error) {
	defer recoverError(&err, "ddpm: denoiser")
	dim := m.d.Net.DataDim
	if _, _, err := stepInputs(x, t, dim, m.d.Schedule.T()); err != nil {
		return nil, err
	}
	return dataparallel.Concat(len(t), m.workers, func(lo, hi int) ([]float32, error) {
		n, ts, err := stepInputs(x[lo*dim:hi*dim], t[lo:hi], dim, m.d.Schedule.T())
		if err != nil {
			return nil, err
		}
		out, err := m.exec.Call(tensors.FromFlatDataAndDimensions(x[lo*dim:hi*dim], n, dim), ts)
		if err != nil {
			return nil, err
		}
		defer out.FinalizeAll()
		return tensors.CopyFlatData[float32](out)
	})
}

// stepInputs checks points and their integer step indices and returns the number of points
// and the steps as an int32 tensor.
func stepInputs(x []float32, t []float64, dim, T int) (int, *tensors.Tensor, error) {
	n, err := numPoints(x, dim)
	if err != nil {
		return 0, nil, err
	}
	if len(t) != n {
		return 0, nil, fmt.Errorf("ddpm: %d points but %d time steps", n, len(t))
	}
	steps := make([]int, n)
	for i, v := range t {
		if float64(int(v)) != v {
			return 0, nil, fmt.Errorf("ddpm: time step %g is not an integer", v)
		}
		steps[i] = int(v)
	}
	ts, err := timeSteps(steps, T)
	return n, ts, err
}

// GuidanceGrad returns grad_x log p(y | x_t) of the classifier as a sampling.GradFunc (the
// condition of each point is its label y, the time its step index), for
// sampling.ClassifierGuidance: eps - scale sigma_t grad, the assignment's guided sampler.
func (c *Classifier) GuidanceGrad() (sampling.GradFunc, error) { return c.shardedGrad(1) }

// shardedGrad is GuidanceGrad evaluating up to workers shards of the points concurrently.
func (c *Classifier) shardedGrad(workers int) (sampling.GradFunc, error) {
	exec, err := model.NewExec1(c.backend, c.store, func(scope *model.Scope, x, y, t *Node) *Node {
		return GuidanceGradient(scope.ResetVisited(), c, x, y, c.Schedule.TimeInputNode(t, x.DType()))
	})
	if err != nil {
		return nil, err
	}
	return func(x []float32, t []float64, cond []int) (grad []float32, err error) {
		defer recoverError(&err, "ddpm: classifier guidance")
		dim := c.Net.DataDim
		n, _, err := stepInputs(x, t, dim, c.Schedule.T())
		if err != nil {
			return nil, err
		}
		if len(cond) != n {
			return nil, fmt.Errorf("ddpm: classifier guidance needs one label per point: %d labels for %d points", len(cond), n)
		}
		if _, err := labelsTensor(cond, c.Net.NumClasses); err != nil {
			return nil, err
		}
		return dataparallel.Concat(n, workers, func(lo, hi int) ([]float32, error) {
			_, ts, err := stepInputs(x[lo*dim:hi*dim], t[lo:hi], dim, c.Schedule.T())
			if err != nil {
				return nil, err
			}
			y, err := labelsTensor(cond[lo:hi], c.Net.NumClasses)
			if err != nil {
				return nil, err
			}
			out, err := exec.Call(tensors.FromFlatDataAndDimensions(x[lo*dim:hi*dim], hi-lo, dim), y, ts)
			if err != nil {
				return nil, err
			}
			defer out.FinalizeAll()
			return tensors.CopyFlatData[float32](out)
		})
	}, nil
}
