package conv

import (
	"math"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/safeexp"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Activation selects the nonlinearity applied after a batch normalization.
type Activation string

const (
	// GELUTanh is PyTorch's nn.GELU(approximate="tanh"):
	// 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))), within 4.7e-4 of the exact GELU: one
	// tanh per element forward, multiply-adds backward. The default (the fastest in training on
	// the go backend, see README.md).
	GELUTanh Activation = "gelu_tanh"
	// GELUFast is GELU with an algebraic-sigmoid approximation of the normal CDF,
	// z * (1 + r/sqrt(1+r^2)) / 2 with r an odd degree-7 polynomial of z, within 2.2e-4 of the
	// exact GELU and its derivative within 1.2e-3, for |z| < 1000: multiply-adds, one square root
	// and one division per element, no transcendental function (14 elementwise ops forward, 12
	// backward, which on the go backend cost about as much as GELUTanh's tanh).
	GELUFast Activation = "gelu_fast"
	// GELUExact is the exact GELU z*Phi(z) (PyTorch's nn.GELU()), with erf forward and erf plus
	// exp backward.
	GELUExact Activation = "gelu"
	// NoActivation applies only the normalization.
	NoActivation Activation = "none"
)

func (a Activation) check() {
	switch a {
	case GELUFast, GELUTanh, GELUExact, NoActivation:
		return
	}
	exceptions.Panicf("conv: unknown activation %q (want %q, %q, %q or %q)", a, GELUFast, GELUTanh, GELUExact, NoActivation)
}

const (
	geluK = 0.7978845608028654 // sqrt(2/pi)
	geluC = 0.044715

	// GELUFast: r(z) = z (c0 + c1 z^2 + c2 z^4 + c3 z^6), fitted (minimax on [-14, 14]) to the
	// exact GELU: c = (0.7931926, 0.13304132, 0.00642926, 0.00268378). Evaluated on w = lambda*z
	// with lambda = c3^(1/6), so that the polynomial is monic: r = R/lambda with
	// R = w (p0 + p1 t + p2 t^2 + t^3), t = w^2, and Phi = (1 + R/sqrt(lambda^2+R^2)) / 2.
	fastLambda = 0.3727843772838777
	fastP0     = 0.793192596795165
	fastP1     = 0.9573508879218667
	fastP2     = 0.3329126807606148
	fastLam2   = fastLambda * fastLambda
	fastMu     = 0.5 / fastLambda
)

// activationImpl is how an activation plugs into the normalization: the normalization produces
// w = inScale*z (z the normalized, scaled and shifted value) and pad at non-pixel positions,
// where the activation must be exactly 0 with derivative 0 (so the zero padding survives and no
// gradient leaks through it); apply returns the activation of w and the closure computing
// g * d act/d w for the backward pass from forward intermediates.
type activationImpl struct {
	inScale, pad float64
	apply        func(w *Node) (out *Node, grad func(g *Node) *Node)
	infer        func(w *Node) *Node // forward only (nil: apply)
}

// inference returns act(w) for graphs without gradients: fused single ops where they exist.
func (impl activationImpl) inference(w *Node) *Node {
	if impl.infer != nil {
		return impl.infer(w)
	}
	out, _ := impl.apply(w)
	return out
}

func implOf(act Activation) activationImpl {
	switch act {
	case NoActivation:
		return activationImpl{inScale: 1, pad: 0, apply: func(w *Node) (*Node, func(g *Node) *Node) {
			return w, nil // the caller masks g
		}}
	case GELUExact:
		// erf and tanh saturate to -1 exactly well before -30, in float32 and float64.
		return activationImpl{inScale: 1, pad: -30, infer: fusedGelu(true), apply: func(z *Node) (*Node, func(g *Node) *Node) {
			return BackendFusedGelu(z, true), func(g *Node) *Node {
				phi := AddScalar(MulScalar(Erf(MulScalar(z, 1/math.Sqrt2)), 0.5), 0.5)
				v := MulScalar(Mul(z, z), -0.5)
				e := Exp(v)
				if expPenalty(z.Graph()) {
					e = safeexp.ExpNonPositive(v)
				}
				pdf := MulScalar(e, 1/math.Sqrt(2*math.Pi))
				return Mul(g, Add(phi, Mul(z, pdf)))
			}
		}}
	case GELUTanh:
		// 0.5 z (1 + tanh(u)) = z sigmoid(2u), u = k (z + c z^3), keeping sigmoid(2u) for the
		// backward pass (measured: 14% faster UNet training steps than with the Tanh op). On the
		// go backend sigmoid is its Logistic op (one math.Exp per element); where expPenalty says
		// so it is 1/(2 + expm1(-2u)) (safeexp.SigmoidOfNeg). At the pad value sigmoid is 0 (or
		// 6e-39 with expm1's capped argument): the output and its derivative are 0. Inference
		// takes the same form on the go backend (see fusedGelu).
		return activationImpl{inScale: 1, pad: -30, infer: fusedGelu(false), apply: func(z *Node) (*Node, func(g *Node) *Node) {
			s := Mul(z, z)
			var sig *Node // sigmoid(2u)
			if expPenalty(z.Graph()) {
				sig = safeexp.SigmoidOfNeg(Mul(z, AddScalar(MulScalar(s, -2*geluK*geluC), -2*geluK)))
			} else {
				sig = Logistic(Mul(z, AddScalar(MulScalar(s, 2*geluK*geluC), 2*geluK)))
			}
			return Mul(z, sig), func(g *Node) *Node {
				// d/dz = sig + z sig (1 - sig) 2k (1 + 3c z^2)
				du := AddScalar(MulScalar(s, 6*geluK*geluC), 2*geluK)
				return Mul(g, Add(sig, Mul(Mul(z, Mul(sig, OneMinus(sig))), du)))
			}
		}}
	case GELUFast:
		// At w = -60: R ~ -3e12, R^2 ~ 8e24 (no float32 overflow), R/sqrt(lambda^2+R^2) = -1.
		return activationImpl{inScale: fastLambda, pad: -60, apply: func(w *Node) (*Node, func(g *Node) *Node) {
			t := Mul(w, w)
			p := AddScalar(Mul(AddScalar(Mul(AddScalar(t, fastP2), t), fastP1), t), fastP0)
			r := Mul(w, p)
			d := AddScalar(Mul(r, r), fastLam2)
			sq := Sqrt(d)
			h := AddScalar(MulScalar(Div(r, sq), fastMu), fastMu) // Phi(z)/lambda
			return Mul(w, h), func(g *Node) *Node {
				// d/dw [w h] = h + mu lambda^2 w R'/(d sqrt(d)), R' = p + t (6t^2 + 4 p2 t + 2 p1).
				inner := AddScalar(Mul(AddScalar(MulScalar(t, 6), 4*fastP2), t), 2*fastP1)
				rp := Add(p, Mul(t, inner))
				dq := Div(rp, Mul(d, sq))
				return Mul(g, Add(h, MulScalar(Mul(w, dq), fastMu*fastLam2)))
			}
		}}
	}
	act.check()
	return activationImpl{}
}

// fusedGelu returns the backend's single-op GELU (exact or tanh approximation), differentiable
// through its decomposed formula (for gradients through inference graphs, e.g. guidance).
// On the go backend the tanh GELU takes the decomposed Logistic form of training instead: the
// fused op calls math.Tanh per element (23 ns fresh, 43 ns after a matrix kernel on an AMD EPYC
// Zen 5, docs/STATUS.md session 12), and since inference calls run as concurrent shards on
// both cores (dataparallel.Concat) its own chunked parallelism gains nothing. Measured there:
// 1000 class-conditioned digits x 3 guided steps with the trained cpu-preset model, 2.05-2.40
// ms per image evaluation fused, 1.44-1.53 decomposed.
func fusedGelu(exact bool) func(z *Node) *Node {
	return func(z *Node) *Node {
		if !exact && backend.IsGo(z.Graph().Backend()) {
			out, _ := implOf(GELUTanh).apply(z)
			return out
		}
		out, _ := InternalFusedOpCaller(func() *Node { return BackendFusedGelu(z, exact) }, func() *Node {
			if exact {
				return activateDecomposed(GELUExact, z)
			}
			out, _ := implOf(GELUTanh).apply(z)
			return out
		}, true)
		return out
	}
}

// expPenalty reports whether the GELU's exp and tanh should avoid math.Exp and math.Tanh: on
// the go backend of a SIMD build (safeexp.Needed) when GODEBUG=asyncpreemptoff=1 is missing
// (preemption then leaves the vector registers' upper halves dirty at any point). With it set,
// the GELU follows element-wise batch-norm ops rather than a matrix kernel and, measured on an
// AMD EPYC Zen 3 (docs/STATUS.md session 11), the plain forms are faster: UNet D=32 forward
// (one sampling step, batch 64) 580-650 ms against 810-923 ms with the Expm1 forms, training
// step 1727-1826 against 1860-1911 ms.
func expPenalty(g *Graph) bool {
	return safeexp.Needed(g) && !backend.AsyncPreemptOff()
}

// activateDecomposed is act(z) with differentiable graph ops only (small tensors, twins).
func activateDecomposed(act Activation, z *Node) *Node {
	if act == GELUExact {
		return Mul(z, AddScalar(MulScalar(Erf(MulScalar(z, 1/math.Sqrt2)), 0.5), 0.5))
	}
	impl := implOf(act)
	out, _ := impl.apply(MulScalar(z, impl.inScale))
	return out
}

// BatchNormConfig holds the batch normalization hyperparameters (PyTorch's defaults by
// DefaultBatchNormConfig).
type BatchNormConfig struct {
	Epsilon  float64 // added to the variance (1e-5)
	Momentum float64 // running stats: new = (1-Momentum)*old + Momentum*batch (0.1)
}

// DefaultBatchNormConfig returns PyTorch's nn.BatchNorm2d defaults: eps 1e-5, momentum 0.1.
func DefaultBatchNormConfig() BatchNormConfig {
	return BatchNormConfig{Epsilon: 1e-5, Momentum: 0.1}
}

// BatchNormParams are the inputs of a batch normalization over M channels, all [M]: the learned
// Scale (gamma) and Offset (beta), the running statistics (not trained), and optionally the bias
// of the convolution that produced the input (nil: none), which training-mode normalization
// cancels exactly; it only enters the running mean, as in PyTorch.
type BatchNormParams struct {
	Scale, Offset           *Node
	RunningMean, RunningVar *Node
	ConvBias                *Node
}

// BatchNormAct normalizes the pixels of in per channel and applies act, returning a map with
// zero padding. In training mode it uses the batch statistics (biased variance) and also returns
// the updated running mean and (unbiased) variance; in inference mode it uses the running
// statistics and returns them unchanged. in may hold garbage at non-pixel positions (the raw
// output of Conv3x3): they are excluded from the statistics and zeroed.
//
// The training-mode gradient is custom: per-channel sums are matmuls with a row of ones, and
// per-channel scale/shift is one batched matmul, which avoid the go backend's slow broadcasts
// and reductions.
func BatchNormAct(in Map, p BatchNormParams, cfg BatchNormConfig, act Activation, training bool) (out Map, newMean, newVar *Node) {
	in.check()
	act.check()
	g, dt := in.Data.Graph(), in.DType()
	m, l, n := in.Channels(), in.Length, in.NumPixels()
	for _, x := range []*Node{p.Scale, p.Offset, p.RunningMean, p.RunningVar, p.ConvBias} {
		if x != nil && !x.Shape().Equal(shapes.Make(dt, m)) {
			exceptions.Panicf("conv: batch norm parameter %s does not match %d channels of %s", x.Shape(), m, dt)
		}
	}
	mask := in.maskConst(g, dt, m) // [M, L]
	out = Map{Geometry: in.Geometry}
	if !training {
		a := Div(p.Scale, Sqrt(AddScalar(p.RunningVar, cfg.Epsilon)))
		shift := p.RunningMean
		if p.ConvBias != nil {
			shift = Sub(shift, p.ConvBias)
		}
		b := Sub(p.Offset, Mul(shift, a))
		impl := implOf(act)
		w := maskedAffine(Mul(in.Data, mask), mask, MulScalar(a, impl.inScale), MulScalar(b, impl.inScale), impl.pad)
		out.Data = impl.inference(w)
		return out, p.RunningMean, p.RunningVar
	}

	impl := implOf(act)
	var mean, variance *Node // [M], batch statistics
	var actGrad func(g *Node) *Node
	var ym, a, r *Node
	forward := func() *Node {
		ym = Mul(in.Data, mask)
		mean, variance = channelMoments(ym, n)
		r = Rsqrt(AddScalar(variance, cfg.Epsilon))
		a = Mul(p.Scale, r)
		b := Sub(p.Offset, Mul(mean, a))
		var o *Node
		o, actGrad = impl.apply(maskedAffine(ym, mask, MulScalar(a, impl.inScale), MulScalar(b, impl.inScale), impl.pad))
		return o
	}
	decomposed := func(ids []*Node) *Node {
		y, scale, offset := ids[0], ids[1], ids[2]
		ymd := Mul(y, mask)
		mu := DivScalar(ReduceSum(ymd, 1), float64(n))
		v := Sub(DivScalar(ReduceSum(Mul(ymd, ymd), 1), float64(n)), Mul(mu, mu))
		ad := Div(scale, Sqrt(AddScalar(v, cfg.Epsilon)))
		bd := Sub(offset, Mul(mu, ad))
		col := func(x *Node) *Node { return BroadcastToDims(Reshape(x, m, 1), m, l) }
		z := Add(Mul(ymd, col(ad)), Mul(mask, col(bd)))
		if act == GELUExact {
			return Mul(activateDecomposed(act, z), mask)
		}
		out, _ := impl.apply(AddScalar(Add(Mul(MulScalar(z, impl.inScale), mask), MulScalar(mask, -impl.pad)), impl.pad))
		return out
	}
	vjp := func(gOut *Node) []*Node {
		// dw = dL/dw is zero at non-pixel positions (act' = 0 at the pad value); dL/dz = inScale*dw:
		// inScale is folded into the per-channel sums and coefficients below.
		var dw *Node
		if actGrad == nil {
			dw = Mul(gOut, mask)
		} else {
			dw = actGrad(gOut)
		}
		lam := impl.inScale
		sdz := MulScalar(rowSums(dw), lam)
		sdzy := MulScalar(rowDots(dw, ym), lam)
		dOffset := sdz
		// sum dz * yhat = r (sum dz*y - mean sum dz)
		cov := Sub(sdzy, Mul(mean, sdz))
		dScale := Mul(r, cov)
		// dy = a dz - (a/n) sum(dz) - (a r^2 / n) cov (y - mean), on pixels only.
		bCoef := Neg(DivScalar(Mul(Mul(a, Mul(r, r)), cov), float64(n)))
		cCoef := Sub(Neg(DivScalar(Mul(a, sdz), float64(n))), Mul(bCoef, mean))
		dy := rowCombination([]*Node{dw, ym, mask}, []*Node{MulScalar(a, lam), bCoef, cCoef})
		return []*Node{dy, dScale, dOffset}
	}
	out.Data = withGradient([]*Node{in.Data, p.Scale, p.Offset}, forward, decomposed, vjp)

	mom := cfg.Momentum
	batchMean := StopGradient(mean)
	if p.ConvBias != nil {
		batchMean = Add(batchMean, StopGradient(p.ConvBias))
	}
	unbiased := MulScalar(StopGradient(variance), float64(n)/float64(max(n-1, 1)))
	newMean = Add(MulScalar(p.RunningMean, 1-mom), MulScalar(batchMean, mom))
	newVar = Add(MulScalar(p.RunningVar, 1-mom), MulScalar(unbiased, mom))
	return out, newMean, newVar
}

// ones returns a [1, l] row of ones.
func onesRow(g *Graph, dt dtypes.DType, l int) *Node {
	return Ones(g, shapes.Make(dt, 1, l))
}

// rowSums returns the sums of the rows of x [M, L] as [M]: a matmul with a row of ones (the go
// backend's ReduceSum walks an index iterator per element, ~30x slower).
func rowSums(x *Node) *Node {
	d := x.Shape().Dimensions
	return Reshape(DotGeneral(x, []int{1}, nil, onesRow(x.Graph(), x.DType(), d[1]), []int{1}, nil), d[0])
}

// rowDots returns sum_j x[i,j]*y[i,j] as [M]: a batched matmul.
func rowDots(x, y *Node) *Node {
	d := x.Shape().Dimensions
	x3, y3 := Reshape(x, d[0], 1, d[1]), Reshape(y, d[0], 1, d[1])
	return Reshape(DotGeneral(x3, []int{2}, []int{0}, y3, []int{2}, []int{0}), d[0])
}

// channelMoments returns the mean and the biased variance over the n pixels of each row of the
// masked x [M, L] (zeros elsewhere).
func channelMoments(xm *Node, n int) (mean, variance *Node) {
	mean = DivScalar(rowSums(xm), float64(n))
	meanSq := DivScalar(rowDots(xm, xm), float64(n))
	variance = Max(Sub(meanSq, Mul(mean, mean)), ZerosLike(mean))
	return
}

// rowCombination returns sum_k coefs[k][i] * xs[k][i, :] for xs [M, L] and coefs [M]: one
// Concatenate into [M, K, L] and one batched matmul with K-long contractions, instead of 2K
// broadcasts and elementwise passes.
func rowCombination(xs, coefs []*Node) *Node {
	d := xs[0].Shape().Dimensions
	m, l, k := d[0], d[1], len(xs)
	parts := make([]*Node, k)
	cs := make([]*Node, k)
	for i := range xs {
		parts[i] = Reshape(xs[i], m, 1, l)
		cs[i] = Reshape(coefs[i], m, 1, 1)
	}
	stack := Concatenate(parts, 1)                                       // [M, K, L]
	coef := Concatenate(cs, 2)                                           // [M, 1, K]
	y := DotGeneral(coef, []int{2}, []int{0}, stack, []int{1}, []int{0}) // [M, 1, L]
	return Reshape(y, m, l)
}

// maskedAffine returns a*ym + b on pixels and pad elsewhere, for the masked ym [M, L], the mask
// [M, L] and per-channel a, b [M].
func maskedAffine(ym, mask, a, b *Node, pad float64) *Node {
	if pad == 0 {
		return rowCombination([]*Node{ym, mask}, []*Node{a, b})
	}
	return AddScalar(rowCombination([]*Node{ym, mask}, []*Node{a, AddScalar(b, -pad)}), pad)
}
