package conv

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Geometry says where the pixels of a batch of images sit along the positions axis of a Map.
//
// Pixel (b, h, w) is at position Offset + b*ImagePitch() + h*Pitch() + w, with Pitch() = Width+1
// and ImagePitch() = (Height+1)*Pitch(): every image row is followed by one zero column and every
// image by one zero row, so the 8 neighbours of any pixel are either pixels or zeros, and a 3x3
// neighbourhood is a set of 9 constant shifts along the positions axis. All other positions in
// [0, Length) hold zeros (a "frame" of zero padding), except in the raw output of a convolution
// before its normalization (see Conv3x3).
type Geometry struct {
	Batch, Height, Width int
	Offset, Length       int
}

// Pitch is the distance between vertically adjacent pixels: Width + 1.
func (g Geometry) Pitch() int { return g.Width + 1 }

// ImagePitch is the distance between the same pixel of consecutive images: (Height+1)*Pitch().
func (g Geometry) ImagePitch() int { return (g.Height + 1) * g.Pitch() }

// NumPixels is Batch*Height*Width, the number of valid positions.
func (g Geometry) NumPixels() int { return g.Batch * g.Height * g.Width }

// NewGeometry returns the compact frame for a batch of images: one empty image pitch of zeros
// before the first image (so Offset is a multiple of ImagePitch) and none after the last one
// (its trailing zero row is the bottom margin).
func NewGeometry(batch, height, width int) Geometry {
	g := Geometry{Batch: batch, Height: height, Width: width}
	g.Offset = g.ImagePitch()
	g.Length = g.Offset + batch*g.ImagePitch()
	return g
}

// check panics (GoMLX graph-building convention) if g cannot hold a 3x3 neighbourhood.
func (g Geometry) check() {
	if g.Batch < 1 || g.Height < 1 || g.Width < 1 || g.Offset < g.Pitch()+1 || g.Length < g.Offset+g.Batch*g.ImagePitch() {
		exceptions.Panicf("conv: invalid geometry %+v", g)
	}
}

// String implements fmt.Stringer.
func (g Geometry) String() string {
	return fmt.Sprintf("%dx%dx%d@%d/%d", g.Batch, g.Height, g.Width, g.Offset, g.Length)
}

// Mask returns the 0/1 indicator of the pixel positions, of length Length.
func (g Geometry) Mask() []float64 {
	m := make([]float64, g.Length)
	for b := range g.Batch {
		for h := range g.Height {
			start := g.Offset + b*g.ImagePitch() + h*g.Pitch()
			for w := range g.Width {
				m[start+w] = 1
			}
		}
	}
	return m
}

// maskConst returns Mask() as a constant [rows, Length] (rows copies) of the given dtype.
func (g Geometry) maskConst(gr *Graph, dtype dtypes.DType, rows int) *Node {
	m := g.Mask()
	switch dtype {
	case dtypes.Float32:
		flat := make([]float32, rows*len(m))
		for r := range rows {
			for i, v := range m {
				flat[r*len(m)+i] = float32(v)
			}
		}
		return ConstTensor(gr, tensors.FromFlatDataAndDimensions(flat, rows, len(m)))
	case dtypes.Float64:
		flat := make([]float64, rows*len(m))
		for r := range rows {
			copy(flat[r*len(m):], m)
		}
		return ConstTensor(gr, tensors.FromFlatDataAndDimensions(flat, rows, len(m)))
	}
	exceptions.Panicf("conv: unsupported dtype %s", dtype)
	return nil
}

// Map is a batch of feature maps in the package's channels-first frame layout: Data has shape
// [channels, Length] and Geometry places the pixels along the second axis.
//
// This layout, rather than NHWC, is what makes convolutions fast on GoMLX's go backend (see the
// package documentation): shifted views are contiguous copies, a convolution is one matmul with
// the positions as its long output axis, and the weight gradient contracts the positions axis,
// the last one of both operands, which the backend's matmul takes without transposing.
type Map struct {
	Data *Node
	Geometry
}

