package plot

import (
	"bytes"
	"image/color"
	"image/png"
	"math"
	"strings"
	"testing"
)

// blankImages returns n images of h x w zeros.
func blankImages(n, h, w int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, h*w)
	}
	return out
}

func TestImageGridSizeAndPixelPlacement(t *testing.T) {
	const h, w, rows, cols = 5, 4, 2, 3
	for _, tc := range []struct {
		name       string
		opts       GridOptions
		scale, gap int
	}{
		{"plain", GridOptions{Height: h, Width: w, Cols: cols}, 3, 2},
		{"labelled", GridOptions{Height: h, Width: w, Rows: rows, Scale: 4, Gap: 3, Title: "a title",
			RowLabels: []string{"clean", "noisy"}, ColTitles: []string{"σ=0", "σ=0.5", "σ=1"}}, 4, 3},
		{"column-major", GridOptions{Height: h, Width: w, Rows: rows, Cols: cols, ColumnMajor: true, Min: -1, Max: 1}, 3, 2},
	} {
		images := blankImages(rows*cols, h, w)
		for i := range images {
			for j := range images[i] {
				images[i][j] = float32(tc.opts.Min) // black, whatever the range
				if tc.opts.Min == 0 && tc.opts.Max == 0 {
					images[i][j] = 0
				}
			}
		}
		// One white pixel in image 4 at row 3, column 1.
		images[4][3*w+1] = 1
		data, err := ImageGrid(images, tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", tc.name, err)
		}
		_, l, err := gridImage(images, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != l.width || b.Dy() != l.height {
			t.Fatalf("%s: PNG is %dx%d, layout says %dx%d", tc.name, b.Dx(), b.Dy(), l.width, l.height)
		}
		scale, gap := tc.scale, tc.gap
		wantW := l.x0 + cols*w*scale + (cols-1)*gap + 6
		wantH := l.y0 + rows*h*scale + (rows-1)*gap + 6
		if l.width < wantW || l.height != wantH {
			t.Errorf("%s: %dx%d pixels, want %dx%d", tc.name, l.width, l.height, wantW, wantH)
		}
		r, c := 4/cols, 4%cols
		if tc.opts.ColumnMajor {
			r, c = 4%rows, 4/rows
		}
		x0 := l.x0 + c*(w*scale+gap)
		y0 := l.y0 + r*(h*scale+gap)
		white := color.RGBAModel.Convert(color.White)
		black := color.RGBAModel.Convert(color.Black)
		for dy := range scale {
			for dx := range scale {
				if got := color.RGBAModel.Convert(img.At(x0+1*scale+dx, y0+3*scale+dy)); got != white {
					t.Fatalf("%s: pixel of the white block at +%d,+%d is %v", tc.name, dx, dy, got)
				}
			}
		}
		// Its neighbours in the image, and the corners of the cell, are black.
		for _, p := range [][2]int{{0, 3}, {2, 3}, {1, 2}, {1, 4}, {0, 0}, {w - 1, h - 1}} {
			if got := color.RGBAModel.Convert(img.At(x0+p[0]*scale, y0+p[1]*scale)); got != black {
				t.Errorf("%s: image pixel %v is %v, want black", tc.name, p, got)
			}
		}
		// The separator right of the cell is white (when there is a cell to the right).
		if c+1 < cols {
			if got := color.RGBAModel.Convert(img.At(x0+w*scale, y0)); got != white {
				t.Errorf("%s: separator is %v", tc.name, got)
			}
		}
	}
}

func TestImageGridTextIsDrawn(t *testing.T) {
	images := blankImages(2, 8, 8)
	_, l, err := gridImage(images, GridOptions{Height: 8, Width: 8, RowLabels: []string{"noisy"}, ColTitles: []string{"t=0"}, Title: "T"})
	if err != nil {
		t.Fatal(err)
	}
	if l.labelW < 20 || l.colTitleH < 10 || l.titleH < 10 {
		t.Fatalf("no room for text: %+v", l)
	}
	img, _, _ := gridImage(images, GridOptions{Height: 8, Width: 8, RowLabels: []string{"noisy"}, ColTitles: []string{"t=0"}, Title: "T"})
	dark := 0
	for y := l.y0; y < l.y0+l.cellH; y++ {
		for x := 0; x < l.x0-2; x++ {
			if img.RGBAAt(x, y).R < 128 {
				dark++
			}
		}
	}
	if dark < 10 {
		t.Errorf("row label drew %d dark pixels", dark)
	}
}

func TestImageGridValuesClipAndNaN(t *testing.T) {
	im := []float32{-5, 0.5, 7, float32(math.NaN())}
	img, l, err := gridImage([][]float32{im}, GridOptions{Height: 1, Width: 4, Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := []uint8{0, 128, 255}
	for i, g := range want {
		if got := img.RGBAAt(l.x0+i, l.y0); got.R != g || got.G != g || got.B != g {
			t.Errorf("value %v drawn %v, want gray %d", im[i], got, g)
		}
	}
	if got := img.RGBAAt(l.x0+3, l.y0); got != NaNColor() {
		t.Errorf("NaN drawn %v", got)
	}
}

func TestImageGridErrors(t *testing.T) {
	ok := blankImages(3, 2, 2)
	for _, tc := range []struct {
		images [][]float32
		opts   GridOptions
		want   string
	}{
		{nil, GridOptions{Height: 2, Width: 2}, "no images"},
		{ok, GridOptions{}, "Height and Width"},
		{[][]float32{make([]float32, 3)}, GridOptions{Height: 2, Width: 2}, "image 0 has 3 values"},
		{ok, GridOptions{Height: 2, Width: 2, Rows: 1, Cols: 2}, "do not fit"},
		{ok, GridOptions{Height: 2, Width: 2, Min: 1, Max: 1}, "range"},
		{ok, GridOptions{Height: 2, Width: 2, Cols: -1}, "grid"},
		{[][]float32{nil}, GridOptions{Height: 1 << 16, Width: 1 << 16}, "too large"},
	} {
		_, err := ImageGrid(tc.images, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
	if _, err := SplitImages(make([]float32, 7), 2, 2); err == nil {
		t.Error("SplitImages of 7 values into 2x2 gave no error")
	}
	parts, err := SplitImages(make([]float32, 8), 2, 2)
	if err != nil || len(parts) != 2 || len(parts[1]) != 4 {
		t.Errorf("SplitImages: %d parts, %v", len(parts), err)
	}
}
