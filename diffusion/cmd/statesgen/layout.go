package main

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// placement is where a state goes in the final (standardized) data: the
// polar position of its centroid and the size of its bounding box, both
// measured on the course's states.pt.
type placement struct {
	Name          string
	AngleDeg      float64 // centroid angle, degrees counter-clockwise from +x
	Radius        float64 // centroid distance from the origin
	Width, Height float64 // bounding box of the state's points
}

// courseLayout lists the states in label order (0 Michigan, 1 Idaho, 2 Ohio,
// 3 Oklahoma, 4 Wisconsin). Angles and radii are the course's centroids;
// widths and heights are the bounding boxes of the course's points per state
// (each state is stretched independently, so the aspect ratios are the
// course's, not the map's).
var courseLayout = []placement{
	{"Michigan", 157, 1.43, 1.334, 1.278},
	{"Idaho", -120, 1.36, 0.834, 1.155},
	{"Ohio", 90, 1.07, 0.914, 0.942},
	{"Oklahoma", -58, 1.25, 1.421, 1.355},
	{"Wisconsin", 25, 1.47, 1.067, 1.097},
}

// keptRings returns the exterior rings of the polygons whose area is at
// least minFraction of the largest polygon's, dropping small islands.
func keptRings(polys []polygon, minFraction float64) []ring {
	largest := 0.0
	for _, p := range polys {
		largest = math.Max(largest, p[0].area())
	}
	var out []ring
	for _, p := range polys {
		if p[0].area() >= minFraction*largest {
			out = append(out, p[0])
		}
	}
	return out
}

// sampleOutline returns n points spaced evenly in arc length along the
// concatenated rings, the first half a spacing from the start of the first
// ring. Each ring gets a share of the points proportional to its length.
func sampleOutline(rings []ring, n int) ([]point, error) {
	total := 0.0
	for _, r := range rings {
		total += r.length()
	}
	if n <= 0 || total <= 0 {
		return nil, fmt.Errorf("cannot sample %d points on outlines of length %g", n, total)
	}
	step := total / float64(n)
	out := make([]point, 0, n)
	next := step / 2 // arc length of the next sample
	walked := 0.0    // arc length at the start of the current segment
	for _, r := range rings {
		for i := 0; i+1 < len(r) && len(out) < n; i++ {
			a, b := r[i], r[i+1]
			seg := math.Hypot(b.X-a.X, b.Y-a.Y)
			for len(out) < n && next <= walked+seg {
				t := (next - walked) / seg
				out = append(out, point{a.X + t*(b.X-a.X), a.Y + t*(b.Y-a.Y)})
				next += step
			}
			walked += seg
		}
	}
	// Rounding can leave the last sample just past the end.
	for len(out) < n {
		last := rings[len(rings)-1]
		out = append(out, last[len(last)-1])
	}
	return out, nil
}

// place stretches pts per axis so that, once jitter of standard deviation
// jitter is added, their bounding box is about width x height, and moves
// their mean to the polar position (angleDeg, radius).
func place(pts []point, p placement, jitter float64) []point {
	minX, minY := math.Inf(1), math.Inf(1)
	maxX, maxY := math.Inf(-1), math.Inf(-1)
	for _, q := range pts {
		minX, maxX = math.Min(minX, q.X), math.Max(maxX, q.X)
		minY, maxY = math.Min(minY, q.Y), math.Max(maxY, q.Y)
	}
	// Gaussian jitter widens the box of ~1000 points: measured, the final box
	// comes out right when the outline box is 3 sigma smaller per axis.
	sx := (p.Width - 3*jitter) / (maxX - minX)
	sy := (p.Height - 3*jitter) / (maxY - minY)
	out := make([]point, len(pts))
	var mx, my float64
	for i, q := range pts {
		out[i] = point{q.X * sx, q.Y * sy}
		mx += out[i].X
		my += out[i].Y
	}
	mx /= float64(len(out))
	my /= float64(len(out))
	a := p.AngleDeg * math.Pi / 180
	cx, cy := p.Radius*math.Cos(a), p.Radius*math.Sin(a)
	for i := range out {
		out[i].X += cx - mx
		out[i].Y += cy - my
	}
	return out
}

// addJitter adds independent Gaussian noise of the given standard deviation
// to every coordinate, from a fixed-seed PCG generator.
func addJitter(pts []point, sigma float64, rng *rand.Rand) {
	for i := range pts {
		pts[i].X += sigma * rng.NormFloat64()
		pts[i].Y += sigma * rng.NormFloat64()
	}
}

// standardize shifts and scales each axis to mean 0 and population standard
// deviation 1.
func standardize(pts []point) {
	n := float64(len(pts))
	var mx, my float64
	for _, p := range pts {
		mx += p.X
		my += p.Y
	}
	mx /= n
	my /= n
	var vx, vy float64
	for _, p := range pts {
		vx += (p.X - mx) * (p.X - mx)
		vy += (p.Y - my) * (p.Y - my)
	}
	sx, sy := math.Sqrt(vx/n), math.Sqrt(vy/n)
	for i := range pts {
		pts[i] = point{(pts[i].X - mx) / sx, (pts[i].Y - my) / sy}
	}
}
