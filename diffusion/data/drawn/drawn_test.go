package drawn

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"
)

func encode(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkDigit checks the MNIST conventions: values in [0, 1], the peak 1, ink inside a
// centred Box x Box square, the centre of mass within a pixel of the centre.
func checkDigit(t *testing.T, name string, d []float32) {
	t.Helper()
	if len(d) != Size*Size {
		t.Fatalf("%s: %d values", name, len(d))
	}
	var mass, cx, cy, peak float64
	x0, y0, x1, y1 := Size, Size, -1, -1
	for y := range Size {
		for x := range Size {
			v := float64(d[y*Size+x])
			if v < 0 || v > 1 {
				t.Fatalf("%s: value %g outside [0, 1]", name, v)
			}
			peak = math.Max(peak, v)
			mass += v
			cx += v * (float64(x) + 0.5)
			cy += v * (float64(y) + 0.5)
			if v > 0.05 {
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			}
		}
	}
	if peak < 0.9 {
		t.Errorf("%s: brightest pixel %g, want ~1", name, peak)
	}
	if x1-x0+1 > Box+2 || y1-y0+1 > Box+2 || max(x1-x0, y1-y0)+1 < Box-2 {
		t.Errorf("%s: ink box %dx%d, want the longer side ~%d", name, x1-x0+1, y1-y0+1, Box)
	}
	if math.Abs(cx/mass-Size/2) > 1 || math.Abs(cy/mass-Size/2) > 1 {
		t.Errorf("%s: centre of mass (%.2f, %.2f), want (14, 14)", name, cx/mass, cy/mass)
	}
}

func TestExamples(t *testing.T) {
	ex, err := Examples()
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) < 4 {
		t.Fatalf("%d examples", len(ex))
	}
	for _, e := range ex {
		checkDigit(t, e.Name, e.Image)
		if e.Label < 0 || e.Label > 9 {
			t.Errorf("%s: label %d", e.Name, e.Label)
		}
	}
}

// bar draws a vertical bar (a "1") of the given colours on a w x h canvas.
func bar(w, h int, ink, paper color.Color) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := paper
			if x >= w/2-w/10 && x < w/2+w/10 && y >= h/5 && y < h-h/5 {
				c = ink
			}
			img.Set(x, y, c)
		}
	}
	return img
}

func TestReadIsInvariantToColoursAndSize(t *testing.T) {
	white, black := color.NRGBA{255, 255, 255, 255}, color.NRGBA{0, 0, 0, 255}
	ref, err := Read(bytes.NewReader(encode(t, bar(100, 100, white, black))))
	if err != nil {
		t.Fatal(err)
	}
	checkDigit(t, "bar", ref)
	for name, img := range map[string]image.Image{
		"dark on light":     bar(100, 100, black, white),
		"blue on cream":     bar(100, 100, color.NRGBA{0, 0, 200, 255}, color.NRGBA{240, 230, 200, 255}),
		"on transparent":    bar(100, 100, black, color.NRGBA{0, 0, 0, 0}),
		"larger, same form": bar(300, 300, white, black),
	} {
		got, err := Read(bytes.NewReader(encode(t, img)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var diff float64
		for i := range ref {
			diff = math.Max(diff, math.Abs(float64(got[i]-ref[i])))
		}
		if diff > 0.08 {
			t.Errorf("%s: differs from white on black by up to %.3f", name, diff)
		}
	}
}

func TestReadErrors(t *testing.T) {
	if _, err := Read(strings.NewReader("P3 this is not an image")); err == nil || !strings.Contains(err.Error(), "not a PNG") {
		t.Errorf("text as an image: %v", err)
	}
	blank := image.NewGray(image.Rect(0, 0, 40, 30))
	if _, err := Read(bytes.NewReader(encode(t, blank))); err == nil || !strings.Contains(err.Error(), "no digit") {
		t.Errorf("blank image: %v", err)
	}
	if _, err := ReadFile("no/such/file.png"); err == nil {
		t.Error("missing file: no error")
	}
	data := encode(t, bar(50, 50, color.White, color.Black))
	if _, err := Read(bytes.NewReader(data[:len(data)/2])); err == nil {
		t.Error("truncated PNG: no error")
	}
}
