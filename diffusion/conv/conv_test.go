package conv

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

func TestConv3x3(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range [][4]int{{2, 5, 4, 3}, {1, 6, 6, 1}, {3, 3, 7, 2}} {
		b, h, w, c := size[0], size[1], size[2], size[3]
		m := 4
		x := randArray(rng, 1, b, h, w, c)
		k := randArray(rng, 0.5, m, c, 3, 3)
		bias := randArray(rng, 0.5, m)
		runBlockCase(t, blockCase{
			name:   strings.ReplaceAll(shapeOf(x).String(), " ", ""),
			inputs: []array{x, k, bias},
			fn: func(in []*Node) *Node {
				return ZeroPadding(Conv3x3(FromNHWC(in[0]), in[1], in[2])).NHWC()
			},
			ref: func(in []array) array { return refConv2d(in[0], in[1], in[2], 1, 1) },
		})
	}
	// Two stacked convolutions: the second one reads the first one's grown frame.
	x := randArray(rng, 1, 2, 4, 5, 2)
	k1, k2 := randArray(rng, 0.5, 3, 2, 3, 3), randArray(rng, 0.5, 2, 3, 3, 3)
	runBlockCase(t, blockCase{
		name:   "stacked",
		inputs: []array{x, k1, k2},
		fn: func(in []*Node) *Node {
			return ZeroPadding(Conv3x3(ZeroPadding(Conv3x3(FromNHWC(in[0]), in[1], nil)), in[2], nil)).NHWC()
		},
		ref: func(in []array) array {
			return refConv2d(refConv2d(in[0], in[1], array{}, 1, 1), in[2], array{}, 1, 1)
		},
	})
}

// TestCheckerCatchesWrongGradients runs the gradient checker on GoMLX's native convolution with
// a 2x2 kernel, whose input gradient is wrong in GoMLX v0.28.2 (DESIGN.md), and on a
// deliberately wrong custom gradient: both must be reported.
func TestCheckerCatchesWrongGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	be := testBackend(t)
	x := randArray(rng, 1, 1, 4, 4, 2)
	k := randArray(rng, 0.5, 3, 2, 2, 2)
	native := blockCase{
		name:   "native 2x2",
		inputs: []array{x, k},
		fn: func(in []*Node) *Node {
			// GoMLX kernel layout [kh, kw, C, M].
			return Convolve(in[0], TransposeAllAxes(in[1], 2, 3, 1, 0)).NoPadding().Done()
		},
		ref: func(in []array) array { return refConv2d(in[0], in[1], array{}, 1, 0) },
	}
	if err := checkForward(t, be, native); err != nil {
		t.Fatalf("native forward should be right: %v", err)
	}
	if err := checkGradients(t, be, native, 40); err == nil {
		t.Error("the checker did not catch the wrong input gradient of the native 2x2 convolution")
	} else {
		t.Logf("caught as expected: %v", err)
	}
	wrong := blockCase{
		name:   "wrong vjp",
		inputs: []array{x},
		fn: func(in []*Node) *Node {
			return withGradient(in, func() *Node { return MulScalar(in[0], 2) },
				func(ids []*Node) *Node { return MulScalar(ids[0], 2) },
				func(v *Node) []*Node { return []*Node{MulScalar(v, 2.001)} })
		},
		ref: func(in []array) array {
			out := newArray(in[0].dims...)
			for i, v := range in[0].data {
				out.data[i] = 2 * v
			}
			return out
		},
	}
	if err := checkGradients(t, be, wrong, 10); err == nil {
		t.Error("the checker did not catch a gradient off by 0.05%")
	}
}

// refBatchNormAct is training-mode BatchNorm2d (biased batch variance) followed by act, on
// x [B, H, W, M]; it also returns the batch mean and unbiased variance.
func refBatchNormAct(x, scale, offset array, eps float64, act Activation) (out array, mean, uvar []float64) {
	m := x.dims[3]
	n := len(x.data) / m
	mean, uvar = make([]float64, m), make([]float64, m)
	out = newArray(x.dims...)
	for c := range m {
		s := 0.0
		for i := c; i < len(x.data); i += m {
			s += x.data[i]
		}
		mu := s / float64(n)
		v := 0.0
		for i := c; i < len(x.data); i += m {
			v += (x.data[i] - mu) * (x.data[i] - mu)
		}
		mean[c], uvar[c] = mu, v/float64(n-1)
		r := 1 / math.Sqrt(v/float64(n)+eps)
		for i := c; i < len(x.data); i += m {
			out.data[i] = refAct(act, (x.data[i]-mu)*r*scale.data[c]+offset.data[c])
		}
	}
	return
}

