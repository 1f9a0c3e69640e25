package imageops

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func randomImages(n int, s Shape, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]float32, n*s.Size())
	for i := range out {
		out[i] = float32(rng.NormFloat64())
	}
	return out
}

func TestTransformsAreInvertiblePermutations(t *testing.T) {
	for _, s := range []Shape{Square(5, 1), Square(4, 3), {H: 3, W: 6, C: 2}} {
		x := randomImages(3, s, 1)
		for _, name := range []string{"identity", "flip", "mirror", "rot180", "rot90"} {
			tr, err := TransformByName(name, s)
			if name == "rot90" && s.H != s.W {
				if err == nil {
					t.Errorf("rot90 of %v: want an error for a non-square image", s)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			y, err := tr.Apply(x)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := slices.Sorted(slices.Values(x)), slices.Sorted(slices.Values(y)); !slices.Equal(a, b) {
				t.Errorf("%s on %v is not a permutation", name, s)
			}
			back, err := tr.Inverse().Apply(y)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(back, x) {
				t.Errorf("%s on %v: the inverse does not undo it", name, s)
			}
		}
	}
}

func TestTransformGeometry(t *testing.T) {
	s := Shape{H: 2, W: 3, C: 1}
	x := []float32{1, 2, 3, 4, 5, 6}
	cases := map[string][]float32{
		"flip":   {4, 5, 6, 1, 2, 3},
		"mirror": {3, 2, 1, 6, 5, 4},
		"rot180": {6, 5, 4, 3, 2, 1},
	}
	for name, want := range cases {
		tr, _ := TransformByName(name, s)
		got, _ := tr.Apply(x)
		if !slices.Equal(got, want) {
			t.Errorf("%s(%v) = %v, want %v", name, x, got, want)
		}
	}
	// A quarter turn counter-clockwise of [[1 2] [3 4]] is [[2 4] [1 3]]; four are the identity,
	// two are rot180.
	r, _ := Rotate90(Square(2, 1))
	got, _ := r.Apply([]float32{1, 2, 3, 4})
	if !slices.Equal(got, []float32{2, 4, 1, 3}) {
		t.Errorf("rot90 = %v, want [2 4 1 3]", got)
	}
	s5 := Square(5, 2)
	img := randomImages(1, s5, 2)
	r5, _ := Rotate90(s5)
	r180, _ := Rotate180(s5)
	y := img
	for k := 1; k <= 4; k++ {
		y, _ = r5.Apply(y)
		if k == 2 {
			want, _ := r180.Apply(img)
			if !slices.Equal(y, want) {
				t.Error("two quarter turns are not a half turn")
			}
		}
	}
	if !slices.Equal(y, img) {
		t.Error("four quarter turns are not the identity")
	}
	if _, err := (Transform{}).Apply(img); err == nil {
		t.Error("the zero Transform applied without an error")
	}
	if _, err := r5.Apply(img[:7]); err == nil {
		t.Error("a batch that is not whole images accepted")
	}
	if _, err := TransformByName("spin", s5); err == nil {
		t.Error("an unknown transform accepted")
	}
}

// naiveBlur is the 2-D convolution with the outer-product kernel and reflected borders.
func naiveBlur(img []float32, s Shape, b Blur) []float32 {
	w, r := b.weights(), b.Kernel/2
	out := make([]float32, len(img))
	for y := range s.H {
		for x := range s.W {
			for c := range s.C {
				var acc float64
				for i := range b.Kernel {
					for j := range b.Kernel {
						yy, xx := reflect(y+i-r, s.H), reflect(x+j-r, s.W)
						acc += w[i] * w[j] * float64(img[(yy*s.W+xx)*s.C+c])
					}
				}
				out[(y*s.W+x)*s.C+c] = float32(acc)
			}
		}
	}
	return out
}

func TestBlurEqualsTheTwoDimensionalConvolution(t *testing.T) {
	s := Shape{H: 7, W: 9, C: 2}
	x := randomImages(2, s, 3)
	b := Blur{Kernel: 5, Sigma: 1.3}
	got, err := b.Apply(x, s)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		want := naiveBlur(x[i*s.Size():(i+1)*s.Size()], s, b)
		for j, v := range want {
			if d := math.Abs(float64(v - got[i*s.Size()+j])); d > 1e-5 {
				t.Fatalf("image %d value %d: %g, want %g", i, j, got[i*s.Size()+j], v)
			}
		}
	}
	// A constant image is unchanged; the high-pass of it is zero.
	c := slices.Repeat([]float32{0.7}, s.Size())
	lo, _ := b.Apply(c, s)
	hi, _ := b.HighPass(c, s)
	for j := range c {
		if math.Abs(float64(lo[j]-0.7)) > 1e-6 || math.Abs(float64(hi[j])) > 1e-6 {
			t.Fatalf("constant image: blur %g, high-pass %g at %d", lo[j], hi[j], j)
		}
	}
	// Low plus high pass is the image; blur reduces the variance of white noise.
	lo, _ = b.Apply(x, s)
	hi, _ = b.HighPass(x, s)
	var vx, vl float64
	for j := range x {
		if d := math.Abs(float64(lo[j] + hi[j] - x[j])); d > 1e-5 {
			t.Fatalf("low + high != image at %d", j)
		}
		vx += float64(x[j] * x[j])
		vl += float64(lo[j] * lo[j])
	}
	if vl > 0.5*vx {
		t.Errorf("blurred white noise kept %.2f of its energy", vl/vx)
	}
	// A kernel wider than the image still reflects inside it.
	wide := Blur{Kernel: 33, Sigma: 2}
	if _, err := wide.Apply(x, s); err != nil {
		t.Errorf("kernel wider than the image: %v", err)
	}
}

func TestBlurValidationAndScaling(t *testing.T) {
	for _, b := range []Blur{{Kernel: 4, Sigma: 1}, {Kernel: 0, Sigma: 1}, {Kernel: 3, Sigma: 0}, {Kernel: 3, Sigma: math.NaN()}} {
		if _, err := b.Apply(make([]float32, 9), Square(3, 1)); err == nil {
			t.Errorf("%+v accepted", b)
		}
	}
	got := Blur{Kernel: 33, Sigma: 2}.Scaled(64, 28)
	if got.Kernel != 15 || math.Abs(got.Sigma-0.875) > 1e-12 {
		t.Errorf("CS180's hybrid blur at 28 px = %+v, want kernel 15, sigma 0.875", got)
	}
	if got := (Blur{Kernel: 5, Sigma: 1}).Scaled(28, 28); got.Kernel != 5 || got.Sigma != 1 {
		t.Errorf("scaling to the same size changed the blur: %+v", got)
	}
}

func TestMasks(t *testing.T) {
	s := Square(28, 1)
	for _, name := range MaskNames {
		m, err := MaskByName(name, s)
		if err != nil {
			t.Fatal(err)
		}
		var ones float32
		for _, v := range m {
			if v != 0 && v != 1 {
				t.Fatalf("%s: value %g", name, v)
			}
			ones += v
		}
		want := float32(28 * 14)
		if name == "center" {
			want = 14 * 14
		}
		if ones != want {
			t.Errorf("mask %s covers %g pixels, want %g", name, ones, want)
		}
	}
	top, _ := MaskByName("top", s)
	if top[0] != 1 || top[27*28] != 0 {
		t.Error("the top mask does not cover the top rows only")
	}
	if _, err := MaskByName("middle", s); err == nil {
		t.Error("unknown mask accepted")
	}
	m, _ := Rect(Square(4, 2), -1, 3, 2, 5)
	var ones int
	for _, v := range m {
		ones += int(v)
	}
	if ones != 2 { // row 0, column 3, two channels
		t.Errorf("clipped rectangle covers %d values, want 2", ones)
	}
}
