package conv

import (
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/support/exceptions"
)

// phaseMaps splits the images of in (even height and width) into their 4 polyphase components
// (rows py, columns px of every 2x2 block; index 2*py+px), each in a fresh half-size frame.
func phaseMaps(in Map) ([]*Node, Geometry) {
	if in.Height%2 != 0 || in.Width%2 != 0 {
		exceptions.Panicf("conv: stride-2 convolution needs an even height and width, got %s", in.Geometry)
	}
	view, b0 := imageView(in)
	geo := NewGeometry(in.Batch, in.Height/2, in.Width/2)
	phases := make([]*Node, 4)
	for py := range 2 {
		for px := range 2 {
			img := Slice(view, AxisRange(), AxisRange(b0, b0+in.Batch),
				AxisRange(py, in.Height).Stride(2), AxisRange(px, in.Width).Stride(2))
			phases[2*py+px] = frameImages(img, geo)
		}
	}
	return phases, geo
}

// DownConv3x3 is the 3x3, stride 2, padding 1 convolution (PyTorch nn.Conv2d(C, M, 3, 2, 1)) of
// in (even height and width) with kernel w [M, C, 3, 3] and optional bias [M] (nil: none).
//
// It splits the input into its 4 polyphase components ("space to depth") and runs a stride-1
// convolution over them on the half-size grid in which each of the 9 taps reads one phase at a
// shift of -1 or 0: the same single im2col and matmul as Conv3x3, with exactly the 9*C*M
// multiply-adds per output pixel of the strided convolution (none wasted). Like Conv3x3 the
// result has garbage at non-pixel positions.
func DownConv3x3(in Map, w, bias *Node) Map {
	in.check()
	if w.Rank() != 4 || w.Shape().Dimensions[2] != 3 || w.Shape().Dimensions[3] != 3 {
		exceptions.Panicf("conv: DownConv3x3 kernel must be [M, C, 3, 3], got %s", w.Shape())
	}
	phases, geo := phaseMaps(in)
	p := geo.Pitch()
	k := 2*p + 2
	// Input row 2i+dy-1: dy=0 -> odd phase at row i-1; dy=1 -> even phase at i; dy=2 -> odd at i.
	src := make([]int, 0, 9)
	shifts := make([]int, 0, 9)
	for dy := range 3 {
		for dx := range 3 {
			src = append(src, 2*((dy+1)%2)+(dx+1)%2)
			sy, sx := min(dy, 1), min(dx, 1) // low-res tap row/column in {0, 1} = shift + 1
			shifts = append(shifts, k-(sy*p+sx))
		}
	}
	wd := w.Shape().Dimensions
	w9 := Reshape(w, wd[0], wd[1], 9)
	plan := newShiftPlan(phases, src, w9, shifts, k)
	// One custom gradient for the phase split and the convolution: the phase gradients are
	// interleaved back into the input frame (GoMLX's own gradient of the strided slices is an
	// interior Pad plus sums, several times slower).
	y := withGradient([]*Node{in.Data, w9}, plan.forward,
		func(ids []*Node) *Node {
			ph, _ := phaseMaps(Map{Data: ids[0], Geometry: in.Geometry})
			y, _ := plan.apply(ph, ids[1])
			return y
		},
		func(dy *Node) []*Node {
			dph, dw := plan.grads(dy)
			imgs := make([]*Node, 4)
			for q, d := range dph {
				imgs[q] = Map{Data: d, Geometry: geo}.Images()
			}
			return []*Node{frameImages(interleave(imgs), in.Geometry), dw}
		})
	out := Map{Data: y, Geometry: geo}
	out.Offset += p + 1
	out.Length += k
	if bias != nil {
		out.Data = addBias(out.Data, bias)
	}
	return out
}

// interleave assembles 4 phase images [M, B, h, w] (index 2*py+px) into [M, B, 2h, 2w].
func interleave(imgs []*Node) *Node {
	d := imgs[0].Shape().Dimensions
	m, b, h, w := d[0], d[1], d[2], d[3]
	rows := make([]*Node, 2)
	for py := range 2 {
		r := Concatenate([]*Node{Reshape(imgs[2*py], m, b, h, w, 1), Reshape(imgs[2*py+1], m, b, h, w, 1)}, 4)
		rows[py] = Reshape(r, m, b, h, 1, 2*w)
	}
	return Reshape(Concatenate(rows, 3), m, b, 2*h, 2*w)
}

// interleaveMaps assembles the 4 phase maps ys[2*py+px] (data [M, L] of geometry geo, garbage
// allowed outside the pixels) into a fresh frame of twice the height and width, with a custom
// gradient: the output gradient's pixels split by strided slices and framed back into geo.
func interleaveMaps(ys []*Node, geo Geometry) Map {
	outGeo := NewGeometry(geo.Batch, 2*geo.Height, 2*geo.Width)
	build := func(srcs []*Node) *Node {
		imgs := make([]*Node, 4)
		for q, y := range srcs {
			imgs[q] = Map{Data: y, Geometry: geo}.Images()
		}
		return frameImages(interleave(imgs), outGeo)
	}
	data := withGradient(ys, func() *Node { return build(ys) }, build, func(d *Node) []*Node {
		img := Map{Data: d, Geometry: outGeo}.Images() // [M, B, 2h, 2w]
		grads := make([]*Node, 4)
		for py := range 2 {
			for px := range 2 {
				ph := Slice(img, AxisRange(), AxisRange(), AxisRange(py, 2*geo.Height).Stride(2), AxisRange(px, 2*geo.Width).Stride(2))
				grads[2*py+px] = frameImages(ph, geo)
			}
		}
		return grads
	})
	return Map{Data: data, Geometry: outGeo}
}

