package sampling

import (
	"fmt"
	"math"

	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// Scales are the coefficients of a Gaussian forward process at one time t:
// x_t = Alpha x0 + Sigma eps with eps ~ N(0, I), and their derivatives with respect to t.
type Scales struct {
	Alpha, Sigma   float64
	DAlpha, DSigma float64 // d Alpha / dt, d Sigma / dt (in the process's own time variable)
}

// Process is a Gaussian forward (noising) process x_t = alpha(t) x0 + sigma(t) eps, in the
// time variable its models are trained on. Samplers only ask it for Scales at the times of a
// grid; the reverse-time SDE and the probability-flow ODE follow from the scales and their
// derivatives (drift f = alpha'/alpha, diffusion g^2 = 2 sigma sigma' - 2 f sigma^2), so one
// implementation of every sampler serves every process, whichever way its time runs.
//
// Scales returns an error for a time outside the process's domain.
type Process interface {
	Scales(t float64) (Scales, error)
}

// Discrete is the discrete-time VP process of a DDPM schedule (ddpm, the imagediff DDPM):
// time is the 0-based step index k = 0 .. T-1 (an integer held in a float64), alpha =
// sqrt(abar_k), sigma = sqrt(1 - abar_k). k = -1 is the clean data (alpha 1, sigma 0): every
// discrete grid ends there, so the last step from k = 0 lands on the data, as DDPM's
// x_{-1}. The derivatives take beta(k) = -log(1 - beta_k) per unit step (used only by the
// ODE/SDE samplers; DDPM, DDIM and DPM-Solver++ need none).
type Discrete struct {
	Schedule *schedule.Schedule
}

// Scales returns the scales at step index t (an integer in [-1, T-1]).
func (d Discrete) Scales(t float64) (Scales, error) {
	if d.Schedule == nil {
		return Scales{}, fmt.Errorf("sampling: Discrete process without a schedule")
	}
	T := d.Schedule.T()
	k := int(t)
	if float64(k) != t || k < -1 || k >= T {
		return Scales{}, fmt.Errorf("sampling: discrete time %g is not an integer step in [-1, %d]", t, T-1)
	}
	if k == -1 {
		return Scales{Alpha: 1}, nil
	}
	abar := d.Schedule.AlphaBars[k]
	a, s := math.Sqrt(abar), math.Sqrt(1-abar)
	beta := -math.Log1p(-d.Schedule.Betas[k])
	return Scales{Alpha: a, Sigma: s, DAlpha: -beta / 2 * a, DSigma: beta * abar / (2 * s)}, nil
}

// VPSDE is the continuous variance-preserving process of Song et al. 2021 on t in [0, 1]
// (t = 0 the data): beta(t) = BetaMin + t (BetaMax - BetaMin),
// abar(t) = exp(-int_0^t beta) = exp(-(BetaMin t + (BetaMax - BetaMin) t^2 / 2)),
// alpha = sqrt(abar), sigma = sqrt(1 - abar). Its reverse SDE is
// dx = [-beta/2 x - beta score] dt + sqrt(beta) dW (t decreasing), the score models' sampler.
type VPSDE struct {
	BetaMin, BetaMax float64
}

// Scales returns the scales at t in [0, 1].
func (v VPSDE) Scales(t float64) (Scales, error) {
	if !(t >= 0 && t <= 1) {
		return Scales{}, fmt.Errorf("sampling: VPSDE time %g outside [0, 1]", t)
	}
	if !(v.BetaMin >= 0 && v.BetaMax >= v.BetaMin && v.BetaMax > 0) {
		return Scales{}, fmt.Errorf("sampling: VPSDE needs 0 <= BetaMin <= BetaMax, BetaMax > 0; got %g, %g", v.BetaMin, v.BetaMax)
	}
	logAbar := -(v.BetaMin*t + (v.BetaMax-v.BetaMin)*t*t/2)
	abar := math.Exp(logAbar)
	beta := v.BetaMin + t*(v.BetaMax-v.BetaMin)
	a, s := math.Sqrt(abar), math.Sqrt(-math.Expm1(logAbar))
	sc := Scales{Alpha: a, Sigma: s, DAlpha: -beta / 2 * a}
	if s > 0 {
		sc.DSigma = beta * abar / (2 * s)
	} else {
		sc.DSigma = math.Inf(1)
	}
	return sc, nil
}

// Flow is the straight path of flow matching from noise to data on tau in [0, 1] (CS180 5B,
// imagediff's Flow): x_tau = tau x0 + (1 - tau) eps, so tau = 0 is pure noise, tau = 1 the
// data, and the velocity dx/dtau = x0 - eps. Its grids ascend (UniformGrid(0, 1, steps)).
type Flow struct{}

// Scales returns the scales at tau in [0, 1].
func (Flow) Scales(tau float64) (Scales, error) {
	if !(tau >= 0 && tau <= 1) {
		return Scales{}, fmt.Errorf("sampling: flow time %g outside [0, 1]", tau)
	}
	return Scales{Alpha: tau, Sigma: 1 - tau, DAlpha: 1, DSigma: -1}, nil
}

// Forward returns alpha(t) x0 + sigma(t) z, a draw of q(x_t | x0) given the standard normal
// noise z (len(z) == len(x0)): the noising of SDEdit and of inpainting's known pixels.
func Forward(p Process, x0, z []float32, t float64) ([]float32, error) {
	if len(z) != len(x0) {
		return nil, fmt.Errorf("sampling: Forward: %d noise values for %d data values", len(z), len(x0))
	}
	sc, err := p.Scales(t)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(x0))
	forwardInto(sc, x0, z, out)
	return out, nil
}

// forwardInto writes alpha x0 + sigma z into out. With sigma = 0 and alpha = 1 it copies x0
// exactly.
func forwardInto(sc Scales, x0, z, out []float32) {
	for j := range out {
		out[j] = float32(sc.Alpha*float64(x0[j]) + sc.Sigma*float64(z[j]))
	}
}

// logSNR returns lambda = log(alpha / sigma) (-Inf at pure noise, +Inf at clean data).
func logSNR(sc Scales) float64 {
	return math.Log(sc.Alpha) - math.Log(sc.Sigma)
}
