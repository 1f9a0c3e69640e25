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
)

// The UNet computations that the speed comparisons with PyTorch time (BenchmarkUNetTrainStep,
// BenchmarkUNetForward and the command diffusion/cmd/unetbench); bench/torch_unet.py is their
// PyTorch twin: the same network, loss, optimizer and batch.

// UNetTrainStep returns one training step of the UNet cfg at the given batch, ready to be
// timed: x = clean + 0.5 noise, MSE(unet(x), clean), Adam lr 1e-4 (epsilon 1e-8, PyTorch's),
// with fresh noise at every call. Conditioned networks get fixed times (i/batch) and classes
// (one-hot of i for the first NumClasses rows, all-zero "unconditional" vectors after them):
// the cost does not depend on their values. The step returns the loss; its first call
// compiles the graph and initializes the variables.
func UNetTrainStep(be compute.Backend, cfg UNetConfig, batch int, seed uint64) (step func() (float32, error), err error) {
	if err := checkTiming(cfg, batch); err != nil {
		return nil, err
	}
	store := model.NewStore()
	opt := optimizer.Adam().LearningRate(1e-4).Epsilon(1e-8).Done()
	exec, err := model.NewExec(be, store, func(scope *model.Scope, clean, noise *Node) *Node {
		g := clean.Graph()
		scope.Store().SetTraining(g, true)
		t, c := timingConditions(cfg, clean)
		pred := UNet(scope.In("unet"), cfg, Add(clean, MulScalar(noise, 0.5)), t, c)
		loss := ReduceAllMean(Square(Sub(pred, clean)))
		opt.UpdateGraph(scope, g, loss)
		return loss
	})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 2))
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
// timed; conditions as in UNetTrainStep. Its first call compiles the graph.
func UNetForward(be compute.Backend, cfg UNetConfig, batch int, seed uint64) (call func() error, err error) {
	if err := checkTiming(cfg, batch); err != nil {
		return nil, err
	}
	store := model.NewStore()
	exec, err := model.NewExec(be, store, func(scope *model.Scope, x *Node) *Node {
		t, c := timingConditions(cfg, x)
		return UNet(scope.In("unet"), cfg, x, t, c)
	})
	if err != nil {
		return nil, err
	}
	x := RandomImages(rand.New(rand.NewPCG(seed, 4)), cfg, batch, 1)
	return func() error {
		out, err := exec.Exec(x)
		if err != nil {
			return err
		}
		out[0].FinalizeAll()
		return nil
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

func checkTiming(cfg UNetConfig, batch int) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if batch < 1 {
		return fmt.Errorf("nets: UNet timing needs a batch >= 1, got %d", batch)
	}
	return nil
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
