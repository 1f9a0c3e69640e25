package metrics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Two-sample distances between point sets (flat row-major float32 slices of n*dim values):
// how far a sampler's output is from fresh data, in the same units as the data. Both are
// computed exactly from the two empirical distributions (no binning), so two independent sets
// of the same distribution give a small positive "floor" that shrinks as the sets grow; a
// sampler is judged against that floor.

// checkSets validates two point sets of dimension dim and returns their sizes.
func checkSets(what string, a, b []float32, dim int) (na, nb int, err error) {
	if dim < 1 {
		return 0, 0, fmt.Errorf("metrics.%s: dimension must be >= 1, got %d", what, dim)
	}
	for _, s := range []struct {
		name string
		v    []float32
	}{{"first", a}, {"second", b}} {
		if len(s.v) == 0 || len(s.v)%dim != 0 {
			return 0, 0, fmt.Errorf("metrics.%s: the %s set has %d values, not a non-empty set of %d-D points", what, s.name, len(s.v), dim)
		}
		for i, x := range s.v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return 0, 0, fmt.Errorf("metrics.%s: the %s set has a non-finite value %v (point %d)", what, s.name, x, i/dim)
			}
		}
	}
	return len(a) / dim, len(b) / dim, nil
}

// Wasserstein1D returns the 2-Wasserstein distance W2 between the empirical distributions of
// the values a and b (any sizes, equal weights within each set), exactly: the L2 distance of
// their quantile functions, integrated over the merged breakpoints of the two step functions.
// It sorts copies of a and b.
func Wasserstein1D(a, b []float64) (float64, error) {
	if len(a) == 0 || len(b) == 0 {
		return 0, fmt.Errorf("metrics.Wasserstein1D: empty set (%d and %d values)", len(a), len(b))
	}
	sa, sb := slices.Clone(a), slices.Clone(b)
	slices.Sort(sa)
	slices.Sort(sb)
	return math.Sqrt(w2sqSorted(sa, sb)), nil
}

// w2sqSorted is W2^2 between the sorted empirical sets a and b.
func w2sqSorted(a, b []float64) float64 {
	if len(a) == len(b) {
		s := 0.0
		for i := range a {
			d := a[i] - b[i]
			s += d * d
		}
		return s / float64(len(a))
	}
	// Walk the quantile levels u in [0, 1]: Q_a is a[i] on [i/na, (i+1)/na).
	na, nb := float64(len(a)), float64(len(b))
	i, j := 0, 0
	u, s := 0.0, 0.0
	for i < len(a) && j < len(b) {
		ua, ub := float64(i+1)/na, float64(j+1)/nb
		next := math.Min(ua, ub)
		d := a[i] - b[j]
		s += (next - u) * d * d
		u = next
		if ua <= next {
			i++
		}
		if ub <= next {
			j++
		}
	}
	return s
}

// SlicedWasserstein returns the sliced 2-Wasserstein distance between the point sets a and
// b of dim-D points: sqrt of the mean over projections of W2^2 between the 1-D projections
// onto unit directions. For dim = 2 the directions are the evenly spaced angles
// (k + u) pi / projections, k = 0 .. projections-1, with one random offset u drawn from seed
// (a quadrature of the uniform average over directions); for other dims they are uniform
// random directions from seed. For a set and its copy shifted by v it is |v| / sqrt(dim)
// (in 2-D exactly |v|/sqrt(2) up to the quadrature).
func SlicedWasserstein(a, b []float32, dim, projections int, seed uint64) (float64, error) {
	na, nb, err := checkSets("SlicedWasserstein", a, b, dim)
	if err != nil {
		return 0, err
	}
	if projections < 1 {
		return 0, fmt.Errorf("metrics.SlicedWasserstein: need >= 1 projections, got %d", projections)
	}
	rng := rand.New(rand.NewPCG(seed, 0x51ced))
	dir := make([]float64, dim)
	pa, pb := make([]float64, na), make([]float64, nb)
	offset := rng.Float64()
	total := 0.0
	for k := range projections {
		if dim == 2 {
			angle := (float64(k) + offset) * math.Pi / float64(projections)
			dir[0], dir[1] = math.Cos(angle), math.Sin(angle)
		} else {
			norm := 0.0
			for norm < 1e-12 {
				norm = 0
				for d := range dir {
					dir[d] = rng.NormFloat64()
					norm += dir[d] * dir[d]
				}
			}
			norm = math.Sqrt(norm)
			for d := range dir {
				dir[d] /= norm
			}
		}
		project(a, dim, dir, pa)
		project(b, dim, dir, pb)
		slices.Sort(pa)
		slices.Sort(pb)
		total += w2sqSorted(pa, pb)
	}
	return math.Sqrt(total / float64(projections)), nil
}

// project writes the dot products of the points of x with dir into out.
func project(x []float32, dim int, dir, out []float64) {
	for i := range out {
		s := 0.0
		for d, v := range x[i*dim : (i+1)*dim] {
			s += float64(v) * dir[d]
		}
		out[i] = s
	}
}

// EnergyDistance returns the energy distance (Szekely and Rizzo) between the point sets a
// and b: sqrt(2 E|X - Y| - E|X - X'| - E|Y - Y'|), with the expectations over all pairs of
// the two empirical distributions (the V-statistic, so it is >= 0 and 0 only for equal
// sets). It is a metric on distributions; for two point masses at distance d it is
// sqrt(2 d). O((n_a + n_b)^2 dim) time.
func EnergyDistance(a, b []float32, dim int) (float64, error) {
	if _, _, err := checkSets("EnergyDistance", a, b, dim); err != nil {
		return 0, err
	}
	ab := meanPairDistance(a, b, dim, false)
	aa := meanPairDistance(a, a, dim, true)
	bb := meanPairDistance(b, b, dim, true)
	return math.Sqrt(math.Max(0, 2*ab-aa-bb)), nil
}

// meanPairDistance is the mean Euclidean distance over all pairs (x in a, y in b); same
// means a == b (then only i < j are computed and the zero diagonal still counts).
func meanPairDistance(a, b []float32, dim int, same bool) float64 {
	na, nb := len(a)/dim, len(b)/dim
	s := 0.0
	for i := range na {
		x := a[i*dim : (i+1)*dim]
		j0 := 0
		if same {
			j0 = i + 1
		}
		row := 0.0
		for j := j0; j < nb; j++ {
			y := b[j*dim : (j+1)*dim]
			d2 := 0.0
			for k := range x {
				d := float64(x[k]) - float64(y[k])
				d2 += d * d
			}
			row += math.Sqrt(d2)
		}
		s += row
	}
	if same {
		s *= 2
	}
	return s / (float64(na) * float64(nb))
}
