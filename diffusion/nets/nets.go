// Package nets holds the networks of the diffusion coursework, built with GoMLX.
//
// The MLPs of the STATES assignment take a 2-D point x_t and the normalized time
// t in [-1, 1] (see package schedule), concatenated into a 3-vector:
//   - Denoiser (eps-prediction): 3 -> 4 x 256 (PReLU) -> 2.
//   - Classifier: 3 -> 100 -> 200 -> 500 -> 5 (ReLU), logits.
//
// Layers are initialized as PyTorch's nn.Linear (weights and biases uniform in
// +-1/sqrt(fan_in)) and nn.PReLU (one slope per layer, 0.25), so hyperparameters carry over
// from the course's PyTorch code. Sizes live in config structs so presets can change them.
package nets

import (
	"fmt"
	"math"

	"github.com/godiffusion/notebooks/diffusion/safeexp"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/nn"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Activation names a hidden-layer activation.
type Activation string

const (
	PReLU Activation = "prelu" // learnable leaky slope, one per layer (PyTorch nn.PReLU())
	ReLU  Activation = "relu"
	SiLU  Activation = "silu"
	GELU  Activation = "gelu"
)

// DenoiserConfig sizes the MLP denoiser. It is JSON-serializable and saved with checkpoints.
type DenoiserConfig struct {
	DataDim      int        `json:"data_dim"`      // dimension of the points (2)
	HiddenWidth  int        `json:"hidden_width"`  // units per hidden layer (256)
	HiddenLayers int        `json:"hidden_layers"` // number of hidden layers (4)
	Activation   Activation `json:"activation"`    // PReLU in the assignment
}

// DefaultDenoiserConfig is the assignment's denoiser: 3 -> 4 x 256 (PReLU) -> 2.
func DefaultDenoiserConfig() DenoiserConfig {
	return DenoiserConfig{DataDim: 2, HiddenWidth: 256, HiddenLayers: 4, Activation: PReLU}
}

// Validate reports a configuration that cannot build a network.
func (c DenoiserConfig) Validate() error {
	if c.DataDim < 1 || c.HiddenWidth < 1 || c.HiddenLayers < 0 {
		return fmt.Errorf("nets: invalid denoiser config %+v", c)
	}
	return validActivation(c.Activation)
}

// ClassifierConfig sizes the MLP classifier on (x_t, t). JSON-serializable.
type ClassifierConfig struct {
	DataDim    int        `json:"data_dim"`    // dimension of the points (2)
	Hidden     []int      `json:"hidden"`      // widths of the hidden layers (100, 200, 500)
	NumClasses int        `json:"num_classes"` // 5 states
	Activation Activation `json:"activation"`  // ReLU
}

// DefaultClassifierConfig is the assignment's classifier: 3 -> 100 -> 200 -> 500 -> 5 (ReLU).
func DefaultClassifierConfig() ClassifierConfig {
	return ClassifierConfig{DataDim: 2, Hidden: []int{100, 200, 500}, NumClasses: 5, Activation: ReLU}
}

// Validate reports a configuration that cannot build a network.
func (c ClassifierConfig) Validate() error {
	if c.DataDim < 1 || c.NumClasses < 2 {
		return fmt.Errorf("nets: invalid classifier config %+v", c)
	}
	for _, h := range c.Hidden {
		if h < 1 {
			return fmt.Errorf("nets: invalid classifier hidden width %d in %+v", h, c)
		}
	}
	return validActivation(c.Activation)
}

func validActivation(a Activation) error {
	switch a {
	case PReLU, ReLU, SiLU, GELU:
		return nil
	}
	return fmt.Errorf("nets: unknown activation %q (want prelu, relu, silu or gelu)", a)
}

// Linear is a dense layer y = x W^T + b initialized as PyTorch's nn.Linear: W and b uniform
// in +-1/sqrt(fan_in). Variables "weights" [out, in] (PyTorch's layout; fewer transposes in the
// go backend's gradients than [in, out]) and "biases" [out] live in scope.
func Linear(scope *model.Scope, x *Node, outDim int) *Node {
	g := x.Graph()
	inDim := x.Shape().Dimensions[x.Rank()-1]
	bound := 1 / math.Sqrt(float64(inDim))
	store := scope.Store()
	init := func(g *Graph, shape shapes.Shape) *Node {
		u := store.RandomUniform(g, shape) // [0, 1)
		return AddScalar(MulScalar(u, 2*bound), -bound)
	}
	sc := scope.WithInitializer(init)
	w := sc.VariableWithShape("weights", shapes.Make(x.DType(), outDim, inDim)).NodeValue(g)
	b := sc.VariableWithShape("biases", shapes.Make(x.DType(), outDim)).NodeValue(g)
	return nn.Dense(x, w, b, compute.DenseLayoutOutputsInput)
}

// ApplyActivation applies a hidden-layer activation; PReLU creates its slope variable "prelu" in scope.
func ApplyActivation(scope *model.Scope, act Activation, x *Node) *Node {
	switch act {
	case ReLU:
		// The values and gradients of GoMLX's Max(x, 0), including the gradient 1 at x = 0, but
		// one Where in the gradient instead of Max's chain of Sign ops, which the go backend runs
		// element by element (BenchmarkReLUGradient: see docs/STATUS.md).
		zeros := ZerosLike(x)
		return Where(GreaterOrEqual(x, zeros), x, zeros)
	case SiLU:
		return safeexp.SiLU(x)
	case GELU:
		return activation.Gelu(x)
	case PReLU:
		g := x.Graph()
		slope := scope.WithInitializer(func(g *Graph, shape shapes.Shape) *Node {
			return Scalar(g, shape.DType, 0.25)
		}).VariableWithShape("prelu", shapes.Make(x.DType())).NodeValue(g)
		// x if x > 0, slope * x otherwise (Where: cheaper gradients than max/min on the go backend).
		return Where(GreaterThan(x, ZerosLike(x)), x, Mul(slope, x))
	}
	exceptions.Panicf("nets: unknown activation %q", act)
	return nil
}

// mlpInput concatenates x [B, D] and the normalized time [B] or [B, 1] into [B, D+1].
func mlpInput(x, tNorm *Node) *Node {
	if x.Rank() != 2 {
		exceptions.Panicf("nets: points must have shape [B, D], got %s", x.Shape())
	}
	if tNorm.Rank() == 1 {
		tNorm = InsertAxes(tNorm, -1)
	}
	if tNorm.IsScalar() {
		tNorm = BroadcastToDims(Reshape(tNorm, 1, 1), x.Shape().Dimensions[0], 1)
	}
	return Concatenate([]*Node{x, ConvertDType(tNorm, x.DType())}, -1)
}

// Denoiser predicts the noise eps of x_t [B, D] at normalized times tNorm ([B], [B, 1] or a
// scalar). Variables live under scope ("layer_i/...", "output/...").
func Denoiser(scope *model.Scope, cfg DenoiserConfig, x, tNorm *Node) *Node {
	if x.Shape().Dimensions[x.Rank()-1] != cfg.DataDim {
		exceptions.Panicf("nets: denoiser built for %d-D points, got shape %s", cfg.DataDim, x.Shape())
	}
	h := mlpInput(x, tNorm)
	for i := range cfg.HiddenLayers {
		sc := scope.In("layer_%d", i)
		h = ApplyActivation(sc, cfg.Activation, Linear(sc, h, cfg.HiddenWidth))
	}
	return Linear(scope.In("output"), h, cfg.DataDim)
}

// Classifier returns the class logits [B, NumClasses] of x_t [B, D] at normalized times tNorm.
func Classifier(scope *model.Scope, cfg ClassifierConfig, x, tNorm *Node) *Node {
	if x.Shape().Dimensions[x.Rank()-1] != cfg.DataDim {
		exceptions.Panicf("nets: classifier built for %d-D points, got shape %s", cfg.DataDim, x.Shape())
	}
	h := mlpInput(x, tNorm)
	for i, width := range cfg.Hidden {
		sc := scope.In("layer_%d", i)
		h = ApplyActivation(sc, cfg.Activation, Linear(sc, h, width))
	}
	return Linear(scope.In("output"), h, cfg.NumClasses)
}
