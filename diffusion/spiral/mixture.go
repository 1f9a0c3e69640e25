// Package spiral is the final exam's score-based diffusion on a 2-D spiral (Exercise 3,
// parts 1 and 2): a Gaussian mixture p0 whose means lie on a spiral, its exact noisy
// marginals p_t and scores under a VP forward process, the reverse-time SDE and the
// probability-flow ODE sampled with the shared sampling core (diffusion/sampling) from the
// exact score, exact log-likelihoods by the instantaneous change of variables along the
// PF-ODE, and a learned score s_theta(x, t) (an MLP on [x1, x2, t]) trained by Hyvarinen
// (implicit) score matching, with the Jacobian trace computed exactly by GoMLX autodiff, or
// by denoising score matching. Everything is measured against the exact answers: mean log p0
// of the samples and a two-sample distance (diffusion/metrics) to fresh p0 samples.
//
// The learned score network (Net) is not tied to the spiral: NetConfig.DataDim sets the data
// dimension, NetConfig.Classes adds a learned class embedding (classifier-free guidance, with
// TrainConfig.PUncond's label dropout), and TrainOn trains it on any Data; latent diffusion
// (diffusion/latent) reuses it on the VAE's latents.
//
// Points travel as flat row-major []float32 of N*2 values. Times are the VPSDE's t in [0, 1]
// (t = 0 the data); the exam's K-step discrete schedule is t_k = k/K with beta_k = beta(k/K).
// Library functions return errors; GoMLX panics are recovered and returned as errors.
package spiral

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Dim is the dimension of the data.
const Dim = 2

// MixtureConfig describes p0 = (1/M) sum_m N(mu(tau_m), sigma^2 I): M means evenly spaced in
// tau on the spiral mu(tau) = Radius (tau / tau_max) (cos tau, sin tau), tau from pi/2 to
// tau_max = pi/2 + 2 pi Turns. JSON-serializable (saved with checkpoints).
type MixtureConfig struct {
	Components int     `json:"components"` // M
	Sigma      float64 `json:"sigma"`      // standard deviation of each component
	Turns      float64 `json:"turns"`      // turns of the spiral
	Radius     float64 `json:"radius"`     // radius of the outer end
}

// DefaultMixture is the notebook's mixture: 24 components of sigma 0.1 on 1.75 turns out to
// radius 2 (data of about unit variance per axis, as the VP process expects).
func DefaultMixture() MixtureConfig {
	return MixtureConfig{Components: 24, Sigma: 0.1, Turns: 1.75, Radius: 2}
}

// Validate reports a mixture that cannot be built, naming the field.
func (c MixtureConfig) Validate() error {
	switch {
	case c.Components < 1:
		return fmt.Errorf("spiral: the mixture needs >= 1 components, got %d", c.Components)
	case !(c.Sigma > 0) || math.IsInf(c.Sigma, 0):
		return fmt.Errorf("spiral: the component sigma must be a finite number > 0, got %g", c.Sigma)
	case !(c.Turns > 0) || math.IsInf(c.Turns, 0):
		return fmt.Errorf("spiral: turns must be a finite number > 0, got %g", c.Turns)
	case !(c.Radius > 0) || math.IsInf(c.Radius, 0):
		return fmt.Errorf("spiral: radius must be a finite number > 0, got %g", c.Radius)
	}
	return nil
}

// Mixture is the spiral Gaussian mixture p0 with its means.
type Mixture struct {
	Config MixtureConfig
	Means  [][2]float64 // mu(tau_m), m = 0 .. M-1
}

// NewMixture builds the mixture of c.
func NewMixture(c MixtureConfig) (*Mixture, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m := &Mixture{Config: c, Means: make([][2]float64, c.Components)}
	tau0 := math.Pi / 2
	tauMax := tau0 + 2*math.Pi*c.Turns
	for i := range m.Means {
		tau := tau0
		if c.Components > 1 {
			tau = tau0 + (tauMax-tau0)*float64(i)/float64(c.Components-1)
		}
		r := c.Radius * tau / tauMax
		m.Means[i] = [2]float64{r * math.Cos(tau), r * math.Sin(tau)}
	}
	return m, nil
}

