package nets

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"

	"github.com/godiffusion/notebooks/diffusion/conv"
)

// The UNets of CS180 project 5B ("Diffusion Models from Scratch"), built from package conv's
// blocks (channels-first frame layout, custom gradients: see its documentation for why and for
// the measured speeds):
//
//	x (C channels, S x S)                     S = ImageSize, divisible by 4 (28 for MNIST)
//	e1 = ConvBlock(C -> D)                     S x S         ConvBlock = Conv, Conv
//	e2 = DownBlock(D -> D)                     S/2           DownBlock = DownConv, ConvBlock
//	e3 = DownBlock(D -> 2D)                    S/4           UpBlock   = UpConv, ConvBlock
//	u  = Unflatten(Flatten(e3))                S/4, 2D       Flatten   = AvgPool(S/4) + GELU
//	                                                         Unflatten = ConvTranspose(S/4, S/4) + BN + GELU
//	u1 = UpBlock(cat(u, e3): 4D -> D)          S/2
//	u2 = UpBlock(cat(u1, e2): 2D -> D)         S
//	out = Conv3x3(ConvBlock(cat(u2, e1): 2D -> D) -> C)
//
// Conv = Conv2d 3x3 + BatchNorm2d + GELU; DownConv = Conv2d 3x3 stride 2 + BN + GELU; UpConv =
// ConvTranspose2d 4x4 stride 2 padding 1 + BN + GELU.
//
// Conditioning (part 2 and the DDPM report) modulates u and u1 with FCBlocks (Linear, GELU,
// Linear) of the time t and of the class vector c:
//   - time only: u = u + fc1_t(t), u1 = u1 + fc2_t(t);
//   - time and class, ModulationScale (CS180): u = fc1_c(c)*u + fc1_t(t), u1 = fc2_c(c)*u1 + fc2_t(t);
//   - time and class, ModulationAdd: u = u + fc1_c(c) + fc1_t(t), likewise for u1 (class
//     embeddings added to the feature maps).
//
// t enters raw (a [B] or [B, 1] float, e.g. t/T in [0, 1]) or, with SinusoidalTimeDim > 0, as
// its sinusoidal embedding of that size (Transformer-style, frequencies 1 .. 1/10000).

// Modulation says how class embeddings condition the UNet's feature maps.
type Modulation string

const (
	// ModulationScale multiplies the feature maps by the class embedding, then adds the time
	// embedding (CS180 part 2): u = c1*u + t1.
	ModulationScale Modulation = "scale"
	// ModulationAdd adds the class embedding to the feature maps: u = u + c1 + t1.
	ModulationAdd Modulation = "add"
)

// UNetConfig sizes a UNet. It is JSON-serializable and saved with checkpoints.
type UNetConfig struct {
	Channels   int `json:"channels"`    // image channels (1 for MNIST)
	ImageSize  int `json:"image_size"`  // height = width, divisible by 4 (28)
	Hidden     int `json:"hidden"`      // D: 128 in the spec
	NumClasses int `json:"num_classes"` // class conditioning with one-hot vectors of this size; 0: none
	// TimeConditioned adds the FCBlocks of t (required when NumClasses > 0).
	TimeConditioned bool `json:"time_conditioned"`
	// SinusoidalTimeDim > 0 embeds t sinusoidally with this many features before the FCBlocks.
	SinusoidalTimeDim int `json:"sinusoidal_time_dim,omitempty"`
	// Modulation of the class embeddings ("scale" by default).
	Modulation Modulation `json:"modulation,omitempty"`
	// Activation after each batch normalization: conv.GELUTanh (default, PyTorch's
	// approximate="tanh": the fastest here), conv.GELUExact or conv.GELUFast.
	Activation conv.Activation `json:"activation"`
}

// DefaultUNetConfig returns the unconditional CS180 part 1 UNet for MNIST with hidden width d.
func DefaultUNetConfig(d int) UNetConfig {
	return UNetConfig{Channels: 1, ImageSize: 28, Hidden: d, Activation: conv.GELUTanh}
}

// Validate reports a configuration that cannot build a network.
func (c UNetConfig) Validate() error {
	if c.Channels < 1 || c.Hidden < 1 || c.ImageSize < 4 || c.ImageSize%4 != 0 || c.NumClasses < 0 || c.SinusoidalTimeDim < 0 || c.SinusoidalTimeDim%2 != 0 {
		return fmt.Errorf("nets: invalid UNet config %+v", c)
	}
	if c.NumClasses > 0 && !c.TimeConditioned {
		return fmt.Errorf("nets: a class-conditioned UNet must also be time-conditioned: %+v", c)
	}
	switch c.Modulation {
	case "", ModulationScale, ModulationAdd:
	default:
		return fmt.Errorf("nets: unknown UNet modulation %q", c.Modulation)
	}
	switch c.Activation {
	case conv.GELUFast, conv.GELUTanh, conv.GELUExact:
	default:
		return fmt.Errorf("nets: UNet activation %q (want %q, %q or %q)", c.Activation, conv.GELUFast, conv.GELUTanh, conv.GELUExact)
	}
	return nil
}

