// Package schedule holds the noise schedules of discrete-time diffusion models
// (DDPM, Ho et al. 2020): the betas, alpha_t = 1 - beta_t, alpha-bar_t = prod_{s<=t} alpha_s,
// the sampling of q(x_t | x_0) as a graph function and the normalized time input of the
// networks (t -> linspace(-1, 1, T)[t]).
//
// Time steps are 0-based: t = 0 .. T-1, as in the course's starter code, so x_t for
// t = 0 is already one noising step away from the data.
package schedule

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Kind names a schedule family.
type Kind string

const (
	// Linear spaces the betas linearly from BetaStart to BetaEnd (Ho et al. 2020).
	Linear Kind = "linear"
	// Cosine makes alpha-bar follow cos^2 (Nichol & Dhariwal 2021), betas clipped at MaxBeta.
	Cosine Kind = "cosine"
)

// Config describes a schedule. It is JSON-serializable and saved with checkpoints.
type Config struct {
	Kind      Kind    `json:"kind"`
	T         int     `json:"t"`                    // number of diffusion steps
	BetaStart float64 `json:"beta_start,omitempty"` // Linear only
	BetaEnd   float64 `json:"beta_end,omitempty"`   // Linear only
	CosineS   float64 `json:"cosine_s,omitempty"`   // Cosine only: offset s (0.008 in the paper)
	MaxBeta   float64 `json:"max_beta,omitempty"`   // Cosine only: clip of the betas (0.999 in the paper)
}

// DefaultConfig is the STATES assignment's schedule: linear, T=500, beta 1e-4 .. 0.02.
func DefaultConfig() Config {
	return Config{Kind: Linear, T: 500, BetaStart: 1e-4, BetaEnd: 0.02}
}

// CosineConfig returns the cosine schedule of Nichol & Dhariwal with T steps (s=0.008, max beta 0.999).
func CosineConfig(T int) Config {
	return Config{Kind: Cosine, T: T, CosineS: 0.008, MaxBeta: 0.999}
}

// Schedule holds the per-step values of a schedule, index t = 0 .. T-1.
type Schedule struct {
	Config    Config
	Betas     []float64 // beta_t
	Alphas    []float64 // alpha_t = 1 - beta_t
	AlphaBars []float64 // alpha-bar_t = prod_{s<=t} alpha_s
	TimeInput []float64 // normalized time input of the networks: linspace(-1, 1, T)[t]
}

// New computes the schedule described by cfg.
func New(cfg Config) (*Schedule, error) {
	if cfg.T < 1 {
		return nil, fmt.Errorf("schedule: T must be >= 1, got %d", cfg.T)
	}
	T := cfg.T
	betas := make([]float64, T)
	switch cfg.Kind {
	case Linear, "":
		cfg.Kind = Linear
		if !(cfg.BetaStart > 0 && cfg.BetaEnd < 1 && cfg.BetaStart <= cfg.BetaEnd) {
			return nil, fmt.Errorf("schedule: linear betas need 0 < BetaStart <= BetaEnd < 1, got %g .. %g",
				cfg.BetaStart, cfg.BetaEnd)
		}
		for t := range betas {
			if T == 1 {
				betas[t] = cfg.BetaStart
			} else {
				betas[t] = cfg.BetaStart + (cfg.BetaEnd-cfg.BetaStart)*float64(t)/float64(T-1)
			}
		}
	case Cosine:
		s, maxBeta := cfg.CosineS, cfg.MaxBeta
		if s < 0 || !(maxBeta > 0 && maxBeta < 1) {
			return nil, fmt.Errorf("schedule: cosine needs CosineS >= 0 and 0 < MaxBeta < 1, got s=%g max=%g", s, maxBeta)
		}
		f := func(t int) float64 {
			c := math.Cos((float64(t)/float64(T) + s) / (1 + s) * math.Pi / 2)
			return c * c
		}
		for t := range betas {
			betas[t] = math.Min(1-f(t+1)/f(t), maxBeta)
		}
	default:
		return nil, fmt.Errorf("schedule: unknown kind %q (want %q or %q)", cfg.Kind, Linear, Cosine)
	}
	sch := &Schedule{Config: cfg, Betas: betas,
		Alphas: make([]float64, T), AlphaBars: make([]float64, T), TimeInput: make([]float64, T)}
	prod := 1.0
	for t, b := range betas {
		sch.Alphas[t] = 1 - b
		prod *= 1 - b
		sch.AlphaBars[t] = prod
		if T == 1 {
			sch.TimeInput[t] = -1
		} else {
			sch.TimeInput[t] = -1 + 2*float64(t)/float64(T-1)
		}
	}
	return sch, nil
}

// T returns the number of diffusion steps.
func (s *Schedule) T() int { return len(s.Betas) }

// AlphaBarPrev returns alpha-bar_{t-1}, with alpha-bar_{-1} = 1 (the clean data).
func (s *Schedule) AlphaBarPrev(t int) float64 {
	if t <= 0 {
		return 1
	}
	return s.AlphaBars[t-1]
}

// PosteriorVariance returns beta-tilde_t = (1 - abar_{t-1}) / (1 - abar_t) * beta_t, the variance of
// q(x_{t-1} | x_t, x_0).
func (s *Schedule) PosteriorVariance(t int) float64 {
	return (1 - s.AlphaBarPrev(t)) / (1 - s.AlphaBars[t]) * s.Betas[t]
}

func toF32(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}

// gatherTable returns table[t] for integer time steps t of shape [B] or [B, 1], as shape [B, 1].
func gatherTable(table []float64, t *Node, dtype dtypes.DType) *Node {
	g := t.Graph()
	if t.Rank() == 1 {
		t = InsertAxes(t, -1)
	}
	if t.Rank() != 2 || t.Shape().Dimensions[1] != 1 {
		exceptions.Panicf("schedule: time steps must have shape [B] or [B, 1], got %s", t.Shape())
	}
	values := ConvertDType(Const(g, toF32(table)), dtype)
	return InsertAxes(Gather(values, t), -1) // [B, 1]
}

// AlphaBarNode returns alpha-bar_t as a [B, 1] node for integer time steps t ([B] or [B, 1]).
func (s *Schedule) AlphaBarNode(t *Node, dtype dtypes.DType) *Node {
	return gatherTable(s.AlphaBars, t, dtype)
}

// TimeInputNode returns the normalized time input linspace(-1, 1, T)[t] as a [B, 1] node for
// integer time steps t ([B] or [B, 1]).
func (s *Schedule) TimeInputNode(t *Node, dtype dtypes.DType) *Node {
	return gatherTable(s.TimeInput, t, dtype)
}

// QSample returns a sample of q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) given the standard
// normal noise: sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise. x0 and noise have shape [B, D];
// t holds integer time steps of shape [B] or [B, 1].
func (s *Schedule) QSample(x0, t, noise *Node) *Node {
	abar := s.AlphaBarNode(StopGradient(t), x0.DType())
	return Add(Mul(Sqrt(abar), x0), Mul(Sqrt(OneMinus(abar)), noise))
}
