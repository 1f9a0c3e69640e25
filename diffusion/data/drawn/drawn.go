// Package drawn turns any image of a hand-drawn digit (PNG, JPEG or GIF; any size, colour or
// grey, light or dark background, with or without transparency) into an MNIST-style digit:
// 28x28 grey values in [0, 1], a light digit on black, its bounding box scaled to fit 20x20
// and its centre of mass at the centre, as LeCun et al. prepared MNIST. It also ships a few
// drawn digits (Examples) for the editing notebook.
package drawn

import (
	"bytes"
	"embed"
	"fmt"
	"image"
	"image/color"
	_ "image/gif"  // decoders for image.Decode
	_ "image/jpeg" // decoders for image.Decode
	_ "image/png"  // decoders for image.Decode
	"io"
	"math"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/image/draw"
)

// Size is the side of a digit in pixels; Box the side of the box its ink is scaled into.
const (
	Size = 28
	Box  = 20
)

//go:embed digits/*.png
var examples embed.FS

// Example is one of the shipped drawn digits.
type Example struct {
	Name  string    // file name without extension, e.g. "3_black_on_white"
	Label int       // the digit drawn
	Image []float32 // Size x Size values in [0, 1]
}

// Examples returns the shipped drawn digits (diffusion/data/drawn/digits/*.png, made by
// diffusion/data/drawn/gen), converted by Read, in file-name order.
func Examples() ([]Example, error) {
	entries, err := examples.ReadDir("digits")
	if err != nil {
		return nil, err
	}
	var out []Example
	for _, e := range entries {
		data, err := examples.ReadFile(path.Join("digits", e.Name()))
		if err != nil {
			return nil, err
		}
		img, err := Read(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("drawn: shipped example %s: %w", e.Name(), err)
		}
		name := strings.TrimSuffix(e.Name(), path.Ext(e.Name()))
		label := int(name[0] - '0')
		if label < 0 || label > 9 {
			return nil, fmt.Errorf("drawn: shipped example %s does not start with its digit", e.Name())
		}
		out = append(out, Example{Name: name, Label: label, Image: img})
	}
	return out, nil
}

// ReadFile reads the image file at path with Read; errors name the file.
func ReadFile(file string) ([]float32, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("drawn: %w", err)
	}
	defer f.Close()
	img, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return img, nil
}

// Read decodes an image and returns it as an MNIST-style digit (Size x Size values in
// [0, 1]): transparent pixels are composited on white; the image is turned to grey
// (luminance) and inverted when its border is lighter than its middle (dark ink on light
// paper); the background level (the border's median) becomes 0 and the darkest ink 1; the
// bounding box of the ink is scaled to fit Box x Box pixels (aspect kept, Catmull-Rom) and
// placed with its centre of mass at the centre. Not an image, or an image without ink (a
// single colour), is an error.
func Read(r io.Reader) ([]float32, error) {
	src, format, err := image.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("drawn: not a PNG, JPEG or GIF image: %w", err)
	}
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < 1 || h < 1 {
		return nil, fmt.Errorf("drawn: the %s image is empty (%dx%d)", format, w, h)
	}
	grey := make([]float64, w*h)
	for y := range h {
		for x := range w {
			c := color.NRGBA64Model.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
			a := float64(c.A) / 0xffff
			lum := (0.299*float64(c.R) + 0.587*float64(c.G) + 0.114*float64(c.B)) / 0xffff
			grey[y*w+x] = a*lum + (1 - a) // on white
		}
	}
	var border []float64
	for x := range w {
		border = append(border, grey[x], grey[(h-1)*w+x])
	}
	for y := range h {
		border = append(border, grey[y*w], grey[y*w+w-1])
	}
	slices.Sort(border)
	bg := border[len(border)/2]
	var middle float64
	for y := h / 4; y < h-h/4; y++ {
		for x := w / 4; x < w-w/4; x++ {
			middle += grey[y*w+x]
		}
	}
	middle /= float64(max(1, (h-2*(h/4))*(w-2*(w/4))))
	if middle < bg { // dark ink on light paper: make the ink light
		for i := range grey {
			grey[i] = 1 - grey[i]
		}
		bg = 1 - bg
	}
	var peak float64
	for i, v := range grey {
		grey[i] = math.Max(0, v-bg)
		peak = math.Max(peak, grey[i])
	}
	if peak < 0.05 {
		return nil, fmt.Errorf("drawn: no digit in the %dx%d %s image (it is a single colour)", w, h, format)
	}
	// The bounding box of the ink (above a tenth of the peak).
	x0, y0, x1, y1 := w, h, -1, -1
	for y := range h {
		for x := range w {
			if grey[y*w+x] > 0.1*peak {
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			}
		}
	}
	ink := image.NewGray16(image.Rect(0, 0, w, h))
	for i, v := range grey {
		ink.Pix[2*i], ink.Pix[2*i+1] = uint8(uint16(v/peak*0xffff)>>8), uint8(uint16(v/peak*0xffff))
	}
	bw, bh := x1-x0+1, y1-y0+1
	scale := float64(Box) / float64(max(bw, bh))
	tw, th := max(1, int(math.Round(float64(bw)*scale))), max(1, int(math.Round(float64(bh)*scale)))
	small := image.NewGray16(image.Rect(0, 0, tw, th))
	draw.CatmullRom.Scale(small, small.Bounds(), ink, image.Rect(x0, y0, x1+1, y1+1), draw.Src, nil)
	// Place it with its centre of mass at the centre of the digit.
	var mass, cx, cy float64
	vals := make([]float64, tw*th)
	for y := range th {
		for x := range tw {
			v := float64(small.Gray16At(x, y).Y) / 0xffff
			vals[y*tw+x] = v
			mass += v
			cx += v * (float64(x) + 0.5)
			cy += v * (float64(y) + 0.5)
		}
	}
	ox := int(math.Round(float64(Size)/2 - cx/mass))
	oy := int(math.Round(float64(Size)/2 - cy/mass))
	ox, oy = min(max(ox, 0), Size-tw), min(max(oy, 0), Size-th)
	out := make([]float32, Size*Size)
	for y := range th {
		for x := range tw {
			out[(oy+y)*Size+ox+x] = float32(min(1, max(0, vals[y*tw+x])))
		}
	}
	return out, nil
}

// ReadMask reads an image file as an inpainting mask of size x size values: the image is
// resized (Catmull-Rom) and turned to grey (transparent pixels count as black); pixels
// lighter than mid-grey become 1 (generate), the others 0 (keep). A mask with nothing to
// generate, or nothing to keep, is an error.
func ReadMask(file string, size int) ([]float32, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("drawn: %w", err)
	}
	defer f.Close()
	src, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("drawn: %s is not a PNG, JPEG or GIF image: %w", file, err)
	}
	small := image.NewGray16(image.Rect(0, 0, size, size))
	draw.CatmullRom.Scale(small, small.Bounds(), src, src.Bounds(), draw.Src, nil)
	out := make([]float32, size*size)
	var ones int
	for y := range size {
		for x := range size {
			if small.Gray16At(x, y).Y > 0x7fff {
				out[y*size+x] = 1
				ones++
			}
		}
	}
	if ones == 0 || ones == len(out) {
		return nil, fmt.Errorf("drawn: the mask %s marks %d of %d pixels to generate: it needs some of each", file, ones, len(out))
	}
	return out, nil
}
