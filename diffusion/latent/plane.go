package latent

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot/vg"

	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/mnisteval"
	"github.com/godiffusion/notebooks/diffusion/plot"
)

// PlaneReading is how the evaluator reads the decoder's output over a square of the latent
// plane (d_z = 2): the bound on the accuracy of any sampler of latents. A digit that the
// evaluator reads nowhere in the square cannot be generated correctly by any choice of z in
// it, however good the latent model or its guidance.
type PlaneReading struct {
	// N is the grid size (N x N cells), Extent the half-width of the square [-Extent, Extent]^2
	// in the VAE's latent coordinates (not standardized).
	N      int
	Extent float64
	// Class is the evaluator's argmax of the decoded centre of every cell, row by row from
	// the bottom (z2 smallest) and left (z1 smallest).
	Class []int
	// Share is the fraction of the cells read as each digit.
	Share [mnist.NumClasses]float64
	// Best is, per digit, the evaluator's highest probability of that digit over the grid.
	Best [mnist.NumClasses]float64
}

// ReadPlane decodes the centres of an n x n grid over [-extent, extent]^2 of the latent plane
// and has the evaluator classify them; extent <= 0 takes the smallest square (rounded up to
// a multiple of 0.5) that holds the encoder mean of every test digit. Only for a VAE with
// d_z = 2.
func (s *Study) ReadPlane(ev *mnisteval.Evaluator, n int, extent float64) (*PlaneReading, error) {
	if ev == nil {
		return nil, fmt.Errorf("latent.ReadPlane: nil evaluator")
	}
	if s.Latent() != 2 {
		return nil, fmt.Errorf("latent.ReadPlane: the latent plane is the whole latent space only for d_z = 2, the VAE has %d", s.Latent())
	}
	if extent <= 0 {
		z, err := s.VAE.Encode(s.Test.Images)
		if err != nil {
			return nil, err
		}
		for _, v := range z {
			extent = max(extent, math.Abs(float64(v)))
		}
		extent = math.Ceil(2*extent) / 2
	}
	if n < 2 || n > 1000 || !(extent > 0) || math.IsInf(extent, 0) {
		return nil, fmt.Errorf("latent.ReadPlane: need 2 <= n <= 1000 and a finite extent > 0, got %d, %g", n, extent)
	}
	z := make([]float32, 0, 2*n*n)
	for iy := range n {
		for ix := range n {
			z = append(z, float32(cellCentre(ix, n, extent)), float32(cellCentre(iy, n, extent)))
		}
	}
	x, err := s.VAE.Decode(z)
	if err != nil {
		return nil, err
	}
	probs, _, err := ev.Outputs(x, n*n)
	if err != nil {
		return nil, err
	}
	return newPlaneReading(probs, n, extent), nil
}

// newPlaneReading is ReadPlane from the evaluator's probabilities of the n*n cells.
func newPlaneReading(probs []float32, n int, extent float64) *PlaneReading {
	r := &PlaneReading{N: n, Extent: extent, Class: make([]int, n*n)}
	k := mnist.NumClasses
	for i := range r.Class {
		p := probs[i*k : (i+1)*k]
		best := 0
		for c := range p {
			if p[c] > p[best] {
				best = c
			}
			r.Best[c] = max(r.Best[c], float64(p[c]))
		}
		r.Class[i] = best
		r.Share[best] += 1 / float64(n*n)
	}
	return r
}

// cellCentre is the coordinate of the centre of cell i of n over [-extent, extent].
func cellCentre(i, n int, extent float64) float64 {
	return -extent + (float64(i)+0.5)*2*extent/float64(n)
}

// Missing returns the digits that the evaluator reads in no cell of the grid.
func (r *PlaneReading) Missing() []int {
	var out []int
	for d, s := range r.Share {
		if s == 0 {
			out = append(out, d)
		}
	}
	return out
}

// AccuracyBound is the highest mean accuracy over the ten digits (requested equally often)
// that any sampler of latents inside the square can reach: the share of digits the evaluator
// reads somewhere in it.
func (r *PlaneReading) AccuracyBound() float64 {
	return 1 - float64(len(r.Missing()))/float64(mnist.NumClasses)
}

// Summary is a Markdown paragraph: the share of the plane read as each digit, the digits
// read nowhere and the accuracy bound they imply.
func (r *PlaneReading) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**The evaluator's reading of the decoded latent plane** (%d x %d points over [-%g, %g]^2): share of the plane read as each digit ", r.N, r.N, r.Extent, r.Extent)
	for d, s := range r.Share {
		if d > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d: %.1f%%", d, 100*s)
	}
	b.WriteString(". ")
	if m := r.Missing(); len(m) > 0 {
		fmt.Fprintf(&b, "No point of the plane is read as %v (their highest probability anywhere:", m)
		for i, d := range m {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %d: %.3f", d, r.Best[d])
		}
		fmt.Fprintf(&b, "), so no sampler of latents in it, however guided, gets them right: mean accuracy <= %.2f.", r.AccuracyBound())
	} else {
		b.WriteString("Every digit is read somewhere in the plane.")
	}
	return b.String()
}

// PlaneFigure draws the reading as coloured regions (the digit the evaluator reads there)
// under the encoder means of up to n test digits, coloured by their true digit.
func (s *Study) PlaneFigure(r *PlaneReading, n int) ([]byte, error) {
	if r == nil || len(r.Class) != r.N*r.N {
		return nil, fmt.Errorf("latent.PlaneFigure: empty reading")
	}
	n = min(n, s.Test.N)
	z, err := s.VAE.Encode(s.Test.Images[:n*mnist.Rows*mnist.Cols])
	if err != nil {
		return nil, err
	}
	groups := make([]plot.Points, mnist.NumClasses)
	for k := range groups {
		groups[k] = plot.Points{Name: fmt.Sprint(k), Color: plot.Palette[k%len(plot.Palette)], Radius: 1}
	}
	for i, p := range xy(z, 2) {
		if math.Abs(p[0]) <= r.Extent && math.Abs(p[1]) <= r.Extent {
			groups[s.Test.Labels[i]].XY = append(groups[s.Test.Labels[i]].XY, p)
		}
	}
	title := fmt.Sprintf("Digit read in decode(z) (regions), %d test digits (points)", n)
	return plot.Regions(plot.Options{Title: title, XLabel: "z1", YLabel: "z2", Width: 15 * vg.Centimeter, Height: 14 * vg.Centimeter},
		r.N, r.N, -r.Extent, r.Extent, -r.Extent, r.Extent, func(ix, iy int) int { return r.Class[iy*r.N+ix] }, groups...)
}
