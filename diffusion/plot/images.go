package plot

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	stddraw "image/draw"
	"image/png"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// GridOptions configures ImageGrid.
type GridOptions struct {
	// Height and Width are the size of every image in pixels (required).
	Height, Width int
	// Rows and Cols are the shape of the grid. When both are 0 the images form one row;
	// when one is 0 it is derived from the number of images; when both are set they
	// must hold all images (cells without an image stay blank).
	Rows, Cols int
	// ColumnMajor fills the grid column by column instead of row by row.
	ColumnMajor bool
	// Min and Max are the values drawn black and white; values outside are clipped.
	// Both 0 means [0, 1]. NaN pixels are drawn magenta so that they stand out.
	Min, Max float64
	// Scale is the nearest-neighbour magnification of each pixel (default 3).
	Scale int
	// Gap is the width in pixels of the white separators between images (default 2;
	// negative for none).
	Gap int
	// Title is drawn above the grid.
	Title string
	// RowLabels are drawn left of the rows and ColTitles above the columns (missing or
	// empty entries are left blank). A title wider than its column overflows it.
	RowLabels, ColTitles []string
	// FontSize is the text size in pixels (default 14).
	FontSize float64
}

// NaNColor is the colour of NaN pixels in ImageGrid.
func NaNColor() color.RGBA { return color.RGBA{R: 255, G: 0, B: 255, A: 255} }

// gridLayout is the pixel geometry of an image grid.
type gridLayout struct {
	rows, cols     int
	cellW, cellH   int // size of one magnified image
	scale, gap     int
	x0, y0         int // top-left corner of the first cell
	width, height  int // size of the whole picture
	labelW, titleH int
	colTitleH      int
	fontSize       float64
}

// cellOrigin returns the top-left pixel of the cell at grid row r, column c.
func (l gridLayout) cellOrigin(r, c int) (x, y int) {
	return l.x0 + c*(l.cellW+l.gap), l.y0 + r*(l.cellH+l.gap)
}

// SplitImages cuts n consecutive images of height x width values (e.g. the flat values
// of a [n, height, width] tensor) into one slice per image, without copying.
func SplitImages(flat []float32, height, width int) ([][]float32, error) {
	if height <= 0 || width <= 0 {
		return nil, fmt.Errorf("plot.SplitImages: image size %dx%d", height, width)
	}
	p := height * width
	if len(flat)%p != 0 {
		return nil, fmt.Errorf("plot.SplitImages: %d values are not a whole number of %dx%d images", len(flat), height, width)
	}
	out := make([][]float32, len(flat)/p)
	for i := range out {
		out[i] = flat[i*p : (i+1)*p : (i+1)*p]
	}
	return out, nil
}

// ImageGrid draws grayscale images in a grid, each pixel magnified with nearest-neighbour
// scaling, with optional row labels, column titles and a title, and returns the PNG.
// images are in grid order (row by row unless opts.ColumnMajor); each holds
// opts.Height*opts.Width values, row-major; a nil image leaves its cell blank.
func ImageGrid(images [][]float32, opts GridOptions) ([]byte, error) {
	img, err := GridImage(images, opts)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("plot.ImageGrid: %w", err)
	}
	return buf.Bytes(), nil
}

// GridImage is ImageGrid returning the picture instead of a PNG (e.g. for the frames
// of an animation).
func GridImage(images [][]float32, opts GridOptions) (*image.RGBA, error) {
	img, _, err := gridImage(images, opts)
	return img, err
}

func gridImage(images [][]float32, opts GridOptions) (*image.RGBA, gridLayout, error) {
	l, err := layoutGrid(images, &opts)
	if err != nil {
		return nil, l, fmt.Errorf("plot.ImageGrid: %w", err)
	}
	img, err := drawText(l, opts)
	if err != nil {
		return nil, l, fmt.Errorf("plot.ImageGrid: %w", err)
	}
	lo, hi := opts.Min, opts.Max
	for i, pixels := range images {
		if pixels == nil {
			continue
		}
		r, c := i/l.cols, i%l.cols
		if opts.ColumnMajor {
			r, c = i%l.rows, i/l.rows
		}
		x0, y0 := l.cellOrigin(r, c)
		for py := range opts.Height {
			for px := range opts.Width {
				col := grayOf(pixels[py*opts.Width+px], lo, hi)
				for dy := range l.scale {
					off := img.PixOffset(x0+px*l.scale, y0+py*l.scale+dy)
					for dx := range l.scale {
						img.Pix[off+4*dx], img.Pix[off+4*dx+1], img.Pix[off+4*dx+2], img.Pix[off+4*dx+3] = col.R, col.G, col.B, 255
					}
				}
			}
		}
	}
	return img, l, nil
}

// grayOf maps v from [lo, hi] to black..white, clipped; NaN is NaNColor.
func grayOf(v float32, lo, hi float64) color.RGBA {
	f := float64(v)
	if math.IsNaN(f) {
		return NaNColor()
	}
	t := (f - lo) / (hi - lo)
	t = math.Max(0, math.Min(1, t))
	g := uint8(math.Round(255 * t))
	return color.RGBA{R: g, G: g, B: g, A: 255}
}