// Channels returns the number of channels of m.
func (m Map) Channels() int { return m.Data.Shape().Dimensions[0] }

// DType returns the dtype of m's data.
func (m Map) DType() dtypes.DType { return m.Data.DType() }

func (m Map) check() {
	m.Geometry.check()
	if m.Data.Rank() != 2 || m.Data.Shape().Dimensions[1] != m.Length {
		exceptions.Panicf("conv: map data %s does not match geometry %s", m.Data.Shape(), m.Geometry)
	}
}

func zeros(g *Graph, dtype dtypes.DType, dims ...int) *Node {
	return Zeros(g, shapes.Make(dtype, dims...))
}

// padPositions returns x [C, L] with `front` zeros before and `back` zeros after along axis 1.
func padPositions(x *Node, front, back int) *Node {
	if front == 0 && back == 0 {
		return x
	}
	g, c := x.Graph(), x.Shape().Dimensions[0]
	parts := make([]*Node, 0, 3)
	if front > 0 {
		parts = append(parts, zeros(g, x.DType(), c, front))
	}
	parts = append(parts, x)
	if back > 0 {
		parts = append(parts, zeros(g, x.DType(), c, back))
	}
	return Concatenate(parts, 1)
}

// frameImages places compact images x [C, B, H, W] into a frame of geometry geo (which must have
// the same batch and image sizes).
func frameImages(x *Node, geo Geometry) *Node {
	g, dt := x.Graph(), x.DType()
	dims := x.Shape().Dimensions
	c, b, h, w := dims[0], dims[1], dims[2], dims[3]
	if b != geo.Batch || h != geo.Height || w != geo.Width {
		exceptions.Panicf("conv: images %s do not fit geometry %s", x.Shape(), geo)
	}
	x = Concatenate([]*Node{x, zeros(g, dt, c, b, h, 1)}, 3)
	x = Concatenate([]*Node{x, zeros(g, dt, c, b, 1, geo.Pitch())}, 2)
	x = Reshape(x, c, b*geo.ImagePitch())
	return padPositions(x, geo.Offset, geo.Length-geo.Offset-b*geo.ImagePitch())
}

// imageView returns the data of m padded so that it reshapes to [C, n, Height+1, Pitch] with
// image b at index b0+b.
func imageView(m Map) (view *Node, b0 int) {
	ip := m.ImagePitch()
	front := (ip - m.Offset%ip) % ip
	total := m.Length + front
	back := (ip - total%ip) % ip
	data := padPositions(m.Data, front, back)
	return Reshape(data, m.Channels(), (total+back)/ip, m.Height+1, m.Pitch()), (m.Offset + front) / ip
}

// Images returns the pixels of m as compact images [C, B, H, W].
func (m Map) Images() *Node {
	m.check()
	view, b0 := imageView(m)
	return Slice(view, AxisRange(), AxisRange(b0, b0+m.Batch), AxisRange(0, m.Height), AxisRange(0, m.Width))
}

// FromImages returns the Map of compact channels-first images x [C, B, H, W] in a new compact
// frame (NewGeometry).
func FromImages(x *Node) Map {
	if x.Rank() != 4 {
		exceptions.Panicf("conv: FromImages wants [C, B, H, W], got %s", x.Shape())
	}
	d := x.Shape().Dimensions
	geo := NewGeometry(d[1], d[2], d[3])
	return Map{Data: frameImages(x, geo), Geometry: geo}
}

// FromNHWC returns the Map of channels-last images x [B, H, W, C] in a new compact frame.
func FromNHWC(x *Node) Map {
	if x.Rank() != 4 {
		exceptions.Panicf("conv: FromNHWC wants [B, H, W, C], got %s", x.Shape())
	}
	if x.Shape().Dimensions[3] == 1 {
		d := x.Shape().Dimensions
		return FromImages(Reshape(x, 1, d[0], d[1], d[2]))
	}
	return FromImages(TransposeAllAxes(x, 3, 0, 1, 2))
}