// Sample draws n points of p0 (flat, n*2 values) from rng.
func (m *Mixture) Sample(n int, rng *rand.Rand) []float32 {
	out := make([]float32, n*Dim)
	s := m.Config.Sigma
	for i := range n {
		mu := m.Means[rng.IntN(len(m.Means))]
		out[2*i] = float32(mu[0] + s*rng.NormFloat64())
		out[2*i+1] = float32(mu[1] + s*rng.NormFloat64())
	}
	return out
}

// Marginal is the exact noisy marginal p_t of the mixture under x_t = alpha x0 + sigma eps:
// each component becomes N(alpha mu_m, v I) with v = sigma^2 + alpha^2 sigma0^2, the exam's
// N(sqrt(abar) mu_m, ((1 - abar) + abar sigma0^2) I).
type Marginal struct {
	Means    [][2]float64 // alpha mu_m
	Variance float64      // v
}

// At returns the marginal for the forward scales alpha, sigma (alpha = 1, sigma = 0: p0).
func (m *Mixture) At(alpha, sigma float64) Marginal {
	out := Marginal{Means: make([][2]float64, len(m.Means)), Variance: sigma*sigma + alpha*alpha*m.Config.Sigma*m.Config.Sigma}
	for i, mu := range m.Means {
		out.Means[i] = [2]float64{alpha * mu[0], alpha * mu[1]}
	}
	return out
}

// Eval returns, at the point (x, y), log p(x), its score grad log p and the trace of its
// Hessian (the divergence of the score): with d_m = mu_m - x and the responsibilities w_m,
// score = sum_m w_m d_m / v and trace = -2/v + (sum_m w_m |d_m|^2 - |sum_m w_m d_m|^2) / v^2.
func (g Marginal) Eval(x, y float64) (logp float64, score [2]float64, trace float64) {
	v := g.Variance
	maxE := math.Inf(-1)
	// Two passes: the exponents, then the normalized responsibilities (stable logsumexp).
	var buf [64]float64
	e := buf[:0]
	if len(g.Means) > len(buf) {
		e = make([]float64, 0, len(g.Means))
	}
	for _, mu := range g.Means {
		dx, dy := mu[0]-x, mu[1]-y
		ei := -(dx*dx + dy*dy) / (2 * v)
		e = append(e, ei)
		maxE = math.Max(maxE, ei)
	}
	sum, sx, sy, sd2 := 0.0, 0.0, 0.0, 0.0
	for i, mu := range g.Means {
		w := math.Exp(e[i] - maxE)
		dx, dy := mu[0]-x, mu[1]-y
		sum += w
		sx += w * dx
		sy += w * dy
		sd2 += w * (dx*dx + dy*dy)
	}
	sx, sy, sd2 = sx/sum, sy/sum, sd2/sum
	logp = maxE + math.Log(sum) - math.Log(float64(len(g.Means))) - math.Log(2*math.Pi*v)
	score = [2]float64{sx / v, sy / v}
	trace = -2/v + (sd2-(sx*sx+sy*sy))/(v*v)
	return
}

// LogDensity returns log p(x) of every point of the flat points (n*2 values).
func (g Marginal) LogDensity(points []float32) ([]float64, error) {
	if len(points)%Dim != 0 {
		return nil, fmt.Errorf("spiral: %d values are not a set of 2-D points", len(points))
	}
	out := make([]float64, len(points)/Dim)
	for i := range out {
		out[i], _, _ = g.Eval(float64(points[2*i]), float64(points[2*i+1]))
	}
	return out, nil
}

// MeanLogP0 returns the mean of log p0 over the points (the exact log-likelihood of the
// samples under the mixture; NaN or infinite points are an error naming them).
func (m *Mixture) MeanLogP0(points []float32) (float64, error) {
	if len(points) == 0 || len(points)%Dim != 0 {
		return 0, fmt.Errorf("spiral: %d values are not a non-empty set of 2-D points", len(points))
	}
	for i, v := range points {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return 0, fmt.Errorf("spiral: point %d has a non-finite coordinate %v", i/Dim, v)
		}
	}
	lp, err := m.At(1, 0).LogDensity(points)
	if err != nil {
		return 0, err
	}
	s := 0.0
	for _, v := range lp {
		s += v
	}
	return s / float64(len(lp)), nil
}