func refAct(act Activation, z float64) float64 {
	switch act {
	case GELUExact:
		return 0.5 * z * (1 + math.Erf(z/math.Sqrt2))
	case GELUTanh:
		return 0.5 * z * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(z+0.044715*z*z*z)))
	case GELUFast:
		// r(z) = z (c0 + c1 z^2 + c2 z^4 + c3 z^6), from the package's rescaled constants.
		l2 := fastLambda * fastLambda
		c0, c1, c2, c3 := fastP0, fastP1*l2, fastP2*l2*l2, l2*l2*l2
		s := z * z
		r := z * (c0 + s*(c1+s*(c2+s*c3)))
		return 0.5 * z * (1 + r/math.Sqrt(1+r*r))
	}
	return z
}

// TestGELUFastAccuracy bounds GELUFast's distance to the exact GELU and its derivative.
func TestGELUFastAccuracy(t *testing.T) {
	be := testBackend(t)
	n := 20001
	zs := make([]float64, n)
	for i := range zs {
		zs[i] = -12 + 24*float64(i)/float64(n-1)
	}
	zs = append(zs, -900, -100, 100, 900)
	exec, err := NewExec(be, func(z *Node) []*Node {
		out := activateDecomposed(GELUFast, z)
		return []*Node{out, Gradient(ReduceAllSum(out), z)[0]}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range []string{"float64", "float32"} {
		var in any = zs
		if dt == "float32" {
			z32 := make([]float32, len(zs))
			for i, z := range zs {
				z32[i] = float32(z)
			}
			in = z32
		}
		out, err := exec.Exec(in)
		if err != nil {
			t.Fatal(err)
		}
		var g, dg []float64
		if dt == "float64" {
			g, dg = tensors.MustCopyFlatData[float64](out[0]), tensors.MustCopyFlatData[float64](out[1])
		} else {
			for _, v := range tensors.MustCopyFlatData[float32](out[0]) {
				g = append(g, float64(v))
			}
			for _, v := range tensors.MustCopyFlatData[float32](out[1]) {
				dg = append(dg, float64(v))
			}
		}
		worst, worstD := 0.0, 0.0
		for i, z := range zs {
			exact := 0.5 * z * (1 + math.Erf(z/math.Sqrt2))
			dExact := 0.5*(1+math.Erf(z/math.Sqrt2)) + z*math.Exp(-z*z/2)/math.Sqrt(2*math.Pi)
			worst = max(worst, math.Abs(g[i]-exact)/math.Max(1, math.Abs(z)*1e-4))
			worstD = max(worstD, math.Abs(dg[i]-dExact))
		}
		if worst > 2.3e-4 || worstD > 1.2e-3 || math.IsNaN(worst+worstD) {
			t.Errorf("%s: GELUFast max error %.3g, derivative %.3g", dt, worst, worstD)
		}
		t.Logf("%s: GELUFast max error %.3g, derivative max error %.3g", dt, worst, worstD)
	}
}

// withGarbage returns the frame of x [B, H, W, C] with non-pixel positions filled with values
// that must not matter (as after Conv3x3).
func withGarbage(x *Node) Map {
	m := FromNHWC(x)
	g := x.Graph()
	mask := m.maskConst(g, x.DType(), m.Channels())
	garbage := MulScalar(OneMinus(mask), 7.5)
	m.Data = Add(m.Data, garbage)
	return m
}

func TestBatchNormAct(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cfg := DefaultBatchNormConfig()
	for _, act := range []Activation{GELUFast, GELUTanh, GELUExact, NoActivation} {
		x := randArray(rng, 2, 3, 4, 5, 3)
		for i := range x.data {
			x.data[i] += float64(i%3) - 1 // per-channel means
		}
		scale, offset := randArray(rng, 1, 3), randArray(rng, 1, 3)
		runBlockCase(t, blockCase{
			name:   string(act),
			inputs: []array{x, scale, offset},
			fn: func(in []*Node) *Node {
				zero := ZerosLike(in[1])
				out, _, _ := BatchNormAct(withGarbage(in[0]), BatchNormParams{Scale: in[1], Offset: in[2],
					RunningMean: zero, RunningVar: OnesLike(in[1])}, cfg, act, true)
				return out.NHWC()
			},
			ref: func(in []array) array {
				out, _, _ := refBatchNormAct(in[0], in[1], in[2], cfg.Epsilon, act)
				return out
			},
		})
	}
}

// TestConvBatchNormAct checks the composition used in the UNet, Conv3x3, BatchNormAct, Conv3x3,
// with gradients with respect to both kernels: the second convolution reads the normalized map's
// zero padding and sends gradient to it, which must not leak through the normalization into the
// first kernel's gradient.
func TestConvBatchNormAct(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 17))
	cfg := DefaultBatchNormConfig()
	for _, act := range []Activation{GELUFast, GELUTanh, GELUExact, NoActivation} {
		x := randArray(rng, 1, 2, 4, 5, 2)
		k1, k2 := randArray(rng, 0.5, 3, 2, 3, 3), randArray(rng, 0.5, 2, 3, 3, 3)
		scale, offset := randArray(rng, 1, 3), randArray(rng, 1, 3)
		runBlockCase(t, blockCase{
			name:   "conv_bn_conv_" + string(act),
			inputs: []array{x, k1, scale, offset, k2},
			fn: func(in []*Node) *Node {
				zero := ZerosLike(in[2])
				h, _, _ := BatchNormAct(Conv3x3(FromNHWC(in[0]), in[1], nil), BatchNormParams{Scale: in[2], Offset: in[3],
					RunningMean: zero, RunningVar: OnesLike(zero)}, cfg, act, true)
				return ZeroPadding(Conv3x3(h, in[4], nil)).NHWC()
			},
			ref: func(in []array) array {
				h, _, _ := refBatchNormAct(refConv2d(in[0], in[1], array{}, 1, 1), in[2], in[3], cfg.Epsilon, act)
				return refConv2d(h, in[4], array{}, 1, 1)
			},
		})
	}
}

