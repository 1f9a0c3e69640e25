// Command gen draws the example digits of package drawn (diffusion/data/drawn/digits/*.png)
// as pen strokes: polylines and arcs traced with a round pen, antialiased by 4x4
// supersampling, in several sizes, colours and backgrounds (so that the examples exercise
// drawn.Read's conversion). Run from the repository root:
//
//	go run ./diffusion/data/drawn/gen
package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

type pt struct{ x, y float64 }

// arc returns n+1 points of the arc of centre (cx, cy), radii (rx, ry), from angle a0 to a1
// (degrees, y down).
func arc(cx, cy, rx, ry, a0, a1 float64, n int) []pt {
	var out []pt
	for i := 0; i <= n; i++ {
		a := (a0 + (a1-a0)*float64(i)/float64(n)) * math.Pi / 180
		out = append(out, pt{cx + rx*math.Cos(a), cy + ry*math.Sin(a)})
	}
	return out
}

func join(parts ...[]pt) []pt {
	var out []pt
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

type digit struct {
	name          string
	w, h          int
	pen           float64 // pen radius, a fraction of the shorter side
	ink, paper    color.NRGBA
	strokes       [][]pt // in [0, 1]^2 of a square centred in the canvas
	wobble, slant float64
}

var digits = []digit{
	{name: "2_black_on_transparent", w: 256, h: 256, pen: 0.045, ink: color.NRGBA{0, 0, 0, 255}, paper: color.NRGBA{255, 255, 255, 0},
		strokes: [][]pt{join(arc(0.5, 0.33, 0.2, 0.16, 200, 370, 24), []pt{{0.62, 0.5}, {0.3, 0.82}, {0.74, 0.82}})}, wobble: 0.006},
	{name: "3_black_on_white", w: 256, h: 256, pen: 0.05, ink: color.NRGBA{20, 20, 20, 255}, paper: color.NRGBA{255, 255, 255, 255},
		strokes: [][]pt{join(arc(0.48, 0.32, 0.18, 0.15, 200, 450, 30), arc(0.48, 0.65, 0.2, 0.18, -90, 160, 30))}, wobble: 0.008},
	{name: "4_red_on_white_tall", w: 180, h: 260, pen: 0.05, ink: color.NRGBA{200, 30, 30, 255}, paper: color.NRGBA{250, 250, 250, 255},
		strokes: [][]pt{{{0.58, 0.85}, {0.6, 0.15}, {0.26, 0.6}, {0.76, 0.6}}}, wobble: 0.005},
	{name: "5_white_on_black", w: 200, h: 200, pen: 0.055, ink: color.NRGBA{255, 255, 255, 255}, paper: color.NRGBA{0, 0, 0, 255},
		strokes: [][]pt{{{0.7, 0.18}, {0.37, 0.18}, {0.34, 0.47}}, arc(0.48, 0.62, 0.2, 0.19, -130, 150, 30)}, wobble: 0.007},
	{name: "7_blue_on_cream_wide", w: 320, h: 240, pen: 0.045, ink: color.NRGBA{30, 50, 160, 255}, paper: color.NRGBA{245, 238, 215, 255},
		strokes: [][]pt{{{0.27, 0.2}, {0.74, 0.2}, {0.46, 0.85}}}, wobble: 0.006, slant: 0.05},
}

// distToSegment returns the distance from p to the segment ab.
func distToSegment(p, a, b pt) float64 {
	dx, dy := b.x-a.x, b.y-a.y
	l := dx*dx + dy*dy
	t := 0.0
	if l > 0 {
		t = math.Max(0, math.Min(1, ((p.x-a.x)*dx+(p.y-a.y)*dy)/l))
	}
	ex, ey := a.x+t*dx-p.x, a.y+t*dy-p.y
	return math.Hypot(ex, ey)
}

func render(d digit) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, d.w, d.h))
	side := float64(min(d.w, d.h))
	ox, oy := (float64(d.w)-side)/2, (float64(d.h)-side)/2
	// Wobble: a smooth deterministic displacement of the points, as a hand's.
	var segs [][2]pt
	for si, s := range d.strokes {
		for i := range s {
			f := float64(i + 7*si)
			s[i].x += d.wobble*math.Sin(1.7*f) + d.slant*(0.5-s[i].y)
			s[i].y += d.wobble * math.Cos(2.3*f)
		}
		for i := 1; i < len(s); i++ {
			segs = append(segs, [2]pt{s[i-1], s[i]})
		}
	}
	const ss = 4
	for y := range d.h {
		for x := range d.w {
			cover := 0
			for sy := range ss {
				for sx := range ss {
					p := pt{(float64(x) + (float64(sx)+0.5)/ss - ox) / side, (float64(y) + (float64(sy)+0.5)/ss - oy) / side}
					for _, sg := range segs {
						if distToSegment(p, sg[0], sg[1]) < d.pen {
							cover++
							break
						}
					}
				}
			}
			f := float64(cover) / (ss * ss)
			mix := func(a, b uint8) uint8 { return uint8(math.Round(float64(a)*(1-f) + float64(b)*f)) }
			img.SetNRGBA(x, y, color.NRGBA{mix(d.paper.R, d.ink.R), mix(d.paper.G, d.ink.G), mix(d.paper.B, d.ink.B), mix(d.paper.A, d.ink.A)})
		}
	}
	return img
}

func main() {
	dir := filepath.Join("diffusion", "data", "drawn", "digits")
	for _, d := range digits {
		var buf bytes.Buffer
		if err := png.Encode(&buf, render(d)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(dir, d.name+".png"), buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote", d.name)
	}
}
