package metrics

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/spatial/kdtree"
)

// DefaultK is the neighbourhood size of the k-NN manifolds used for precision and
// recall (Kynkaanniemi et al. 2019 use k = 3).
const DefaultK = 3

// DefaultOffOutlineThreshold is the distance from the nearest real point beyond which a
// sample counts as off the outline.
const DefaultOffOutlineThreshold = 0.05

// indexedPoint is a point in a k-d tree that remembers its position in the input slice.
type indexedPoint struct {
	x, y float64
	idx  int
}

// Compare implements kdtree.Comparable.
func (p indexedPoint) Compare(c kdtree.Comparable, d kdtree.Dim) float64 {
	q := c.(indexedPoint)
	if d == 0 {
		return p.x - q.x
	}
	return p.y - q.y
}

// Dims implements kdtree.Comparable.
func (p indexedPoint) Dims() int { return 2 }

// Distance implements kdtree.Comparable: the squared Euclidean distance.
func (p indexedPoint) Distance(c kdtree.Comparable) float64 {
	q := c.(indexedPoint)
	dx, dy := p.x-q.x, p.y-q.y
	return dx*dx + dy*dy
}

// indexedPoints implements kdtree.Interface.
type indexedPoints []indexedPoint

func (p indexedPoints) Index(i int) kdtree.Comparable { return p[i] }
func (p indexedPoints) Len() int                      { return len(p) }
func (p indexedPoints) Pivot(d kdtree.Dim) int {
	return kdtree.Partition(plane{dim: d, points: p}, kdtree.MedianOfMedians(plane{dim: d, points: p}))
}
func (p indexedPoints) Slice(start, end int) kdtree.Interface { return p[start:end] }

// plane implements kdtree.SortSlicer along one axis.
type plane struct {
	dim    kdtree.Dim
	points indexedPoints
}

func (p plane) Len() int { return len(p.points) }
func (p plane) Less(i, j int) bool {
	if p.dim == 0 {
		return p.points[i].x < p.points[j].x
	}
	return p.points[i].y < p.points[j].y
}
func (p plane) Swap(i, j int) { p.points[i], p.points[j] = p.points[j], p.points[i] }
func (p plane) Slice(start, end int) kdtree.SortSlicer {
	p.points = p.points[start:end]
	return p
}

// newTree builds a k-d tree over points (which must be non-empty and finite).
func newTree(points [][2]float64) *kdtree.Tree {
	ip := make(indexedPoints, len(points))
	for i, p := range points {
		ip[i] = indexedPoint{x: p[0], y: p[1], idx: i}
	}
	return kdtree.New(ip, false)
}

// nearest returns the index of the point in tree nearest to q and the Euclidean
// distance to it.
func nearest(tree *kdtree.Tree, q [2]float64) (int, float64) {
	c, d2 := tree.Nearest(indexedPoint{x: q[0], y: q[1]})
	return c.(indexedPoint).idx, math.Sqrt(d2)
}

// Manifold is the k-NN manifold estimate of a point set (Kynkaanniemi et al. 2019): the
// union of closed balls around every point with radius the distance to that point's
// k-th nearest other point of the set. It is safe for concurrent use.
type Manifold struct {
	k      int
	tree   *kdtree.Tree
	radii2 []float64 // squared ball radius of each point, by input index
	max2   float64   // largest squared radius
}

// NewManifold builds the k-NN manifold of points. It needs k >= 1, more than k points
// and finite coordinates. Duplicate points count as neighbours at distance 0.
func NewManifold(points [][2]float64, k int) (*Manifold, error) {
	if err := checkPoints("manifold points", points); err != nil {
		return nil, err
	}
	if k < 1 {
		return nil, fmt.Errorf("metrics: manifold k must be >= 1, got %d", k)
	}
	if len(points) <= k {
		return nil, fmt.Errorf("metrics: manifold with k=%d needs more than %d points, got %d", k, k, len(points))
	}
	m := &Manifold{k: k, tree: newTree(points), radii2: make([]float64, len(points))}
	parallelFor(len(points), func(start, end int) {
		for i := start; i < end; i++ {
			// k+1 nearest including the point itself (distance 0): the last is the k-th
			// nearest other point.
			keep := kdtree.NewNKeeper(k + 1)
			m.tree.NearestSet(keep, indexedPoint{x: points[i][0], y: points[i][1]})
			m.radii2[i] = keep.Heap[len(keep.Heap)-1].Dist
		}
	})
	for _, r := range m.radii2 {
		m.max2 = math.Max(m.max2, r)
	}
	return m, nil
}

// K returns the neighbourhood size the manifold was built with.
func (m *Manifold) K() int { return m.k }

// Radius returns the ball radius around point i (0 <= i < number of points) of the set
// the manifold was built on.
func (m *Manifold) Radius(i int) float64 { return math.Sqrt(m.radii2[i]) }

// coverKeeper is a kdtree.Keeper that looks for any ball containing the query: it
// records a hit and then shrinks the search radius below zero so the search stops.
type coverKeeper struct {
	kdtree.Heap
	radii2 []float64
	found  bool
}

