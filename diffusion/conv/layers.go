package conv

import (
	"math"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
)

// LayerConfig configures the scoped layers: the activation after each normalization and the
// batch normalization hyperparameters.
type LayerConfig struct {
	Activation Activation
	BatchNorm  BatchNormConfig
}

// DefaultLayerConfig returns GELUTanh and PyTorch's BatchNorm2d defaults.
func DefaultLayerConfig() LayerConfig {
	return LayerConfig{Activation: GELUTanh, BatchNorm: DefaultBatchNormConfig()}
}

// uniformVar returns the variable name of the given shape in scope, initialized as PyTorch
// initializes convolutions and their biases: uniform in +-1/sqrt(fanIn).
func uniformVar(scope *model.Scope, like *Node, name string, fanIn int, dims ...int) *Node {
	bound := 1 / math.Sqrt(float64(fanIn))
	store := scope.Store()
	init := func(g *Graph, shape shapes.Shape) *Node {
		u := store.RandomUniform(g, shape) // [0, 1)
		return AddScalar(MulScalar(u, 2*bound), -bound)
	}
	return scope.WithInitializer(init).VariableWithShape(name, shapes.Make(like.DType(), dims...)).NodeValue(like.Graph())
}

// BatchNorm applies batch normalization and cfg.Activation to the raw convolution output y with
// variables in scope: "scale" (1) and "offset" (0), trainable, and the running "mean" (0) and
// "variance" (1), updated in training graphs (scope.IsTraining) with momentum
// cfg.BatchNorm.Momentum. convBias (may be nil) is the bias of the convolution that produced y.
func BatchNorm(scope *model.Scope, y Map, convBias *Node, cfg LayerConfig) Map {
	g := y.Data.Graph()
	shape := shapes.Make(y.DType(), y.Channels())
	scale := scope.WithInitializer(initializer.One).VariableWithShape("scale", shape)
	offset := scope.WithInitializer(initializer.Zero).VariableWithShape("offset", shape)
	mean := scope.WithInitializer(initializer.Zero).VariableWithShape("mean", shape).SetTrainable(false)
	variance := scope.WithInitializer(initializer.One).VariableWithShape("variance", shape).SetTrainable(false)
	training := scope.IsTraining(g)
	out, newMean, newVar := BatchNormAct(y, BatchNormParams{
		Scale: scale.NodeValue(g), Offset: offset.NodeValue(g),
		RunningMean: mean.NodeValue(g), RunningVar: variance.NodeValue(g), ConvBias: convBias,
	}, cfg.BatchNorm, cfg.Activation, training)
	if training {
		mean.SetNodeValue(newMean)
		variance.SetNodeValue(newVar)
	}
	return out
}

// Conv2D is nn.Conv2d(C, outChannels, 3, 1, 1) with variables "weights" [M, C, 3, 3] and
// "biases" [M] in scope (PyTorch's initialization); the result has zero padding.
func Conv2D(scope *model.Scope, in Map, outChannels int) Map {
	c := in.Channels()
	w := uniformVar(scope, in.Data, "weights", 9*c, outChannels, c, 3, 3)
	b := uniformVar(scope, in.Data, "biases", 9*c, outChannels)
	return ZeroPadding(Conv3x3(in, w, b))
}

// Conv is CS180's Conv block: nn.Conv2d(C, outChannels, 3, 1, 1), BatchNorm2d, GELU. Variables
// "weights", "biases" and "bn/..." live in scope.
func Conv(scope *model.Scope, in Map, outChannels int, cfg LayerConfig) Map {
	c := in.Channels()
	w := uniformVar(scope, in.Data, "weights", 9*c, outChannels, c, 3, 3)
	b := uniformVar(scope, in.Data, "biases", 9*c, outChannels)
	return BatchNorm(scope.In("bn"), Conv3x3(in, w, nil), b, cfg)
}

// DownConv is CS180's DownConv block: nn.Conv2d(C, outChannels, 3, 2, 1), BatchNorm2d, GELU.
func DownConv(scope *model.Scope, in Map, outChannels int, cfg LayerConfig) Map {
	c := in.Channels()
	w := uniformVar(scope, in.Data, "weights", 9*c, outChannels, c, 3, 3)
	b := uniformVar(scope, in.Data, "biases", 9*c, outChannels)
	return BatchNorm(scope.In("bn"), DownConv3x3(in, w, nil), b, cfg)
}

// UpConv is CS180's UpConv block: nn.ConvTranspose2d(C, outChannels, 4, 2, 1), BatchNorm2d,
// GELU. The kernel variable "weights" has PyTorch's layout [C, M, 4, 4] and initialization
// (fan-in M*16).
func UpConv(scope *model.Scope, in Map, outChannels int, cfg LayerConfig) Map {
	c := in.Channels()
	w := uniformVar(scope, in.Data, "weights", 16*outChannels, c, outChannels, 4, 4)
	b := uniformVar(scope, in.Data, "biases", 16*outChannels, outChannels)
	return BatchNorm(scope.In("bn"), UpConv4x4(in, w, nil), b, cfg)
}

// Flatten is CS180's Flatten block: nn.AvgPool2d(k) over the whole k x k images, then the
// activation; it returns [C, B]. It has no variables.
func Flatten(in Map, k int, cfg LayerConfig) *Node {
	return activateDecomposed(cfg.Activation, AvgPool(in, k))
}

// UnflattenBlock is CS180's Unflatten block: nn.ConvTranspose2d(C, C, k, k, 0) from the 1x1 vectors
// v [C, B] to k x k maps, BatchNorm2d, GELU.
func UnflattenBlock(scope *model.Scope, v *Node, k int, cfg LayerConfig) Map {
	c := v.Shape().Dimensions[0]
	w := uniformVar(scope, v, "weights", c*k*k, c, c, k, k)
	b := uniformVar(scope, v, "biases", c*k*k, c)
	return BatchNorm(scope.In("bn"), Unflatten(v, w, nil), b, cfg)
}
