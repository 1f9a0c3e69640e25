package sampling

import (
	"fmt"
	"math"
)

// A grid is the list of S+1 times a sampler visits, from the noisiest (grid[0]) to the
// cleanest (grid[S]): step i moves the samples from grid[i] to grid[i+1], evaluating the
// model at grid[i] (and, for second-order samplers, at grid[i+1] unless it is clean data).
// For the reverse processes the times therefore descend (Discrete: 990, 960, ..., 0, -1;
// VPSDE: 1 .. 0) and for Flow they ascend (0 .. 1); samplers check that the signal-to-noise
// ratio alpha/sigma strictly grows along the grid.

// StridedGrid returns the DDPM time steps k_max, k_max - stride, ..., 0 of a T-step schedule,
// k_max the largest multiple of stride below T, followed by the clean end -1: CS180 5A's
// strided_timesteps (T = 1000, stride 30: 990, 960, ..., 0), 34 steps. Sampled with
// Ancestral, each step is the DDPM posterior between consecutive strided steps.
func StridedGrid(T, stride int) ([]float64, error) {
	if T < 1 {
		return nil, fmt.Errorf("sampling: StridedGrid: T must be >= 1, got %d", T)
	}
	if stride < 1 {
		return nil, fmt.Errorf("sampling: StridedGrid: stride must be >= 1, got %d", stride)
	}
	var out []float64
	for k := (T - 1) / stride * stride; k >= 0; k -= stride {
		out = append(out, float64(k))
	}
	return append(out, -1), nil
}

// EvenGrid returns steps time steps of a T-step schedule evenly spaced from T-1 down to 0
// (rounded; all T steps when steps = T), followed by the clean end -1. These are the steps of
// ddpm.DDIMTimeSteps (in reverse) and imagediff.DDPMTimeSteps.
func EvenGrid(T, steps int) ([]float64, error) {
	if T < 1 {
		return nil, fmt.Errorf("sampling: EvenGrid: T must be >= 1, got %d", T)
	}
	if steps < 1 || steps > T {
		return nil, fmt.Errorf("sampling: EvenGrid: steps must be in [1, %d], got %d", T, steps)
	}
	out := make([]float64, steps+1)
	for i := range steps {
		if steps == 1 {
			out[i] = float64(T - 1)
			continue
		}
		out[i] = math.Round(float64(T-1) * float64(steps-1-i) / float64(steps-1))
	}
	out[steps] = -1
	return out, nil
}

// UniformGrid returns steps+1 evenly spaced times from from to to (both included): Flow's
// UniformGrid(0, 1, steps) (tau = 0, 1/steps, ..., 1) and VPSDE's UniformGrid(1, 0, K)
// (t = k/K for k = K .. 0).
func UniformGrid(from, to float64, steps int) ([]float64, error) {
	if steps < 1 {
		return nil, fmt.Errorf("sampling: UniformGrid: steps must be >= 1, got %d", steps)
	}
	if from == to || math.IsNaN(from) || math.IsNaN(to) {
		return nil, fmt.Errorf("sampling: UniformGrid: empty interval [%g, %g]", from, to)
	}
	out := make([]float64, steps+1)
	for i := range out {
		out[i] = from + (to-from)*float64(i)/float64(steps)
	}
	out[steps] = to
	return out, nil
}

// gridScales returns the scales at every time of grid, checking that there is at least one
// step and that alpha/sigma strictly grows along it.
func gridScales(p Process, grid []float64) ([]Scales, error) {
	if len(grid) < 2 {
		return nil, fmt.Errorf("sampling: the time grid needs at least 2 times (1 step), got %d", len(grid))
	}
	out := make([]Scales, len(grid))
	for i, t := range grid {
		sc, err := p.Scales(t)
		if err != nil {
			return nil, fmt.Errorf("sampling: grid[%d]: %w", i, err)
		}
		if !(sc.Alpha >= 0 && sc.Sigma >= 0) || (sc.Alpha == 0 && sc.Sigma == 0) {
			return nil, fmt.Errorf("sampling: grid[%d] = %g: invalid scales alpha %g, sigma %g", i, t, sc.Alpha, sc.Sigma)
		}
		// alpha_{i-1} / sigma_{i-1} < alpha_i / sigma_i without dividing by a zero sigma.
		if i > 0 && !(out[i-1].Alpha*sc.Sigma < sc.Alpha*out[i-1].Sigma) {
			return nil, fmt.Errorf("sampling: the grid must go from noise to data (alpha/sigma strictly growing), but grid[%d] = %g is not cleaner than grid[%d] = %g",
				i, t, i-1, grid[i-1])
		}
		out[i] = sc
	}
	return out, nil
}
