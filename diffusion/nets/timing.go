package nets

import (
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/godiffusion/notebooks/diffusion/dataparallel"
)

// The UNet computations that the speed comparisons with PyTorch time (BenchmarkUNetTrainStep,
// BenchmarkUNetForward and the command diffusion/cmd/unetbench); bench/torch_unet.py is their
// PyTorch twin: the same network, loss, optimizer and batch.

// UNetTrainStep returns one training step of the UNet cfg at the given batch, ready to be
// timed: x = clean + 0.5 noise, MSE(unet(x), clean), Adam lr 1e-4 (epsilon 1e-8, PyTorch's),
// with fresh noise at every call. With workers > 1 the batch is split into that many shards
// whose gradients are computed concurrently and applied as one update (package dataparallel,
// as the MNIST training cells run it: batch normalization then uses each shard's statistics);
// otherwise the step is one graph. Conditioned networks get fixed times (i/b) and classes
// (one-hot of i for the first NumClasses rows, all-zero "unconditional" vectors after them) per
// shard of b examples: the cost does not depend on their values. The step returns the loss;
// its first call compiles the graph(s) and initializes the variables.
func UNetTrainStep(be compute.Backend, cfg UNetConfig, batch, workers int, seed uint64) (step func() (float32, error), err error) {
	if err := checkTiming(cfg, batch, workers); err != nil {
		return nil, err
	}
	store := model.NewStore()
	opt := optimizer.Adam().LearningRate(1e-4).Epsilon(1e-8).Done()
	rng := rand.New(rand.NewPCG(seed, 2))
	if workers > 1 {
		// Create the variables (batch-norm statistics included) with one inference call first:
		// the sharded loss graph may only update existing ones.
		create, err := unetForward(be, store, cfg, 1, 1, seed)
		if err != nil {
			return nil, err
		}
		if err := create(); err != nil {
			return nil, err
		}
		stepper, err := dataparallel.New(be, store, opt, dataparallel.Config{Workers: workers}, func(scope *model.Scope, in []*Node) (*Node, []*Node) {
			return ReduceMean(timingSquaredError(scope, cfg, in[0], in[1]), 1, 2, 3), nil
		})
		if err != nil {
			return nil, err
		}
		sizes := dataparallel.ShardSizes(batch, workers)
		cleans := make([]*tensors.Tensor, len(sizes))
		for i, n := range sizes {
			cleans[i] = RandomImages(rng, cfg, n, 0.5)
		}
		return func() (float32, error) {
			shards := make([][]any, len(sizes))
			for i, n := range sizes {
				shards[i] = []any{cleans[i], RandomImages(rng, cfg, n, 1)}
			}
			loss, _, _, err := stepper.Step(batch, shards)
			return float32(loss), err
		}, nil
	}
	exec, err := model.NewExec(be, store, func(scope *model.Scope, clean, noise *Node) *Node {
		loss := ReduceAllMean(timingSquaredError(scope, cfg, clean, noise))
		opt.UpdateGraph(scope, clean.Graph(), loss)
		return loss
	})
	if err != nil {
		return nil, err
	}
	clean := RandomImages(rng, cfg, batch, 0.5)
	return func() (float32, error) {
		out, err := exec.Exec(clean, RandomImages(rng, cfg, batch, 1))
		if err != nil {
			return 0, err
		}
		return tensors.ToScalar[float32](out[0]), nil
	}, nil
}

// UNetForward returns one inference call of the UNet cfg (batch normalization with its
// running statistics, as a sampling step calls it) on a fixed random batch, ready to be
// timed: with workers > 1 as that many concurrent calls on shards of the batch
// (dataparallel.Concat, as the notebooks' sampling runs it); conditions as in UNetTrainStep.
// Its first call compiles the graph(s) (one shard after the other).
func UNetForward(be compute.Backend, cfg UNetConfig, batch, workers int, seed uint64) (call func() error, err error) {
	if err := checkTiming(cfg, batch, workers); err != nil {
		return nil, err
	}
	return unetForward(be, model.NewStore(), cfg, batch, workers, seed)
}

// unetForward is UNetForward with the variables of store (created by the first call where
// missing).
func unetForward(be compute.Backend, store *model.Store, cfg UNetConfig, batch, workers int, seed uint64) (call func() error, err error) {
	exec, err := model.NewExec(be, store, func(scope *model.Scope, x *Node) *Node {
		t, c := timingConditions(cfg, x)
		return UNet(scope.In("unet"), cfg, x, t, c)
	})
	if err != nil {
		return nil, err
	}
	sizes := dataparallel.ShardSizes(batch, max(workers, 1))
	xs := make([]*tensors.Tensor, len(sizes))
	rng := rand.New(rand.NewPCG(seed, 4))
	for i, n := range sizes {
		xs[i] = RandomImages(rng, cfg, n, 1)
	}
	run := func(x *tensors.Tensor) error {
		out, err := exec.Exec(x)
		if err != nil {
			return err
		}
		out[0].FinalizeAll()
		return nil
	}
	compiled := false
	return func() error {
		if !compiled { // the first calls compile and create the variables one at a time
			for _, x := range xs {
				if err := run(x); err != nil {
					return err
				}
			}
			compiled = true
			return nil
		}
		_, err := dataparallel.Concat(len(xs), len(xs), func(lo, _ int) ([]struct{}, error) {
			return []struct{}{}, run(xs[lo])
		})
		return err
	}, nil
}

// RandomImages returns n images of the UNet's input shape with normal values of the given
// standard deviation.
func RandomImages(rng *rand.Rand, cfg UNetConfig, n int, scale float32) *tensors.Tensor {
	s := cfg.ImageSize
	data := make([]float32, n*s*s*cfg.Channels)
	for i := range data {
		data[i] = scale * float32(rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(data, n, s, s, cfg.Channels)
}

func checkTiming(cfg UNetConfig, batch, workers int) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if batch < 1 {
		return fmt.Errorf("nets: UNet timing needs a batch >= 1, got %d", batch)
	}
	if workers > batch {
		return fmt.Errorf("nets: UNet timing of a batch of %d in %d shards: want at most one shard per example", batch, workers)
	}
	return nil
}

// timingSquaredError is the per-pixel loss of UNetTrainStep, (unet(clean + 0.5 noise) -
// clean)^2, in a training graph.
func timingSquaredError(scope *model.Scope, cfg UNetConfig, clean, noise *Node) *Node {
	scope.Store().SetTraining(clean.Graph(), true)
	t, c := timingConditions(cfg, clean)
	pred := UNet(scope.In("unet"), cfg, Add(clean, MulScalar(noise, 0.5)), t, c)
	return Square(Sub(pred, clean))
}

// timingConditions returns the fixed times and class vectors of UNetTrainStep (nil where cfg
// takes none).
func timingConditions(cfg UNetConfig, x *Node) (t, c *Node) {
	if !cfg.TimeConditioned {
		return nil, nil
	}
	g, batch := x.Graph(), x.Shape().Dimensions[0]
	t = MulScalar(Iota(g, shapes.Make(x.DType(), batch), 0), 1.0/float64(batch))
	if cfg.NumClasses > 0 {
		c = OneHot(Iota(g, shapes.Make(dtypes.Int32, batch), 0), cfg.NumClasses, x.DType())
	}
	return t, c
}
