package conv

import (
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/support/exceptions"
)

// shiftedCopies returns the [C*T, L+extra] matrix whose row (c, t) is srcs[t][c] shifted right
// by shifts[t] (zeros before, zeros after up to the common length L+extra), in ONE
// Concatenate: along the positions axis each channel row is [zeros(s0), x0_c, zeros(extra-s0+s1),
// x1_c, ...], which reshapes to T rows per channel. The backend copies each row with memmove:
// this is an im2col at memory speed (no Gather, no per-element Slice, no transpose). All srcs
// have the same shape [C, L].
func shiftedCopies(srcs []*Node, shifts []int, extra int) *Node {
	x := srcs[0]
	g, dt := x.Graph(), x.DType()
	c, l := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	parts := make([]*Node, 0, 2*len(shifts)+1)
	pending := 0
	for i, s := range shifts {
		if s < 0 || s > extra {
			exceptions.Panicf("conv: shift %d outside [0, %d]", s, extra)
		}
		pending += s
		if pending > 0 {
			parts = append(parts, zeros(g, dt, c, pending))
		}
		parts = append(parts, srcs[i])
		pending = extra - s
	}
	if pending > 0 {
		parts = append(parts, zeros(g, dt, c, pending))
	}
	return Reshape(Concatenate(parts, 1), c*len(shifts), l+extra)
}

// repeat returns n copies of x.
func repeat(x *Node, n int) []*Node {
	out := make([]*Node, n)
	for i := range out {
		out[i] = x
	}
	return out
}

// tapOffsets returns the offsets dy*pitch+dx of the 3x3 taps in PyTorch's kernel order (dy, dx).
func tapOffsets(pitch int) []int {
	offs := make([]int, 0, 9)
	for dy := range 3 {
		for dx := range 3 {
			offs = append(offs, dy*pitch+dx)
		}
	}
	return offs
}

// crop returns x[:, start:start+n].
func crop(x *Node, start, n int) *Node {
	if start == 0 && n == x.Shape().Dimensions[1] {
		return x
	}
	return Slice(x, AxisRange(), AxisRange(start, start+n))
}

// shiftPlan is the core of every convolution in this package: given sources xs[q] [C, L], the
// source of each tap tapSrc[t] and the kernel w [M, C, T], it computes y [M, L+extra] with
// y[m, j] = sum_{c,t} w[m,c,t] * xs[tapSrc[t]][c, j - shifts[t]] (sources are zero outside
// [0, L)):
//   - forward: one shiftedCopies "im2col" X [C*T, L+extra] and one matmul W [M, C*T] x X;
//   - weight gradient: dW^T = X . dY^T, a matmul contracting the positions axis (the last axis
//     of both operands: no transposes), reusing the forward's X;
//   - input gradient of source q: dx[c, p] = sum_{m, t of q} w[m,c,t] dY[m, p + shifts[t]]:
//     shiftedCopies of dY shifted right by extra-shifts[t], one matmul, one crop.
type shiftPlan struct {
	xs     []*Node
	tapSrc []int
	w      *Node
	shifts []int
	extra  int
	im2col *Node // set by forward
}

func newShiftPlan(xs []*Node, tapSrc []int, w *Node, shifts []int, extra int) *shiftPlan {
	wd := w.Shape().Dimensions
	if wd[1] != xs[0].Shape().Dimensions[0] || wd[2] != len(shifts) || len(shifts) != len(tapSrc) {
		exceptions.Panicf("conv: kernel %s does not match input %s and %d taps", w.Shape(), xs[0].Shape(), len(shifts))
	}
	return &shiftPlan{xs: xs, tapSrc: tapSrc, w: w, shifts: shifts, extra: extra}
}

func (p *shiftPlan) tapSources(srcs []*Node) []*Node {
	out := make([]*Node, len(p.tapSrc))
	for i, q := range p.tapSrc {
		out[i] = srcs[q]
	}
	return out
}

// apply returns y for sources srcs and kernel w (the plan's or twins of them).
func (p *shiftPlan) apply(srcs []*Node, w *Node) (y, im2col *Node) {
	wd := w.Shape().Dimensions
	im2col = shiftedCopies(p.tapSources(srcs), p.shifts, p.extra)
	return Dot(Reshape(w, wd[0], wd[1]*wd[2]), im2col).Product(), im2col
}

