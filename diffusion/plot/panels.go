package plot

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Panel is one scatter plot of a grid of panels.
type Panel struct {
	Title  string
	Groups []Points
}

// ScatterPanels draws panels side by side, cols per row, all with the same axis ranges
// (opts.XMin.. when set, else the range of all points) and returns the PNG. opts.Width
// and opts.Height are the size of one panel (default 6 cm square).
func ScatterPanels(opts Options, cols int, panels ...Panel) ([]byte, error) {
	if len(panels) == 0 {
		return nil, errors.New("plot.ScatterPanels: no panels")
	}
	if cols <= 0 {
		cols = len(panels)
	}
	rows := (len(panels) + cols - 1) / cols
	pw, ph := opts.Width, opts.Height
	if pw <= 0 {
		pw = 6 * vg.Centimeter
	}
	if ph <= 0 {
		ph = pw
	}
	xmin, xmax, ymin, ymax := opts.XMin, opts.XMax, opts.YMin, opts.YMax
	if !(xmin < xmax) || !(ymin < ymax) {
		xmin, xmax, ymin, ymax = bounds(panels)
	}
	plots := make([][]*plot.Plot, rows)
	for r := range plots {
		plots[r] = make([]*plot.Plot, cols)
	}
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.Title
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xmin, xmax, ymin, ymax
		for j, g := range pn.Groups {
			if i > 0 {
				g.Name = "" // one legend, on the first panel
			}
			if err := addScatter(p, g, j); err != nil {
				return nil, err
			}
		}
		plots[i/cols][i%cols] = p
	}
	png, err := Tiles(opts.Title, plots, pw, ph)
	if err != nil {
		return nil, fmt.Errorf("plot.ScatterPanels: %w", err)
	}
	return png, nil
}

// Tiles renders a grid of gonum plots (rows of equal length; nil cells stay empty), each
// cell w x h, under an optional title, as PNG bytes: the layout of every multi-panel figure.
func Tiles(title string, plots [][]*plot.Plot, w, h vg.Length) ([]byte, error) {
	if len(plots) == 0 || len(plots[0]) == 0 {
		return nil, fmt.Errorf("plot.Tiles: no plots")
	}
	rows, cols := len(plots), len(plots[0])
	top := 0 * vg.Centimeter
	if title != "" {
		top = vg.Centimeter
	}
	canvas := vgimg.New(w*vg.Length(cols), h*vg.Length(rows)+top)
	dc := draw.New(canvas)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	if title != "" {
		font := plot.DefaultFont
		font.Size = vg.Points(13)
		style := draw.TextStyle{Color: color.Black, Font: font, Handler: plot.DefaultTextHandler, XAlign: draw.XCenter}
		dc.FillText(style, vg.Point{X: dc.Max.X / 2, Y: dc.Max.Y - top*0.75}, title)
		dc.Max.Y -= top
	}
	canvases := plot.Align(plots, draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter, PadY: vg.Millimeter}, dc)
	for r := range plots {
		for c := range plots[r] {
			if plots[r][c] != nil {
				plots[r][c].Draw(canvases[r][c])
			}
		}
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: canvas}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("plot.Tiles: %w", err)
	}
	return buf.Bytes(), nil
}

func addScatter(p *plot.Plot, g Points, index int) error {
	xys := make(plotter.XYs, 0, len(g.XY))
	for _, q := range g.XY {
		if isFinite(q[0]) && isFinite(q[1]) {
			xys = append(xys, plotter.XY{X: q[0], Y: q[1]})
		}
	}
	if len(xys) == 0 {
		return nil
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	s.GlyphStyle.Shape = draw.CircleGlyph{}
	s.GlyphStyle.Radius = g.Radius
	if s.GlyphStyle.Radius <= 0 {
		s.GlyphStyle.Radius = vg.Points(1)
	}
	s.GlyphStyle.Color = g.Color
	if g.Color == nil {
		s.GlyphStyle.Color = Palette[index%len(Palette)]
	}
	p.Add(s)
	if g.Name != "" {
		p.Legend.Add(g.Name, s)
	}
	return nil
}

func bounds(panels []Panel) (xmin, xmax, ymin, ymax float64) {
	first := true
	for _, pn := range panels {
		for _, g := range pn.Groups {
			for _, q := range g.XY {
				if !isFinite(q[0]) || !isFinite(q[1]) {
					continue
				}
				if first {
					xmin, xmax, ymin, ymax, first = q[0], q[0], q[1], q[1], false
					continue
				}
				xmin, xmax = min(xmin, q[0]), max(xmax, q[0])
				ymin, ymax = min(ymin, q[1]), max(ymax, q[1])
			}
		}
	}
	if first || xmin == xmax || ymin == ymax {
		return -1, 1, -1, 1
	}
	padX, padY := (xmax-xmin)*0.03, (ymax-ymin)*0.03
	return xmin - padX, xmax + padX, ymin - padY, ymax + padY
}

// Regions draws a categorical map (e.g. a classifier's decision regions): cell (ix, iy)
// of an nx x ny grid over [xmin, xmax] x [ymin, ymax] gets the lightened palette colour
// of class(ix, iy) (iy = 0 at the bottom), and the point groups are drawn on top.
func Regions(opts Options, nx, ny int, xmin, xmax, ymin, ymax float64, class func(ix, iy int) int, groups ...Points) ([]byte, error) {
	if nx <= 0 || ny <= 0 || !(xmin < xmax) || !(ymin < ymax) {
		return nil, fmt.Errorf("plot.Regions: bad grid %dx%d over [%g,%g]x[%g,%g]", nx, ny, xmin, xmax, ymin, ymax)
	}
	img := image.NewRGBA(image.Rect(0, 0, nx, ny))
	for iy := 0; iy < ny; iy++ {
		for ix := 0; ix < nx; ix++ {
			k := class(ix, iy)
			c := color.RGBA{255, 255, 255, 255}
			if k >= 0 {
				c = lighten(Palette[k%len(Palette)], 0.6)
			}
			img.SetRGBA(ix, ny-1-iy, c) // image rows go top-down
		}
	}
	p := newPlot(opts)
	p.Add(plotter.NewImage(img, xmin, ymin, xmax, ymax))
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xmin, xmax, ymin, ymax
	for j, g := range groups {
		if err := addScatter(p, g, j); err != nil {
			return nil, err
		}
	}
	return render(p, opts)
}

func lighten(c color.RGBA, f float64) color.RGBA {
	l := func(v uint8) uint8 { return uint8(float64(v) + (255-float64(v))*f) }
	return color.RGBA{l(c.R), l(c.G), l(c.B), 255}
}
