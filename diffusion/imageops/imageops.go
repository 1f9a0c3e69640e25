// Package imageops holds the operations on flat batches of images that editing with a
// diffusion model needs: pixel permutations (flips and rotations, with their inverses),
// separable Gaussian blur (low- and high-pass filters) and inpainting masks. Images are
// row-major H x W x C float32 values (channels interleaved, as imagediff stores them), n
// images back to back.
package imageops

import (
	"fmt"
	"math"
)

// Shape is the shape of one image of a flat batch: H rows of W pixels of C channels.
type Shape struct{ H, W, C int }

// Square returns the shape of a size x size image with c channels.
func Square(size, c int) Shape { return Shape{H: size, W: size, C: c} }

// Size returns the number of values of one image.
func (s Shape) Size() int { return s.H * s.W * s.C }

// Valid reports a shape with a non-positive side.
func (s Shape) Valid() error {
	if s.H < 1 || s.W < 1 || s.C < 1 {
		return fmt.Errorf("imageops: image shape %dx%dx%d: every side must be >= 1", s.H, s.W, s.C)
	}
	return nil
}

// Count returns the number of images of shape s in a batch of values values.
func (s Shape) Count(values int) (int, error) {
	if err := s.Valid(); err != nil {
		return 0, err
	}
	if values < s.Size() || values%s.Size() != 0 {
		return 0, fmt.Errorf("imageops: %d values are not a whole number (>= 1) of %dx%dx%d images", values, s.H, s.W, s.C)
	}
	return values / s.Size(), nil
}

// Transform is a permutation of the pixels of images of one shape, e.g. a flip or a
// rotation: out[j] = in[Perm[j]] for every image of a batch. Permutations keep white noise
// white, which is what visual anagrams need of their views.
type Transform struct {
	Name  string
	Shape Shape
	perm  []int
}

// transform builds the Transform that moves the pixel at (y, x) of the output from the input
// pixel src(y, x) (all channels).
func transform(name string, s Shape, src func(y, x int) (int, int)) (Transform, error) {
	if err := s.Valid(); err != nil {
		return Transform{}, err
	}
	perm := make([]int, s.Size())
	for y := range s.H {
		for x := range s.W {
			sy, sx := src(y, x)
			for c := range s.C {
				perm[(y*s.W+x)*s.C+c] = (sy*s.W+sx)*s.C + c
			}
		}
	}
	return Transform{Name: name, Shape: s, perm: perm}, nil
}

// Identity is the transform that leaves images unchanged.
func Identity(s Shape) (Transform, error) {
	return transform("identity", s, func(y, x int) (int, int) { return y, x })
}

// FlipVertical turns images upside down (CS180 5A's anagram flip, torch.flip on the rows).
func FlipVertical(s Shape) (Transform, error) {
	return transform("flip", s, func(y, x int) (int, int) { return s.H - 1 - y, x })
}

// FlipHorizontal mirrors images left to right.
func FlipHorizontal(s Shape) (Transform, error) {
	return transform("mirror", s, func(y, x int) (int, int) { return y, s.W - 1 - x })
}

// Rotate180 rotates images by half a turn (a 6 becomes a 9).
func Rotate180(s Shape) (Transform, error) {
	return transform("rot180", s, func(y, x int) (int, int) { return s.H - 1 - y, s.W - 1 - x })
}

// Rotate90 rotates square images a quarter turn counter-clockwise.
func Rotate90(s Shape) (Transform, error) {
	if s.H != s.W {
		return Transform{}, fmt.Errorf("imageops: Rotate90 needs square images, got %dx%d", s.H, s.W)
	}
	return transform("rot90", s, func(y, x int) (int, int) { return x, s.W - 1 - y })
}

// TransformByName returns the transform named "identity", "flip", "mirror", "rot180" or
// "rot90" for images of shape s.
func TransformByName(name string, s Shape) (Transform, error) {
	switch name {
	case "identity":
		return Identity(s)
	case "flip":
		return FlipVertical(s)
	case "mirror":
		return FlipHorizontal(s)
	case "rot180":
		return Rotate180(s)
	case "rot90":
		return Rotate90(s)
	}
	return Transform{}, fmt.Errorf("imageops: unknown transform %q (want identity, flip, mirror, rot180 or rot90)", name)
}

