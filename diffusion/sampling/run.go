package sampling

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Range is a closed interval of values, e.g. the pixel range x0 predictions are clipped to.
type Range struct{ Lo, Hi float64 }

// Step describes the state of a sampler for hooks: after Index steps of Steps, the samples X
// are at time T = grid[GridIndex].
type Step struct {
	Index     int     // steps taken in this run: 0 before the first, Steps after the last
	Steps     int     // steps this run takes (len(grid) - 1 - StartIndex)
	GridIndex int     // index of T in the grid
	T         float64 // time of X
	Scales    Scales  // the process's scales at T
	// X holds the N*Dim current values. A projection hook may change them in place; a callback
	// must not keep the slice (copy it to keep a frame).
	X []float32
	// X0 is the clean-data estimate of the step just taken (at the previous grid time, after
	// clipping); nil at Index 0. Same ownership rules as X.
	X0 []float32
	// Noise fills dst (N*Dim values) with standard normals from the samples' own random
	// streams, so a hook that draws noise keeps the run deterministic in the seed.
	Noise func(dst []float32)
}

// Hook is called by samplers with the current Step; an error stops the sampler and is
// returned by it.
type Hook func(s *Step) error

// Options are the settings every sampler shares.
type Options struct {
	N, Dim  int       // number of samples, values per sample
	Process Process   // the forward process the model was trained on
	Grid    []float64 // the S+1 times visited, from noise to data (see StridedGrid etc.)
	// Cond is nil (unconditional) or one condition per sample (class label or Null), passed to
	// the model unchanged.
	Cond []int
	// Seed makes the run deterministic: sample i draws its initial and step noise from its own
	// stream seeded by (Seed, i), so sample i does not depend on N or on how the model batches.
	Seed int64
	// Stream, if set, replaces the per-sample random streams derived from Seed: sample i draws
	// its noise from Stream(i) (one call per sample and run). Models whose earlier samplers
	// had their own streams use it to keep their samples unchanged (imagediff).
	Stream func(i int) *rand.Rand
	// XStart, if set (N*Dim values), is the input to start from at grid[StartIndex] instead of
	// pure noise: it is noised to that time, alpha x_start + sigma z with z the initial noise
	// (SDEdit), or taken as is when XStartNoised. Without XStart the start is z itself, and the
	// run takes len(Grid)-1-StartIndex steps either way.
	XStart       []float32
	StartIndex   int
	XStartNoised bool
	// Clip, if set, clips every x0 estimate to the range and recomputes eps from it
	// (eps = (x - alpha x0) / sigma) before the update (pixel range of image models).
	Clip *Range
	// Project, if set, is called after every step (Index 1 .. Steps) and may change X in
	// place: inpainting re-imposes the known pixels noised to the current time (see Inpaint).
	Project Hook
	// Callback, if set, is called before the first step (Index 0) and after every step (after
	// Project): frames, snapshots of X0, progress.
	Callback Hook
}

// run is the state of one sampler run.
type run struct {
	m       Model
	o       Options
	kind    Prediction
	sc      []Scales // scales at every grid time
	x       []float32
	streams []*rand.Rand
	ts      []float64 // the model's time input (all samples at one time)
	z       []float32 // noise buffer
	step    Step
}