func (p *shiftPlan) forward() *Node {
	var y *Node
	y, p.im2col = p.apply(p.xs, p.w)
	return y
}

// grads returns the gradients of the sources (nil for a source no tap reads) and of the kernel,
// given the adjoint dy of the forward's output.
func (p *shiftPlan) grads(dy *Node) (dxs []*Node, dw *Node) {
	c, l := p.xs[0].Shape().Dimensions[0], p.xs[0].Shape().Dimensions[1]
	wd := p.w.Shape().Dimensions
	m, t := wd[0], wd[2]
	dwT := DotGeneral(p.im2col, []int{1}, nil, dy, []int{1}, nil) // [C*T, M]
	dw = Reshape(Transpose(dwT, 0, 1), m, c, t)
	dxs = make([]*Node, len(p.xs))
	for q := range p.xs {
		var back []int
		var taps []*Node
		for i, src := range p.tapSrc {
			if src == q {
				back = append(back, p.extra-p.shifts[i])
				taps = append(taps, Slice(p.w, AxisRange(), AxisRange(), AxisElem(i)))
			}
		}
		if len(taps) == 0 {
			continue
		}
		dyCols := shiftedCopies(repeat(dy, len(back)), back, p.extra) // [M*Tq, L+2*extra]
		wT := Reshape(TransposeAllAxes(Concatenate(taps, 2), 1, 0, 2), c, m*len(back))
		dxs[q] = crop(Dot(wT, dyCols).Product(), p.extra, l)
	}
	return dxs, dw
}

// shiftConv returns the plan's y with its custom gradient.
func shiftConv(xs []*Node, tapSrc []int, w *Node, shifts []int, extra int) *Node {
	p := newShiftPlan(xs, tapSrc, w, shifts, extra)
	n := len(xs)
	return withGradient(append(append([]*Node{}, xs...), w), p.forward,
		func(ids []*Node) *Node {
			y, _ := p.apply(ids[:n], ids[n])
			return y
		},
		func(dy *Node) []*Node {
			dxs, dw := p.grads(dy)
			return append(dxs, dw)
		})
}

// Conv3x3 is the 3x3, stride 1, padding 1 convolution (PyTorch nn.Conv2d(C, M, 3, 1, 1)) of in
// with kernel w [M, C, 3, 3] (PyTorch's layout) and optional bias [M] (nil: none).
//
// The result lives in a frame grown by 2*Pitch+2 positions (Offset+Pitch+1); its non-pixel
// positions hold garbage (partial sums over the zero padding), which BatchNormAct zeroes; use
// ZeroPadding when no normalization follows.
func Conv3x3(in Map, w, bias *Node) Map {
	in.check()
	if w.Rank() != 4 || w.Shape().Dimensions[2] != 3 || w.Shape().Dimensions[3] != 3 {
		exceptions.Panicf("conv: Conv3x3 kernel must be [M, C, 3, 3], got %s", w.Shape())
	}
	wd := w.Shape().Dimensions
	k := 2*in.Pitch() + 2
	shifts := tapOffsets(in.Pitch())
	for i, o := range shifts {
		shifts[i] = k - o
	}
	y := shiftConv([]*Node{in.Data}, make([]int, 9), Reshape(w, wd[0], wd[1], 9), shifts, k)
	out := Map{Data: y, Geometry: in.Geometry}
	out.Offset += in.Pitch() + 1
	out.Length += k
	if bias != nil {
		out.Data = addBias(out.Data, bias)
	}
	return out
}

// addBias adds bias [M] to every position of x [M, L].
func addBias(x, bias *Node) *Node {
	d := x.Shape().Dimensions
	if !bias.Shape().Equal(shapes.Make(x.DType(), d[0])) {
		exceptions.Panicf("conv: bias %s does not match %s", bias.Shape(), x.Shape())
	}
	return Add(x, BroadcastToDims(Reshape(bias, d[0], 1), d[0], d[1]))
}

// ZeroPadding returns m with its non-pixel positions set to zero (multiplied by the mask).
func ZeroPadding(m Map) Map {
	m.check()
	m.Data = Mul(m.Data, m.maskConst(m.Data.Graph(), m.DType(), m.Channels()))
	return m
}