func TestBatchNormRunningStatsAndInference(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	be := testBackend(t)
	cfg := DefaultBatchNormConfig()
	x := randArray(rng, 2, 2, 3, 4, 2)
	scale, offset, bias := randArray(rng, 1, 2), randArray(rng, 1, 2), randArray(rng, 1, 2)
	rm, rv := randArray(rng, 1, 2), randArray(rng, 0.5, 2)
	for i := range rv.data {
		rv.data[i] += 1
	}
	exec, err := NewExec(be, func(in []*Node) []*Node {
		p := BatchNormParams{Scale: in[1], Offset: in[2], RunningMean: in[3], RunningVar: in[4], ConvBias: in[5]}
		_, nm, nv := BatchNormAct(withGarbage(in[0]), p, cfg, GELUTanh, true)
		inf, _, _ := BatchNormAct(withGarbage(in[0]), p, cfg, GELUTanh, false)
		return []*Node{nm, nv, inf.NHWC()}
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(x.tensor(), scale.tensor(), offset.tensor(), rm.tensor(), rv.tensor(), bias.tensor())
	if err != nil {
		t.Fatal(err)
	}
	_, mean, uvar := refBatchNormAct(x, scale, offset, cfg.Epsilon, NoActivation)
	gotM, gotV := tensors.MustCopyFlatData[float64](out[0]), tensors.MustCopyFlatData[float64](out[1])
	for c := range 2 {
		wantM := 0.9*rm.data[c] + 0.1*(mean[c]+bias.data[c])
		wantV := 0.9*rv.data[c] + 0.1*uvar[c]
		if math.Abs(gotM[c]-wantM) > 1e-12 || math.Abs(gotV[c]-wantV) > 1e-12 {
			t.Errorf("channel %d: running mean/var %g/%g, want %g/%g", c, gotM[c], gotV[c], wantM, wantV)
		}
	}
	// Gradients through an inference graph (e.g. guidance) must build and run.
	for _, act := range []Activation{GELUFast, GELUTanh, GELUExact} {
		gradExec, err := NewExec(be, func(x, s, o, m, v *Node) *Node {
			out, _, _ := BatchNormAct(withGarbage(x), BatchNormParams{Scale: s, Offset: o, RunningMean: m, RunningVar: v}, cfg, act, false)
			return Gradient(ReduceAllSum(out.NHWC()), x)[0]
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gradExec.Exec(x.tensor(), scale.tensor(), offset.tensor(), rm.tensor(), rv.tensor()); err != nil {
			t.Fatalf("%s: gradient through inference: %v", act, err)
		}
	}
	// Inference: (x + bias - rm) / sqrt(rv + eps) * scale + offset, then GELU.
	inf := tensors.MustCopyFlatData[float64](out[2])
	for i, v := range x.data {
		c := i % 2
		z := (v+bias.data[c]-rm.data[c])/math.Sqrt(rv.data[c]+cfg.Epsilon)*scale.data[c] + offset.data[c]
		if want := refAct(GELUTanh, z); math.Abs(inf[i]-want) > 1e-12 {
			t.Fatalf("inference output %d = %g, want %g", i, inf[i], want)
		}
	}
}

func TestDownConv3x3(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	for _, size := range [][4]int{{2, 6, 6, 3}, {1, 4, 8, 2}, {3, 2, 2, 1}} {
		x := randArray(rng, 1, size[:]...)
		k := randArray(rng, 0.5, 4, size[3], 3, 3)
		bias := randArray(rng, 0.5, 4)
		runBlockCase(t, blockCase{
			name:   strings.ReplaceAll(shapeOf(x).String(), " ", ""),
			inputs: []array{x, k, bias},
			fn: func(in []*Node) *Node {
				return ZeroPadding(DownConv3x3(FromNHWC(in[0]), in[1], in[2])).NHWC()
			},
			ref: func(in []array) array { return refConv2d(in[0], in[1], in[2], 2, 1) },
		})
	}
	// After a stride-1 convolution: the input frame is not aligned to the image pitch.
	x := randArray(rng, 1, 2, 4, 6, 2)
	k1, k2 := randArray(rng, 0.5, 3, 2, 3, 3), randArray(rng, 0.5, 2, 3, 3, 3)
	runBlockCase(t, blockCase{
		name:   "after_conv",
		inputs: []array{x, k1, k2},
		fn: func(in []*Node) *Node {
			return ZeroPadding(DownConv3x3(ZeroPadding(Conv3x3(FromNHWC(in[0]), in[1], nil)), in[2], nil)).NHWC()
		},
		ref: func(in []array) array {
			return refConv2d(refConv2d(in[0], in[1], array{}, 1, 1), in[2], array{}, 2, 1)
		},
	})
}

func TestUpConv4x4(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	for _, size := range [][4]int{{2, 3, 3, 3}, {1, 2, 4, 2}, {2, 1, 1, 2}} {
		x := randArray(rng, 1, size[:]...)
		k := randArray(rng, 0.5, size[3], 4, 4, 4)
		bias := randArray(rng, 0.5, 4)
		runBlockCase(t, blockCase{
			name:   strings.ReplaceAll(shapeOf(x).String(), " ", ""),
			inputs: []array{x, k, bias},
			fn: func(in []*Node) *Node {
				return UpConv4x4(FromNHWC(in[0]), in[1], in[2]).NHWC()
			},
			ref: func(in []array) array { return refConvTranspose2d(in[0], in[1], in[2], 2, 1) },
		})
	}
}

func TestAvgPoolAndUnflatten(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 15))
	x := randArray(rng, 1, 3, 7, 7, 4)
	runBlockCase(t, blockCase{
		name:   "avgpool7",
		inputs: []array{x},
		fn: func(in []*Node) *Node {
			v := AvgPool(FromNHWC(in[0]), 7) // [C, B]
			return Reshape(Transpose(v, 0, 1), 3, 1, 1, 4)
		},
		ref: func(in []array) array { return refAvgPool(in[0], 7) },
	})
	v := randArray(rng, 1, 3, 1, 1, 4)
	k := randArray(rng, 0.5, 4, 5, 7, 7)
	bias := randArray(rng, 0.5, 5)
	runBlockCase(t, blockCase{
		name:   "unflatten7",
		inputs: []array{v, k, bias},
		fn: func(in []*Node) *Node {
			return Unflatten(Transpose(Reshape(in[0], 3, 4), 0, 1), in[1], in[2]).NHWC()
		},
		ref: func(in []array) array { return refConvTranspose2d(in[0], in[1], in[2], 7, 0) },
	})
}
