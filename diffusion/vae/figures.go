package vae

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
	"gonum.org/v1/plot/vg"

	"github.com/godiffusion/notebooks/diffusion/data/mnist"
	"github.com/godiffusion/notebooks/diffusion/plot"
	"github.com/godiffusion/notebooks/diffusion/seeded"
)

// grid draws flat 28 x 28 images in [0, 1] as a grid.
func grid(images []float32, opts plot.GridOptions) ([]byte, error) {
	split, err := plot.SplitImages(images, mnist.Rows, mnist.Cols)
	if err != nil {
		return nil, err
	}
	opts.Height, opts.Width = mnist.Rows, mnist.Cols
	return plot.ImageGrid(split, opts)
}

// Term selects a curve of CurveFigure.
type Term string

// Terms of CurveFigure.
const (
	NegELBO Term = "-ELBO"
	Recon   Term = "reconstruction (BCE)"
	KLTerm  Term = "KL"
)

// CurveFigure plots one term of -ELBO per epoch, train and test, in nats per image.
func CurveFigure(h *History, term Term) ([]byte, error) {
	if h == nil || len(h.Train) == 0 {
		return nil, fmt.Errorf("vae.CurveFigure: empty history")
	}
	pick := func(l Losses) float64 {
		switch term {
		case Recon:
			return l.Recon
		case KLTerm:
			return l.KL
		}
		return l.ELBO
	}
	if term != NegELBO && term != Recon && term != KLTerm {
		return nil, fmt.Errorf("vae.CurveFigure: unknown term %q", term)
	}
	curve := func(name string, ls []Losses) plot.Curve {
		c := plot.Curve{Name: name}
		for i, l := range ls {
			c.X = append(c.X, float64(i+1))
			c.Y = append(c.Y, pick(l))
		}
		return c
	}
	curves := []plot.Curve{curve("train (mean over the epoch)", h.Train)}
	if len(h.Test) > 0 {
		curves = append(curves, curve("test (after the epoch)", h.Test))
	}
	return plot.Lines(plot.Options{Title: fmt.Sprintf("%s per epoch", term), XLabel: "epoch", YLabel: "nats per image",
		Width: 12 * vg.Centimeter, Height: 8 * vg.Centimeter}, curves...)
}

// PriorSamples decodes n latents drawn from the prior N(0, I) with seed.
func (m *Model) PriorSamples(n int, seed int64) ([]float32, error) {
	if n < 1 {
		return nil, fmt.Errorf("vae: need n >= 1 prior samples, got %d", n)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9a10))
	return m.Decode(seeded.Normals(rng, n*m.Config.Latent))
}

// PriorFigure is a rows x cols grid of decoded prior samples.
func (m *Model) PriorFigure(rows, cols int, seed int64) ([]byte, error) {
	x, err := m.PriorSamples(rows*cols, seed)
	if err != nil {
		return nil, err
	}
	return grid(x, plot.GridOptions{Rows: rows, Cols: cols, Scale: 2, Title: "Samples of the prior: decode(z), z ~ N(0, I)"})
}

// ReconstructionFigure shows n test images (first row of each pair) and their
// reconstructions decode(encoder mean) (second row), cols per row.
func (m *Model) ReconstructionFigure(set *mnist.Set, n, cols int) ([]byte, error) {
	if set == nil || n < 1 || cols < 1 {
		return nil, fmt.Errorf("vae.ReconstructionFigure: need a set, n >= 1 and cols >= 1")
	}
	n = min(n, set.N)
	cols = min(cols, n)
	n -= n % cols
	orig := set.Images[:n*Pixels]
	rec, err := m.Reconstruct(orig)
	if err != nil {
		return nil, err
	}
	var all []float32
	var labels []string
	for r := 0; r < n/cols; r++ {
		all = append(all, orig[r*cols*Pixels:(r+1)*cols*Pixels]...)
		all = append(all, rec[r*cols*Pixels:(r+1)*cols*Pixels]...)
		labels = append(labels, "data", "recon.")
	}
	return grid(all, plot.GridOptions{Rows: 2 * (n / cols), Cols: cols, Scale: 2, RowLabels: labels,
		Title: "Test digits and their reconstructions decode(mean of q(z|x))"})
}