// layoutGrid checks the images and options (filling in defaults) and places the cells.
func layoutGrid(images [][]float32, o *GridOptions) (gridLayout, error) {
	var l gridLayout
	if len(images) == 0 {
		return l, errors.New("no images")
	}
	if o.Height <= 0 || o.Width <= 0 {
		return l, fmt.Errorf("image size %dx%d: set GridOptions.Height and Width", o.Height, o.Width)
	}
	for i, im := range images {
		if im != nil && len(im) != o.Height*o.Width {
			return l, fmt.Errorf("image %d has %d values, want %dx%d = %d", i, len(im), o.Height, o.Width, o.Height*o.Width)
		}
	}
	if o.Min == 0 && o.Max == 0 {
		o.Max = 1
	}
	if !(o.Min < o.Max) || math.IsInf(o.Min, 0) || math.IsInf(o.Max, 0) {
		return l, fmt.Errorf("value range [%v, %v] is empty or infinite", o.Min, o.Max)
	}
	if o.Rows < 0 || o.Cols < 0 {
		return l, fmt.Errorf("grid of %d x %d", o.Rows, o.Cols)
	}
	n := len(images)
	l.rows, l.cols = o.Rows, o.Cols
	switch {
	case l.rows == 0 && l.cols == 0:
		l.rows, l.cols = 1, n
	case l.rows == 0:
		l.rows = (n + l.cols - 1) / l.cols
	case l.cols == 0:
		l.cols = (n + l.rows - 1) / l.rows
	}
	if l.rows*l.cols < n {
		return l, fmt.Errorf("%d images do not fit a grid of %d x %d", n, l.rows, l.cols)
	}
	l.scale = o.Scale
	if l.scale <= 0 {
		l.scale = 3
	}
	l.gap = o.Gap
	if l.gap == 0 {
		l.gap = 2
	}
	l.gap = max(l.gap, 0)
	l.cellW, l.cellH = o.Width*l.scale, o.Height*l.scale
	const maxPixels = 1 << 27 // 128 Mpixel, 512 MB of RGBA
	if l.cellW > maxPixels || l.cellH > maxPixels || int64(l.cellW)*int64(l.cellH)*int64(l.rows*l.cols) > maxPixels {
		return l, fmt.Errorf("grid of %d x %d images of %dx%d at scale %d is too large", l.rows, l.cols, o.Width, o.Height, l.scale)
	}
	l.fontSize = o.FontSize
	if l.fontSize <= 0 {
		l.fontSize = 14
	}
	const pad = 6
	body := textStyle(l.fontSize)
	for _, s := range o.RowLabels {
		l.labelW = max(l.labelW, int(math.Ceil(float64(body.Width(s))))+8)
	}
	for _, s := range o.ColTitles {
		if s != "" {
			l.colTitleH = int(math.Ceil(float64(body.Height(s)))) + 4
		}
	}
	if o.Title != "" {
		l.titleH = int(math.Ceil(float64(textStyle(l.fontSize+2).Height(o.Title)))) + 6
	}
	l.x0, l.y0 = pad+l.labelW, pad+l.titleH+l.colTitleH
	l.width = l.x0 + l.cols*l.cellW + (l.cols-1)*l.gap + pad
	l.height = l.y0 + l.rows*l.cellH + (l.rows-1)*l.gap + pad
	if o.Title != "" {
		l.width = max(l.width, int(math.Ceil(float64(textStyle(l.fontSize+2).Width(o.Title))))+2*pad)
	}
	return l, nil
}

// textStyle is black text of the default font, size in pixels (the canvas runs at 72
// DPI, where a point is a pixel).
func textStyle(size float64) draw.TextStyle {
	return draw.TextStyle{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, vg.Length(size)),
		Handler: plot.DefaultTextHandler,
	}
}

// drawText returns a white picture of the layout's size with the title, row labels and
// column titles drawn in.
func drawText(l gridLayout, o GridOptions) (*image.RGBA, error) {
	canvas := vgimg.NewWith(vgimg.UseWH(vg.Length(l.width), vg.Length(l.height)), vgimg.UseDPI(72))
	dc := draw.New(canvas)
	// y grows downwards in pixels and upwards on the canvas.
	up := func(y float64) vg.Length { return vg.Length(float64(l.height) - y) }
	gridW := l.cols*l.cellW + (l.cols-1)*l.gap
	if o.Title != "" {
		st := textStyle(l.fontSize + 2)
		st.XAlign, st.YAlign = draw.XCenter, draw.YTop
		x := float64(l.x0) + float64(gridW)/2
		x = math.Max(x, float64(st.Width(o.Title))/2+2)
		dc.FillText(st, vg.Point{X: vg.Length(x), Y: up(6)}, o.Title)
	}
	st := textStyle(l.fontSize)
	st.XAlign, st.YAlign = draw.XCenter, draw.YBottom
	for c, s := range o.ColTitles {
		if c >= l.cols || s == "" {
			continue
		}
		x, _ := l.cellOrigin(0, c)
		dc.FillText(st, vg.Point{X: vg.Length(float64(x) + float64(l.cellW)/2), Y: up(float64(l.y0) - 3)}, s)
	}
	st.XAlign, st.YAlign = draw.XRight, draw.YCenter
	for r, s := range o.RowLabels {
		if r >= l.rows || s == "" {
			continue
		}
		_, y := l.cellOrigin(r, 0)
		dc.FillText(st, vg.Point{X: vg.Length(l.x0 - 6), Y: up(float64(y) + float64(l.cellH)/2)}, s)
	}
	src := canvas.Image()
	if b := src.Bounds(); b.Dx() != l.width || b.Dy() != l.height {
		return nil, fmt.Errorf("canvas is %dx%d pixels, want %dx%d", b.Dx(), b.Dy(), l.width, l.height)
	}
	img := image.NewRGBA(image.Rect(0, 0, l.width, l.height))
	stddraw.Draw(img, img.Bounds(), src, src.Bounds().Min, stddraw.Src)
	return img, nil
}