// start validates m and o, draws the initial noise and builds x at grid[StartIndex].
func start(what string, m Model, o Options) (*run, error) {
	fail := func(format string, args ...any) (*run, error) {
		return nil, fmt.Errorf("sampling.%s: %s", what, fmt.Sprintf(format, args...))
	}
	if m == nil {
		return fail("nil model")
	}
	kind := m.Predicts()
	if err := kind.Valid(); err != nil {
		return fail("%v", err)
	}
	if o.N < 1 || o.Dim < 1 {
		return fail("need N >= 1 samples of Dim >= 1 values, got N = %d, Dim = %d", o.N, o.Dim)
	}
	if o.Process == nil {
		return fail("nil Process")
	}
	sc, err := gridScales(o.Process, o.Grid)
	if err != nil {
		return fail("%v", err)
	}
	if o.Cond != nil && len(o.Cond) != o.N {
		return fail("%d conditions for %d samples", len(o.Cond), o.N)
	}
	steps := len(o.Grid) - 1
	if o.StartIndex < 0 || o.StartIndex >= steps {
		return fail("StartIndex must be in [0, %d] (a grid of %d steps), got %d", steps-1, steps, o.StartIndex)
	}
	if o.XStart != nil && len(o.XStart) != o.N*o.Dim {
		return fail("XStart has %d values, want N*Dim = %d", len(o.XStart), o.N*o.Dim)
	}
	if o.XStart == nil && o.XStartNoised {
		return fail("XStartNoised without XStart")
	}
	if o.Clip != nil && !(o.Clip.Lo <= o.Clip.Hi) {
		return fail("empty clip range [%g, %g]", o.Clip.Lo, o.Clip.Hi)
	}
	r := &run{m: m, o: o, kind: kind, sc: sc, x: make([]float32, o.N*o.Dim),
		streams: make([]*rand.Rand, o.N), ts: make([]float64, o.N), z: make([]float32, o.N*o.Dim)}
	for i := range r.streams {
		if o.Stream != nil {
			r.streams[i] = o.Stream(i)
		} else {
			r.streams[i] = sampleStream(o.Seed, i)
		}
		if r.streams[i] == nil {
			return fail("Stream(%d) returned nil", i)
		}
	}
	r.noise(r.x)
	if o.XStart != nil {
		if o.XStartNoised {
			copy(r.x, o.XStart)
		} else {
			forwardInto(sc[o.StartIndex], o.XStart, slices.Clone(r.x), r.x)
		}
	}
	r.step = Step{Steps: steps - o.StartIndex, GridIndex: o.StartIndex, T: o.Grid[o.StartIndex],
		Scales: sc[o.StartIndex], X: r.x, Noise: r.noise}
	if o.Callback != nil {
		if err := o.Callback(&r.step); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// sampleStream returns the random stream of sample i.
func sampleStream(seed int64, i int) *rand.Rand {
	a := splitMix(uint64(seed))
	return rand.New(rand.NewPCG(a, splitMix(a^splitMix(uint64(i)+0x632be59bd9b4e019))))
}

// splitMix is the SplitMix64 finalizer, decorrelating nearby seeds.
func splitMix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// noise fills dst (N*Dim values) with standard normals, sample i from its own stream.
func (r *run) noise(dst []float32) {
	d := r.o.Dim
	for i, s := range r.streams {
		row := dst[i*d : (i+1)*d]
		for j := range row {
			row[j] = float32(s.NormFloat64())
		}
	}
}

// steps returns the grid indices i of the steps grid[i] -> grid[i+1] this run takes.
func (r *run) steps() []int {
	out := make([]int, 0, len(r.o.Grid)-1-r.o.StartIndex)
	for i := r.o.StartIndex; i < len(r.o.Grid)-1; i++ {
		out = append(out, i)
	}
	return out
}

// last reports whether step i is the last of the grid (samplers add no noise in it).
func (r *run) last(i int) bool { return i == len(r.o.Grid)-2 }

// denoise evaluates the model on x at grid index i and writes the clean-data and noise
// estimates into x0 and eps, clipping x0 if asked. It returns the raw prediction.
func (r *run) denoise(x []float32, i int, x0, eps []float32) ([]float32, error) {
	for j := range r.ts {
		r.ts[j] = r.o.Grid[i]
	}
	pred, err := predict(r.m, x, r.ts, r.o.Cond)
	if err != nil {
		return nil, fmt.Errorf("sampling: model at t = %g (grid[%d]): %w", r.o.Grid[i], i, err)
	}
	sc := r.sc[i]
	if err := toX0Eps(r.kind, sc, x, pred, x0, eps); err != nil {
		return nil, err
	}
	if c := r.o.Clip; c != nil && sc.Sigma > 0 {
		is := 1 / sc.Sigma
		for j, v := range x0 {
			if cv := math.Min(math.Max(float64(v), c.Lo), c.Hi); cv != float64(v) {
				x0[j] = float32(cv)
				eps[j] = float32((float64(x[j]) - sc.Alpha*cv) * is)
			}
		}
	}
	return pred, nil
}

// done finishes step i (now at grid[i+1]): the projection hook, then the callback.
func (r *run) done(i int, x0 []float32) error {
	r.step.Index++
	r.step.GridIndex = i + 1
	r.step.T = r.o.Grid[i+1]
	r.step.Scales = r.sc[i+1]
	r.step.X0 = x0
	if r.o.Project != nil {
		if err := r.o.Project(&r.step); err != nil {
			return fmt.Errorf("sampling: projection after step %d: %w", r.step.Index, err)
		}
	}
	if r.o.Callback != nil {
		if err := r.o.Callback(&r.step); err != nil {
			return err
		}
	}
	return nil
}

// result returns the final samples, or an error naming the first non-finite value (a
// diverged model or sampler must not hand NaN or Inf samples on as data).
func (r *run) result() ([]float32, error) {
	for j, v := range r.x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("sampling: sample %d has a non-finite value (%g at coordinate %d): the model or the sampler diverged", j/r.o.Dim, v, j%r.o.Dim)
		}
	}
	return r.x, nil
}