// LatentScatterFigure plots the encoder means of set coloured by digit (the first two
// latent coordinates when d_z > 2).
func (m *Model) LatentScatterFigure(set *mnist.Set) ([]byte, error) {
	if set == nil || set.N == 0 {
		return nil, fmt.Errorf("vae.LatentScatterFigure: empty set")
	}
	if m.Config.Latent < 2 {
		return nil, fmt.Errorf("vae.LatentScatterFigure: needs d_z >= 2, the model has %d", m.Config.Latent)
	}
	z, err := m.Encode(set.Images)
	if err != nil {
		return nil, err
	}
	d := m.Config.Latent
	groups := make([]plot.Points, mnist.NumClasses)
	for k := range groups {
		groups[k] = plot.Points{Name: fmt.Sprint(k), Color: plot.Palette[k%len(plot.Palette)], Radius: 1}
	}
	for i, y := range set.Labels {
		groups[y].XY = append(groups[y].XY, [2]float64{float64(z[i*d]), float64(z[i*d+1])})
	}
	title := fmt.Sprintf("Encoder means of %d test digits", set.N)
	xl, yl := "z1", "z2"
	if d > 2 {
		title += fmt.Sprintf(" (first 2 of %d dimensions)", d)
	}
	return plot.Scatter(plot.Options{Title: title, XLabel: xl, YLabel: yl, EqualAxes: true,
		Width: 14 * vg.Centimeter, Height: 13 * vg.Centimeter}, groups...)
}

// LatentGrid returns the n x n latents of the plane of the first two coordinates at the
// standard normal quantiles of (i + 0.5) / n (as Kingma and Welling's manifold figure; the
// other coordinates 0), row by row from the top (z2 largest) and left (z1 smallest).
func LatentGrid(n, latent int) ([]float32, error) {
	if n < 2 || latent < 2 {
		return nil, fmt.Errorf("vae.LatentGrid: need n >= 2 and d_z >= 2, got %d, %d", n, latent)
	}
	q := make([]float64, n)
	for i := range q {
		q[i] = distuv.UnitNormal.Quantile((float64(i) + 0.5) / float64(n))
	}
	z := make([]float32, n*n*latent)
	for r := range n {
		for c := range n {
			z[(r*n+c)*latent] = float32(q[c])
			z[(r*n+c)*latent+1] = float32(q[n-1-r])
		}
	}
	return z, nil
}

// LatentGridFigure decodes LatentGrid(n, d_z): the digits the decoder puts on the latent plane.
func (m *Model) LatentGridFigure(n int) ([]byte, error) {
	z, err := LatentGrid(n, m.Config.Latent)
	if err != nil {
		return nil, err
	}
	x, err := m.Decode(z)
	if err != nil {
		return nil, err
	}
	lo := distuv.UnitNormal.Quantile(0.5 / float64(n))
	title := fmt.Sprintf("Decoded latent plane, z1 and z2 from %.2f to %.2f (normal quantiles)", lo, -lo)
	if m.Config.Latent > 2 {
		title += "; other coordinates 0"
	}
	return grid(x, plot.GridOptions{Rows: n, Cols: n, Scale: 1, Gap: -1, Title: title})
}

// Stats summarizes the encoder means of a set: their per-coordinate mean and standard
// deviation (the aggregate posterior's, which the prior N(0, I) should roughly match).
func (m *Model) Stats(set *mnist.Set) (mean, std []float64, err error) {
	z, err := m.Encode(set.Images)
	if err != nil {
		return nil, nil, err
	}
	d := m.Config.Latent
	n := len(z) / d
	mean, std = make([]float64, d), make([]float64, d)
	for i := range n {
		for j := range d {
			mean[j] += float64(z[i*d+j]) / float64(n)
		}
	}
	for i := range n {
		for j := range d {
			v := float64(z[i*d+j]) - mean[j]
			std[j] += v * v / float64(n)
		}
	}
	for j := range std {
		std[j] = math.Sqrt(std[j])
	}
	return mean, std, nil
}