// Keep implements kdtree.Keeper.
func (k *coverKeeper) Keep(c kdtree.ComparableDist) {
	if !k.found && c.Dist <= k.radii2[c.Comparable.(indexedPoint).idx] {
		k.found = true
		k.Heap[0].Dist = -1
	}
}

// Contains reports whether q lies in the manifold (in at least one closed ball). A
// query with a NaN coordinate is not in it.
func (m *Manifold) Contains(q [2]float64) bool {
	keep := &coverKeeper{Heap: kdtree.Heap{{Dist: m.max2}}, radii2: m.radii2}
	m.tree.NearestSet(keep, indexedPoint{x: q[0], y: q[1]})
	return keep.found
}

// Coverage returns the share of queries that lie in the manifold. It returns an error
// if queries is empty or not finite.
func (m *Manifold) Coverage(queries [][2]float64) (float64, error) {
	if err := checkPoints("manifold queries", queries); err != nil {
		return 0, err
	}
	inside := make([]bool, len(queries))
	parallelFor(len(queries), func(start, end int) {
		for i := start; i < end; i++ {
			inside[i] = m.Contains(queries[i])
		}
	})
	return share(inside), nil
}

// PrecisionRecall returns improved precision and recall (Kynkaanniemi et al. 2019) of
// samples against real points with k-NN manifolds: precision is the share of samples
// inside the manifold of the real points, recall the share of real points inside the
// manifold of the samples. Both sets need more than k finite points.
func PrecisionRecall(real, samples [][2]float64, k int) (precision, recall float64, err error) {
	realManifold, err := NewManifold(real, k)
	if err != nil {
		return 0, 0, fmt.Errorf("metrics: real points: %w", err)
	}
	return precisionRecall(realManifold, real, samples, k)
}

// precisionRecall is PrecisionRecall with the real manifold already built.
func precisionRecall(realManifold *Manifold, real, samples [][2]float64, k int) (precision, recall float64, err error) {
	sampleManifold, err := NewManifold(samples, k)
	if err != nil {
		return 0, 0, fmt.Errorf("metrics: samples: %w", err)
	}
	if precision, err = realManifold.Coverage(samples); err != nil {
		return 0, 0, err
	}
	if recall, err = sampleManifold.Coverage(real); err != nil {
		return 0, 0, err
	}
	return precision, recall, nil
}

// OffOutlineShare returns the share of samples whose distance to the nearest real
// point is greater than threshold (DefaultOffOutlineThreshold is the course's choice).
// It returns an error for empty or non-finite sets or a negative or NaN threshold.
func OffOutlineShare(real, samples [][2]float64, threshold float64) (float64, error) {
	if err := checkPoints("real points", real); err != nil {
		return 0, err
	}
	return offOutlineShare(newTree(real), samples, threshold)
}

// offOutlineShare is OffOutlineShare with the tree of real points already built.
func offOutlineShare(realTree *kdtree.Tree, samples [][2]float64, threshold float64) (float64, error) {
	if !(threshold >= 0) || math.IsInf(threshold, 0) {
		return 0, fmt.Errorf("metrics: off-outline threshold must be finite and >= 0, got %v", threshold)
	}
	if err := checkPoints("samples", samples); err != nil {
		return 0, err
	}
	off := make([]bool, len(samples))
	parallelFor(len(samples), func(start, end int) {
		for i := start; i < end; i++ {
			_, d := nearest(realTree, samples[i])
			off[i] = d > threshold
		}
	})
	return share(off), nil
}

// Purity returns the share of samples whose nearest real point has the requested
// label: how well conditional samples stay in their class. labels[i] is the label of
// real[i]. It returns an error for empty or non-finite sets, mismatched lengths, or a
// label that no real point has.
func Purity(real [][2]float64, labels []int, samples [][2]float64, label int) (float64, error) {
	if err := checkPoints("real points", real); err != nil {
		return 0, err
	}
	if err := checkLabels(labels, len(real), label); err != nil {
		return 0, err
	}
	return purity(newTree(real), labels, samples, label)
}

// checkLabels checks that there is one label per real point and that label occurs.
func checkLabels(labels []int, n, label int) error {
	if len(labels) != n {
		return fmt.Errorf("metrics: %d labels for %d real points", len(labels), n)
	}
	for _, l := range labels {
		if l == label {
			return nil
		}
	}
	return fmt.Errorf("metrics: no real point has label %d", label)
}

// purity is Purity with the tree of real points already built and labels checked.
func purity(realTree *kdtree.Tree, labels []int, samples [][2]float64, label int) (float64, error) {
	if err := checkPoints("samples", samples); err != nil {
		return 0, err
	}
	match := make([]bool, len(samples))
	parallelFor(len(samples), func(start, end int) {
		for i := start; i < end; i++ {
			j, _ := nearest(realTree, samples[i])
			match[i] = labels[j] == label
		}
	})
	return share(match), nil
}

// share returns the fraction of true values in flags (which must be non-empty).
func share(flags []bool) float64 {
	count := 0
	for _, f := range flags {
		if f {
			count++
		}
	}
	return float64(count) / float64(len(flags))
}