// NHWC returns the pixels of m as channels-last images [B, H, W, C].
func (m Map) NHWC() *Node {
	x := m.Images()
	if m.Channels() == 1 {
		return Reshape(x, m.Batch, m.Height, m.Width, 1)
	}
	return TransposeAllAxes(x, 1, 2, 3, 0)
}

// Reframe returns m with its data moved into the larger frame geo (same images; geo.Offset >=
// m.Offset and geo.Length-geo.Offset >= m.Length-m.Offset), by padding zeros at both ends.
func (m Map) Reframe(geo Geometry) Map {
	if geo.Batch != m.Batch || geo.Height != m.Height || geo.Width != m.Width ||
		geo.Offset < m.Offset || geo.Length-geo.Offset < m.Length-m.Offset {
		exceptions.Panicf("conv: cannot reframe %s into %s", m.Geometry, geo)
	}
	return Map{Data: padPositions(m.Data, geo.Offset-m.Offset, geo.Length-geo.Offset-(m.Length-m.Offset)), Geometry: geo}
}

// Concat concatenates maps of the same images along the channels axis (skip connections),
// reframing them to a common frame first if needed.
func Concat(maps ...Map) Map {
	if len(maps) == 0 {
		exceptions.Panicf("conv: Concat of no maps")
	}
	geo := maps[0].Geometry
	for _, m := range maps[1:] {
		if m.Batch != geo.Batch || m.Height != geo.Height || m.Width != geo.Width {
			exceptions.Panicf("conv: Concat of maps of different images: %s and %s", geo, m.Geometry)
		}
		after := max(geo.Length-geo.Offset, m.Length-m.Offset)
		geo.Offset = max(geo.Offset, m.Offset)
		geo.Length = geo.Offset + after
	}
	data := make([]*Node, len(maps))
	for i, m := range maps {
		data[i] = m.Reframe(geo).Data
	}
	return Map{Data: Concatenate(data, 0), Geometry: geo}
}

// Modulate returns scale*m + shift with per-channel, per-image coefficients scale and shift
// [C, B] (either may be nil: 1 and 0), keeping m's zero padding (CS180's time and class
// conditioning, u = c1*u + t1). m must have zero padding.
func Modulate(m Map, scale, shift *Node) Map {
	m.check()
	view, b0 := imageView(m) // [C, NB, H+1, P]
	g, dt := view.Graph(), view.DType()
	d := view.Shape().Dimensions
	c, nb := d[0], d[1]
	perImage := func(x *Node) *Node { // [C, B] -> [C, NB, H+1, P], zero for margin images
		if !x.Shape().Equal(shapes.Make(dt, c, m.Batch)) {
			exceptions.Panicf("conv: Modulate coefficients %s do not match [%d, %d] of %s", x.Shape(), c, m.Batch, dt)
		}
		x = padPositions(x, b0, nb-b0-m.Batch)
		return BroadcastToDims(Reshape(x, c, nb, 1, 1), d...)
	}
	out := view
	if scale != nil {
		out = Mul(out, perImage(scale))
	}
	if shift != nil {
		pix := make([]float64, d[2]*d[3])
		for h := range m.Height {
			for w := range m.Width {
				pix[h*d[3]+w] = 1
			}
		}
		mask := ConvertDType(ConstTensor(g, tensors.FromFlatDataAndDimensions(pix, 1, 1, d[2], d[3])), dt)
		out = Add(out, Mul(perImage(shift), BroadcastToDims(mask, d...)))
	}
	geo := m.Geometry
	geo.Offset, geo.Length = b0*m.ImagePitch(), nb*m.ImagePitch()
	return Map{Data: Reshape(out, c, geo.Length), Geometry: geo}
}