// Inverse returns the transform that undoes t.
func (t Transform) Inverse() Transform {
	inv := make([]int, len(t.perm))
	for j, i := range t.perm {
		inv[i] = j
	}
	return Transform{Name: t.Name + "^-1", Shape: t.Shape, perm: inv}
}

// Apply returns the transformed images of a batch (a new slice).
func (t Transform) Apply(images []float32) ([]float32, error) {
	if t.perm == nil {
		return nil, fmt.Errorf("imageops: the zero Transform (build one with FlipVertical etc.)")
	}
	n, err := t.Shape.Count(len(images))
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(images))
	d := t.Shape.Size()
	for i := range n {
		src, dst := images[i*d:(i+1)*d], out[i*d:(i+1)*d]
		for j, p := range t.perm {
			dst[j] = src[p]
		}
	}
	return out, nil
}

// Blur is a separable Gaussian blur (a low-pass filter) with an odd kernel size and a
// standard deviation in pixels, with reflected borders like torchvision's gaussian_blur.
type Blur struct {
	Kernel int
	Sigma  float64
}

// Validate reports an even or non-positive kernel or a non-positive sigma.
func (b Blur) Validate() error {
	if b.Kernel < 1 || b.Kernel%2 == 0 {
		return fmt.Errorf("imageops: the blur kernel size must be odd and >= 1, got %d", b.Kernel)
	}
	if !(b.Sigma > 0) || math.IsInf(b.Sigma, 0) {
		return fmt.Errorf("imageops: the blur sigma must be > 0, got %g", b.Sigma)
	}
	return nil
}

// Scaled returns the blur that does to an image of to pixels what b does to one of from
// pixels: sigma and kernel scale by to/from, the kernel rounded to the nearest odd size
// (CS180 5A's hybrid filter, kernel 33 and sigma 2 at 64 px, is kernel 15 and sigma 0.875 at
// 28 px).
func (b Blur) Scaled(from, to int) Blur {
	f := float64(to) / float64(from)
	k := int(math.Round((float64(b.Kernel)*f-1)/2))*2 + 1
	return Blur{Kernel: max(1, k), Sigma: b.Sigma * f}
}

// weights returns the normalised 1-D kernel.
func (b Blur) weights() []float64 {
	w := make([]float64, b.Kernel)
	r, sum := b.Kernel/2, 0.0
	for i := range w {
		d := float64(i - r)
		w[i] = math.Exp(-d * d / (2 * b.Sigma * b.Sigma))
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}

// reflect maps an index outside [0, n) back inside by reflection about the border pixels
// (-1 -> 1, n -> n-2), as torch's "reflect" padding.
func reflect(i, n int) int {
	if n == 1 {
		return 0
	}
	p := 2 * (n - 1)
	i %= p
	if i < 0 {
		i += p
	}
	if i >= n {
		i = p - i
	}
	return i
}

// Apply returns the blurred images of a batch of shape s (a new slice).
func (b Blur) Apply(images []float32, s Shape) ([]float32, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	n, err := s.Count(len(images))
	if err != nil {
		return nil, err
	}
	w, r := b.weights(), b.Kernel/2
	tmp := make([]float64, s.Size())
	out := make([]float32, len(images))
	d := s.Size()
	for i := range n {
		img, dst := images[i*d:(i+1)*d], out[i*d:(i+1)*d]
		for y := range s.H { // rows
			for x := range s.W {
				for c := range s.C {
					var acc float64
					for k, wk := range w {
						acc += wk * float64(img[(y*s.W+reflect(x+k-r, s.W))*s.C+c])
					}
					tmp[(y*s.W+x)*s.C+c] = acc
				}
			}
		}
		for y := range s.H { // columns
			for x := range s.W {
				for c := range s.C {
					var acc float64
					for k, wk := range w {
						acc += wk * tmp[(reflect(y+k-r, s.H)*s.W+x)*s.C+c]
					}
					dst[(y*s.W+x)*s.C+c] = float32(acc)
				}
			}
		}
	}
	return out, nil
}

// HighPass returns images minus their blur (a new slice).
func (b Blur) HighPass(images []float32, s Shape) ([]float32, error) {
	low, err := b.Apply(images, s)
	if err != nil {
		return nil, err
	}
	for j, v := range images {
		low[j] = v - low[j]
	}
	return low, nil
}