// UNet returns the UNet's output [B, S, S, C] for images x [B, S, S, C] (channels last), the
// times t ([B] or [B, 1]; nil unless TimeConditioned) and the class vectors c ([B, NumClasses],
// typically one-hot, all zeros for "unconditional"; nil unless NumClasses > 0). Variables live
// under scope; batch normalization uses batch statistics and updates its running averages when
// scope.IsTraining(g), and the running averages otherwise.
func UNet(scope *model.Scope, cfg UNetConfig, x, t, c *Node) *Node {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	s, d := cfg.ImageSize, cfg.Hidden
	if x.Rank() != 4 || x.Shape().Dimensions[1] != s || x.Shape().Dimensions[2] != s || x.Shape().Dimensions[3] != cfg.Channels {
		exceptions.Panicf("nets: UNet built for [B, %d, %d, %d] images, got %s", s, s, cfg.Channels, x.Shape())
	}
	if (t != nil) != cfg.TimeConditioned || (c != nil) != (cfg.NumClasses > 0) {
		exceptions.Panicf("nets: UNet config %+v does not match the conditioning inputs (t given: %v, c given: %v)", cfg, t != nil, c != nil)
	}
	lc := conv.DefaultLayerConfig()
	lc.Activation = cfg.Activation

	convBlock := func(sc *model.Scope, in conv.Map, out int) conv.Map {
		return conv.Conv(sc.In("conv_1"), conv.Conv(sc.In("conv_0"), in, out, lc), out, lc)
	}
	downBlock := func(sc *model.Scope, in conv.Map, out int) conv.Map {
		return convBlock(sc, conv.DownConv(sc.In("down"), in, out, lc), out)
	}
	upBlock := func(sc *model.Scope, in conv.Map, out int) conv.Map {
		return convBlock(sc, conv.UpConv(sc.In("up"), in, out, lc), out)
	}

	e1 := convBlock(scope.In("e1"), conv.FromNHWC(x), d)
	e2 := downBlock(scope.In("e2"), e1, d)
	e3 := downBlock(scope.In("e3"), e2, 2*d)
	u := conv.UnflattenBlock(scope.In("unflatten"), conv.Flatten(e3, s/4, lc), s/4, lc)
	var scale1, shift1, scale2, shift2 *Node // [channels, B]
	if cfg.TimeConditioned {
		temb := timeInput(cfg, t)
		shift1 = Transpose(FCBlock(scope.In("fc1_t"), temb, 2*d), 0, 1)
		shift2 = Transpose(FCBlock(scope.In("fc2_t"), temb, d), 0, 1)
		if c != nil {
			c1 := Transpose(FCBlock(scope.In("fc1_c"), ConvertDType(c, x.DType()), 2*d), 0, 1)
			c2 := Transpose(FCBlock(scope.In("fc2_c"), ConvertDType(c, x.DType()), d), 0, 1)
			if cfg.Modulation == ModulationAdd {
				shift1, shift2 = Add(shift1, c1), Add(shift2, c2)
			} else {
				scale1, scale2 = c1, c2
			}
		}
		u = conv.Modulate(u, scale1, shift1)
	}
	u1 := upBlock(scope.In("u1"), conv.Concat(u, e3), d)
	if cfg.TimeConditioned {
		u1 = conv.Modulate(u1, scale2, shift2)
	}
	u2 := upBlock(scope.In("u2"), conv.Concat(u1, e2), d)
	o := convBlock(scope.In("out_block"), conv.Concat(u2, e1), d)
	return conv.Conv2D(scope.In("out"), o, cfg.Channels).NHWC()
}

// FCBlock is CS180's FCBlock: Linear(in, out), GELU (exact), Linear(out, out), with PyTorch's
// initialization; x is [B, in].
func FCBlock(scope *model.Scope, x *Node, out int) *Node {
	sc := scope.In("fc_0")
	h := ApplyActivation(sc, GELU, Linear(sc, x, out))
	return Linear(scope.In("fc_1"), h, out)
}

// timeInput returns t as [B, 1], or its sinusoidal embedding [B, SinusoidalTimeDim].
func timeInput(cfg UNetConfig, t *Node) *Node {
	if t.Rank() == 1 {
		t = InsertAxes(t, -1)
	}
	if t.Rank() != 2 || t.Shape().Dimensions[1] != 1 {
		exceptions.Panicf("nets: UNet times must be [B] or [B, 1], got %s", t.Shape())
	}
	if cfg.SinusoidalTimeDim == 0 {
		return t
	}
	return SinusoidalEmbedding(t, cfg.SinusoidalTimeDim)
}

// SinusoidalEmbedding returns the Transformer-style embedding [B, dim] of t [B, 1]: sin(t*f_i)
// for the first half and cos(t*f_i) for the second, with frequencies f_i = 10000^(-i/(dim/2)).
func SinusoidalEmbedding(t *Node, dim int) *Node {
	half := dim / 2
	freqs := make([]float64, half)
	for i := range freqs {
		freqs[i] = math.Exp(-math.Log(10000) * float64(i) / float64(half))
	}
	f := ConstAsDType(t.Graph(), t.DType(), [][]float64{freqs})
	arg := Mul(BroadcastToDims(t, t.Shape().Dimensions[0], half), BroadcastToShape(f, shapes.Make(t.DType(), t.Shape().Dimensions[0], half)))
	return Concatenate([]*Node{Sin(arg), Cos(arg)}, 1)
}
