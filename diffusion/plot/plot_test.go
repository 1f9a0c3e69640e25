package plot

import (
	"bytes"
	"fmt"
	"image/png"
	"math"
	"strconv"
	"strings"
	"testing"
)

func decode(t *testing.T, data []byte) (w, h int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

func TestLinesRendersPNG(t *testing.T) {
	data, err := Lines(Options{Title: "loss", LogY: true},
		Curve{Name: "train", X: []float64{1, 2, 3}, Y: []float64{1, 0.1, 0.01}},
		Curve{Name: "validation", X: []float64{1, 3}, Y: []float64{1.2, 0.02}})
	if err != nil {
		t.Fatal(err)
	}
	if w, h := decode(t, data); w < 300 || h < 200 {
		t.Errorf("PNG is %dx%d", w, h)
	}
	if _, err := Lines(Options{}, Curve{X: []float64{1}, Y: nil}); err == nil {
		t.Error("mismatched curve gave no error")
	}
	if _, err := Lines(Options{}); err == nil {
		t.Error("no curves gave no error")
	}
}

func TestScatterDrawsPointsInTheirColour(t *testing.T) {
	pts := make([][2]float64, 0, 400)
	for i := 0; i < 400; i++ {
		pts = append(pts, [2]float64{float64(i%20) / 20, float64(i/20) / 20})
	}
	data, err := Scatter(Options{EqualAxes: true, Width: 300, Height: 300}, Points{XY: pts, Color: Palette[3], Radius: 3})
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	red := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 > 180 && g>>8 < 80 && bl>>8 < 80 {
				red++
			}
		}
	}
	if red < 1000 {
		t.Errorf("only %d red pixels: the points were not drawn", red)
	}
}

func TestScatterPanelsAndRegions(t *testing.T) {
	a := Points{Name: "a", XY: [][2]float64{{0, 0}, {1, 1}}}
	data, err := ScatterPanels(Options{Title: "panels"}, 2, Panel{Title: "one", Groups: []Points{a}},
		Panel{Title: "two", Groups: []Points{a}}, Panel{Title: "three", Groups: []Points{a}})
	if err != nil {
		t.Fatal(err)
	}
	// Three panels in two columns: two rows of square panels plus the title band.
	if w, h := decode(t, data); h <= w || w < 400 {
		t.Errorf("2x2 panels with a title: %dx%d, want about 454 wide and taller than wide", w, h)
	}
	data, err = Regions(Options{Title: "regions"}, 10, 10, -1, 1, -1, 1, func(ix, iy int) int { return ix / 5 }, a)
	if err != nil {
		t.Fatal(err)
	}
	decode(t, data)
	if _, err := Regions(Options{}, 0, 10, -1, 1, -1, 1, nil); err == nil {
		t.Error("Regions with an empty grid gave no error")
	}
}

func TestLogTicksLabelASubDecadeRange(t *testing.T) {
	ticks := logTicks{}.Ticks(0.25, 0.9)
	var labels []string
	for _, tk := range ticks {
		labels = append(labels, tk.Label)
	}
	if want := "[0.3 0.4 0.5 0.6 0.8]"; fmt.Sprint(labels) != want {
		t.Errorf("ticks on [0.25, 0.9] = %v, want %s", labels, want)
	}
	labels = labels[:0]
	for _, tk := range (logTicks{}).Ticks(0.02, 3) { // over a decade: 1, 2, 3, 5 only
		labels = append(labels, tk.Label)
	}
	if want := "[0.02 0.03 0.05 0.1 0.2 0.3 0.5 1 2 3]"; fmt.Sprint(labels) != want {
		t.Errorf("ticks on [0.02, 3] = %v, want %s", labels, want)
	}
	if got := (logTicks{}).Ticks(0, 1); got != nil {
		t.Errorf("ticks on a range touching 0 = %v, want none", got)
	}
}

func TestPreciseTicksOfStepsAreIntegers(t *testing.T) {
	for _, tk := range (PreciseTicks{}).Ticks(1, 1875) {
		if strings.Contains(tk.Label, ".") {
			t.Errorf("tick label %q on [1, 1875]: want an integer", tk.Label)
		}
	}
}

func TestPreciseTicksAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, tk := range (PreciseTicks{}).Ticks(2.14, 2.23) {
		if tk.Label == "" {
			continue
		}
		if seen[tk.Label] {
			t.Fatalf("label %q repeated on [2.14, 2.23]", tk.Label)
		}
		seen[tk.Label] = true
	}
	if len(seen) < 2 {
		t.Fatalf("only %d labels on [2.14, 2.23]", len(seen))
	}
}

// Every label is its tick's value: gonum's ticks on [2.144, 4.4] are 2.25, 3.25, 4.25, which
// were once labelled 2, 3, 4 (the curves looked 0.25 lower than they were).
func TestPreciseTicksLabelTheirValues(t *testing.T) {
	for _, r := range [][2]float64{{2.144, 4.4}, {1, 1875}, {2.14, 2.23}, {0.013, 0.97}, {-3.3, 12.7}} {
		for _, tk := range (PreciseTicks{}).Ticks(r[0], r[1]) {
			if tk.Label == "" {
				continue
			}
			v, err := strconv.ParseFloat(tk.Label, 64)
			if err != nil || math.Abs(v-tk.Value) > 1e-9*math.Max(1, math.Abs(tk.Value)) {
				t.Errorf("ticks on %v: label %q at value %g", r, tk.Label, tk.Value)
			}
		}
	}
}
