package conv

import (
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// The benchmarks of this file time each formulation of each block at the CS180 UNet's real
// sizes (D=32, batch 64, 28x28): "fwd" runs the block, "fwd+bwd" the block and the gradients
// of sum(out*R) with respect to its input and kernel. Run pinned to one core, e.g.
//
//	GOEXPERIMENT=simd GOMLX_BACKEND=go taskset -c 1 go test ./diffusion/conv -run XXX -bench Formulations -benchtime 10x

func randTensor(dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	data := make([]float32, n)
	s := uint32(12345)
	for i := range data {
		s = s*1664525 + 1013904223
		data[i] = float32(s>>8)/float32(1<<24) - 0.5
	}
	return tensors.FromFlatDataAndDimensions(data, dims...)
}

// benchExec times one compiled graph: the first call (compilation) is excluded.
func benchExec(b *testing.B, fn func(in []*Node) []*Node, inputs ...*tensors.Tensor) {
	b.Helper()
	exec, err := NewExec(testBackend(b), fn)
	if err != nil {
		b.Fatal(err)
	}
	args := make([]any, len(inputs))
	for i, t := range inputs {
		c, err := t.LocalClone() // a tensor is tied to the first backend it is used on
		if err != nil {
			b.Fatal(err)
		}
		args[i] = c
	}
	run := func() {
		out, err := exec.Exec(args...)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range out {
			o.FinalizeAll()
		}
	}
	run()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		run()
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
}

// dotLoss is sum(out * r) as one flat dot product (a SIMD matmul, unlike ReduceAllSum).
func dotLoss(out *Node) *Node {
	g := out.Graph()
	n := out.Shape().Size()
	r := ConstTensor(g, randTensor(1, n))
	if out.DType() != dtypes.Float32 {
		r = ConvertDType(r, out.DType())
	}
	// GoMLX's own gradient of a dot product runs identity transposes (full copies with the
	// backend's slow transpose iterator): use a custom one, v * r.
	flat := func(x *Node) *Node { return Reshape(DotGeneral(Reshape(x, 1, n), []int{1}, nil, r, []int{1}, nil)) }
	return withGradient([]*Node{out}, func() *Node { return flat(out) },
		func(ids []*Node) *Node { return flat(ids[0]) },
		func(v *Node) []*Node {
			return []*Node{Reshape(Mul(BroadcastToDims(Reshape(v, 1, 1), 1, n), r), out.Shape().Dimensions...)}
		})
}

// benchBlock times fn's forward, and forward+backward with respect to all inputs.
func benchBlock(b *testing.B, fn func(in []*Node) *Node, inputs ...*tensors.Tensor) {
	b.Run("fwd", func(b *testing.B) {
		benchExec(b, func(in []*Node) []*Node { return []*Node{fn(in)} }, inputs...)
	})
	b.Run("fwd+bwd", func(b *testing.B) {
		benchExec(b, func(in []*Node) []*Node { return Gradient(dotLoss(fn(in)), in...) }, inputs...)
	})
}

// Conv3x3 formulations for NHWC input [B, H, W, C] and kernel [M, C, 3, 3].

// padNHWC zero-pads H and W by one on each side with Concatenate (Pad has no gradient in GoMLX).
func padNHWC(x *Node) *Node {
	g, d := x.Graph(), x.Shape().Dimensions
	zw := Zeros(g, shapes.Make(x.DType(), d[0], d[1], 1, d[3]))
	x = Concatenate([]*Node{zw, x, zw}, 2)
	zh := Zeros(g, shapes.Make(x.DType(), d[0], 1, d[2]+2, d[3]))
	return Concatenate([]*Node{zh, x, zh}, 1)
}

// nhwcShiftedViews: 9 slices of the padded input, concatenated along channels, ONE matmul
// [B*H*W, 9C] x [9C, M] (GoMLX's default gradients).
func nhwcShiftedViews(x, w *Node) *Node {
	d := x.Shape().Dimensions
	m := w.Shape().Dimensions[0]
	p := padNHWC(x)
	var views []*Node
	for dy := range 3 {
		for dx := range 3 {
			views = append(views, Slice(p, AxisRange(), AxisRange(dy, dy+d[1]), AxisRange(dx, dx+d[2])))
		}
	}
	cols := Reshape(Concatenate(views, 3), d[0]*d[1]*d[2], 9*d[3])
	wm := Reshape(TransposeAllAxes(w, 2, 3, 1, 0), 9*d[3], m) // [(dy,dx,c), m]
	return Reshape(Dot(cols, wm).Product(), d[0], d[1], d[2], m)
}

// nhwcSumOf9: the sum of 9 matmuls [B*H*W, C] x [C, M] on the shifted views.
func nhwcSumOf9(x, w *Node) *Node {
	d := x.Shape().Dimensions
	m := w.Shape().Dimensions[0]
	p := padNHWC(x)
	var out *Node
	for dy := range 3 {
		for dx := range 3 {
			v := Reshape(Slice(p, AxisRange(), AxisRange(dy, dy+d[1]), AxisRange(dx, dx+d[2])), -1, d[3])
			wt := Transpose(Reshape(Slice(w, AxisRange(), AxisRange(), AxisRange(dy, dy+1), AxisRange(dx, dx+1)), m, d[3]), 0, 1)
			y := Dot(v, wt).Product()
			if out == nil {
				out = y
			} else {
				out = Add(out, y)
			}
		}
	}
	return Reshape(out, d[0], d[1], d[2], m)
}

// nhwcGather: im2col with one Gather of the padded input (gradient: Scatter).
func nhwcGather(x, w *Node) *Node {
	d := x.Shape().Dimensions
	b, h, wd, c := d[0], d[1], d[2], d[3]
	m := w.Shape().Dimensions[0]
	p := padNHWC(x)
	idx := make([]int32, 0, b*h*wd*9*3)
	for bi := range b {
		for i := range h {
			for j := range wd {
				for dy := range 3 {
					for dx := range 3 {
						idx = append(idx, int32(bi), int32(i+dy), int32(j+dx))
					}
				}
			}
		}
	}
	indices := ConstTensor(x.Graph(), tensors.FromFlatDataAndDimensions(idx, b*h*wd*9, 3))
	cols := Reshape(Gather(p, indices), b*h*wd, 9*c)
	wm := Reshape(TransposeAllAxes(w, 2, 3, 1, 0), 9*c, m)
	return Reshape(Dot(cols, wm).Product(), b, h, wd, m)
}

// nhwcNative: GoMLX's ConvGeneral (the go backend runs it as a scalar loop).
func nhwcNative(x, w *Node) *Node {
	return Convolve(x, TransposeAllAxes(w, 2, 3, 1, 0)).PadSame().Done()
}

func BenchmarkFormulationsConv3x3(b *testing.B) {
	const B, H, W, C, M = 64, 28, 28, 32, 32
	x, w := randTensor(B, H, W, C), randTensor(M, C, 3, 3)
	nhwc := map[string]func(x, w *Node) *Node{
		"nhwc_shifted_views_1matmul": nhwcShiftedViews,
		"nhwc_sum_of_9_matmuls":      nhwcSumOf9,
		"nhwc_gather_im2col":         nhwcGather,
	}
	for name, f := range nhwc {
		b.Run(name, func(b *testing.B) { benchBlock(b, func(in []*Node) *Node { return f(in[0], in[1]) }, x, w) })
	}
	b.Run("nhwc_native_convgeneral/fwd", func(b *testing.B) {
		benchExec(b, func(in []*Node) []*Node { return []*Node{nhwcNative(in[0], in[1])} }, x, w)
	})
	// The package's formulation, on a Map already in the frame layout (as inside the UNet).
	geo := NewGeometry(B, H, W)
	frame := randTensor(C, geo.Length)
	b.Run("frame_oneconcat_customvjp", func(b *testing.B) {
		benchBlock(b, func(in []*Node) *Node {
			return Conv3x3(Map{Data: in[0], Geometry: geo}, in[1], nil).Data
		}, frame, w)
	})
}

// bnGoMLXGradient is training-mode batch norm + tanh GELU on a frame written with plain graph
// ops (broadcasts, ReduceSum), differentiated by GoMLX itself.
func bnGoMLXGradient(y, scale, offset, mask *Node, n int) *Node {
	m, l := y.Shape().Dimensions[0], y.Shape().Dimensions[1]
	col := func(x *Node) *Node { return BroadcastToDims(Reshape(x, m, 1), m, l) }
	ym := Mul(y, mask)
	mean := DivScalar(ReduceSum(ym, 1), float64(n))
	variance := Sub(DivScalar(ReduceSum(Mul(ym, ym), 1), float64(n)), Mul(mean, mean))
	a := Div(scale, Sqrt(AddScalar(variance, 1e-5)))
	z := Add(Mul(ym, col(a)), Mul(mask, col(Sub(offset, Mul(mean, a)))))
	out, _ := implOf(GELUTanh).apply(z)
	return out
}

// BenchmarkFormulationsBatchNormAct times the training-mode batch norm + activation of a 28x28,
// 32-channel conv output at batch 64, per activation, and the same computation written with
// plain graph ops and differentiated by GoMLX.
func BenchmarkFormulationsBatchNormAct(b *testing.B) {
	const B, H, W, C = 64, 28, 28, 32
	geo := NewGeometry(B, H, W)
	geo.Offset += geo.Pitch() + 1
	geo.Length += 2*geo.Pitch() + 2
	y, scale, offset := randTensor(C, geo.Length), randTensor(C), randTensor(C)
	bn := func(act Activation) func(in []*Node) *Node {
		return func(in []*Node) *Node {
			zero := ZerosLike(in[1])
			out, _, _ := BatchNormAct(Map{Data: in[0], Geometry: geo}, BatchNormParams{Scale: in[1], Offset: in[2],
				RunningMean: zero, RunningVar: OnesLike(zero)}, DefaultBatchNormConfig(), act, true)
			return out.Data
		}
	}
	for _, act := range []Activation{GELUTanh, GELUExact, GELUFast, NoActivation} {
		b.Run("custom_vjp/"+string(act), func(b *testing.B) { benchBlock(b, bn(act), y, scale, offset) })
	}
	b.Run("plain_ops_gomlx_gradient/gelu_tanh", func(b *testing.B) {
		benchBlock(b, func(in []*Node) *Node {
			return bnGoMLXGradient(in[0], in[1], in[2], geo.maskConst(in[0].Graph(), in[0].DType(), C), geo.NumPixels())
		}, y, scale, offset)
	})
}

// nhwcZeroInsertUpConv: transposed convolution as zero insertion (interior padding by
// concatenation and reshape) + a 4x4 convolution by shifted views and one matmul (the kernel
// flipped), GoMLX's default gradients.
func nhwcZeroInsertUpConv(x, w *Node) *Node {
	g, d := x.Graph(), x.Shape().Dimensions
	b, h, wd, c := d[0], d[1], d[2], d[3]
	m := w.Shape().Dimensions[1]
	dt := x.DType()
	// Zero insertion: [B, H, W, C] -> [B, 2H-1, 2W-1, C] via concatenating zeros and reshaping.
	z := Reshape(Concatenate([]*Node{Reshape(x, b, h, wd, 1, c), Zeros(g, shapes.Make(dt, b, h, wd, 1, c))}, 3), b, h, 2*wd, c)
	z = Slice(z, AxisRange(), AxisRange(), AxisRange(0, 2*wd-1))
	z = Reshape(Concatenate([]*Node{Reshape(z, b, h, 1, 2*wd-1, c), Zeros(g, shapes.Make(dt, b, h, 1, 2*wd-1, c))}, 2), b, 2*h, 2*wd-1, c)
	z = Slice(z, AxisRange(), AxisRange(0, 2*h-1))
	// Pad by k-1-p = 2 on each side, 4x4 correlation with the flipped kernel.
	for range 2 {
		z = padNHWC(z)
	}
	zd := z.Shape().Dimensions
	ho, wo := zd[1]-3, zd[2]-3
	var views []*Node
	for dy := range 4 {
		for dx := range 4 {
			views = append(views, Slice(z, AxisRange(), AxisRange(dy, dy+ho), AxisRange(dx, dx+wo)))
		}
	}
	cols := Reshape(Concatenate(views, 3), b*ho*wo, 16*c)
	flipped := Reverse(w, 2, 3) // [C, M, 4, 4]
	_ = flipped
	// Reverse has no gradient in GoMLX: flip by a constant permutation matmul instead.
	wm := Reshape(TransposeAllAxes(w, 2, 3, 0, 1), 16, c*m) // [(ky,kx), (c,m)]
	perm := make([][]float32, 16)
	for i := range perm {
		perm[i] = make([]float32, 16)
		perm[i][15-i] = 1
	}
	wm = Reshape(Dot(ConvertDType(Const(g, perm), dt), wm).Product(), 16*c, m)
	return Reshape(Dot(cols, wm).Product(), b, ho, wo, m)
}

// BenchmarkFormulationsResampling times the stride-2 convolution (28->14, 32->32) and the
// transposed 4x4 stride-2 convolution (14->28, 64->32) of the UNet at batch 64.
func BenchmarkFormulationsResampling(b *testing.B) {
	const B = 64
	x28, w3 := randTensor(B, 28, 28, 32), randTensor(32, 32, 3, 3)
	b.Run("down/nhwc_strided_views_1matmul", func(b *testing.B) {
		benchBlock(b, func(in []*Node) *Node {
			x, w := in[0], in[1]
			p := padNHWC(x)
			var views []*Node
			for dy := range 3 {
				for dx := range 3 {
					views = append(views, Slice(p, AxisRange(), AxisRange(dy, dy+28).Stride(2), AxisRange(dx, dx+28).Stride(2)))
				}
			}
			cols := Reshape(Concatenate(views, 3), B*14*14, 9*32)
			return Dot(cols, Reshape(TransposeAllAxes(w, 2, 3, 1, 0), 9*32, 32)).Product()
		}, x28, w3)
	})
	geo28 := NewGeometry(B, 28, 28)
	b.Run("down/frame_phases_customvjp", func(b *testing.B) {
		benchBlock(b, func(in []*Node) *Node {
			return DownConv3x3(Map{Data: in[0], Geometry: geo28}, in[1], nil).Data
		}, randTensor(32, geo28.Length), w3)
	})
	x14, w4 := randTensor(B, 14, 14, 64), randTensor(64, 32, 4, 4)
	b.Run("up/nhwc_zero_insertion", func(b *testing.B) {
		benchBlock(b, func(in []*Node) *Node { return nhwcZeroInsertUpConv(in[0], in[1]) }, x14, w4)
	})
	geo14 := NewGeometry(B, 14, 14)
	b.Run("up/frame_subpixel_customvjp", func(b *testing.B) {
		benchBlock(b, func(in []*Node) *Node {
			return UpConv4x4(Map{Data: in[0], Geometry: geo14}, in[1], nil).Data
		}, randTensor(64, geo14.Length), w4)
	})
}

// BenchmarkFormulationsPooling times Unflatten (ConvTranspose 7x7 stride 7 from 1x1, 64
// channels: one matmul and a reshape) and AvgPool(7) (a matmul with a row of ones) at batch 64.
func BenchmarkFormulationsPooling(b *testing.B) {
	const B, C = 64, 64
	b.Run("unflatten_matmul", func(b *testing.B) {
		benchBlock(b, func(in []*Node) *Node { return Unflatten(in[0], in[1], nil).Data }, randTensor(C, B), randTensor(C, C, 7, 7))
	})
	geo := NewGeometry(B, 7, 7)
	b.Run("avgpool7_ones_matmul", func(b *testing.B) {
		benchBlock(b, func(in []*Node) *Node { return AvgPool(Map{Data: in[0], Geometry: geo}, 7) }, randTensor(C, geo.Length))
	})
}