// UpConv4x4 is the transposed convolution with kernel 4, stride 2, padding 1 (PyTorch
// nn.ConvTranspose2d(C, M, 4, 2, 1)), which doubles the height and width of in, with kernel
// w [C, M, 4, 4] (PyTorch's layout for transposed convolutions) and optional bias [M].
//
// Sub-pixel formulation: each of the 4 output phases (py, px) is a stride-1 convolution of the
// input with 2x2 of the 16 kernel taps (kernel rows 1,3 for even output rows, 0,2 for odd ones),
// so no zero is inserted and no multiply-add is wasted; the 4 results are interleaved into the
// output ("depth to space"). The result is a fresh frame with zero padding.
func UpConv4x4(in Map, w, bias *Node) Map {
	in.check()
	wd := w.Shape().Dimensions
	if w.Rank() != 4 || wd[0] != in.Channels() || wd[2] != 4 || wd[3] != 4 {
		exceptions.Panicf("conv: UpConv4x4 kernel must be [%d, M, 4, 4], got %s", in.Channels(), w.Shape())
	}
	c, m := wd[0], wd[1]
	p := in.Pitch()
	k := 2*p + 2
	// Output row 2i+py gets input row i+s with kernel row kr, for (s, kr) in taps[py].
	taps := [2][2][2]int{{{0, 1}, {-1, 3}}, {{1, 0}, {0, 2}}}
	ys := make([]*Node, 4)
	for py := range 2 {
		for px := range 2 {
			var shifts []int
			var kernel []*Node
			for _, ty := range taps[py] {
				for _, tx := range taps[px] {
					shifts = append(shifts, k-((ty[0]+1)*p+tx[0]+1))
					kernel = append(kernel, Reshape(Slice(w, AxisRange(), AxisRange(), AxisElem(ty[1]), AxisElem(tx[1])), c, m, 1))
				}
			}
			wq := TransposeAllAxes(Concatenate(kernel, 2), 1, 0, 2) // [M, C, 4]
			ys[2*py+px] = shiftConv([]*Node{in.Data}, make([]int, 4), wq, shifts, k)
		}
	}
	yGeo := in.Geometry
	yGeo.Offset += p + 1
	yGeo.Length += k
	out := interleaveMaps(ys, yGeo)
	if bias != nil {
		out = ZeroPadding(Map{Data: addBias(out.Data, bias), Geometry: out.Geometry})
	}
	return out
}

// AvgPool is PyTorch's nn.AvgPool2d(k) for k equal to the height and width of in's images
// (global average pooling, CS180's "Flatten" on 7x7 maps): it returns the per-image channel
// means [C, B]. in must have zero padding (as returned by BatchNormAct or ZeroPadding).
func AvgPool(in Map, k int) *Node {
	in.check()
	if k != in.Height || k != in.Width {
		exceptions.Panicf("conv: AvgPool(%d) supports only pooling the whole image, got %s", k, in.Geometry)
	}
	view, b0 := imageView(in)
	d := view.Shape().Dimensions
	c, nb, ip := d[0], d[1], d[2]*d[3]
	sums := rowSums(Reshape(view, c*nb, ip)) // zero padding: the image pitch sums its pixels
	sums = Slice(Reshape(sums, c, nb), AxisRange(), AxisRange(b0, b0+in.Batch))
	return DivScalar(sums, float64(k*k))
}

// Unflatten is the transposed convolution with kernel k and stride k of 1x1 images (PyTorch
// nn.ConvTranspose2d(C, M, k, k) on [B, C, 1, 1], CS180's "Unflatten"): v [C, B] holds the
// per-image input vectors and w [C, M, k, k] the kernel (PyTorch's layout); bias [M] may be nil.
// It is one matmul [M*k*k, C] x [C, B] and a reshape; the result is a fresh k x k frame.
func Unflatten(v, w, bias *Node) Map {
	wd := w.Shape().Dimensions
	if v.Rank() != 2 || w.Rank() != 4 || wd[0] != v.Shape().Dimensions[0] || wd[2] != wd[3] {
		exceptions.Panicf("conv: Unflatten wants v [C, B] and w [C, M, k, k], got %s and %s", v.Shape(), w.Shape())
	}
	c, m, k, b := wd[0], wd[1], wd[2], v.Shape().Dimensions[1]
	y := DotGeneral(Reshape(w, c, m*k*k), []int{0}, nil, v, []int{0}, nil) // [M*k*k, B]
	img := Reshape(TransposeAllAxes(Reshape(y, m, k*k, b), 0, 2, 1), m, b, k, k)
	out := FromImages(img)
	if bias != nil {
		out = ZeroPadding(Map{Data: addBias(out.Data, bias), Geometry: out.Geometry})
	}
	return out
}
