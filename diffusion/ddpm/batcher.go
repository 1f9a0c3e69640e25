package ddpm

import (
	"math"
	"math/rand/v2"

	"github.com/godiffusion/notebooks/diffusion/dataparallel"
	"github.com/godiffusion/notebooks/diffusion/seeded"
	"github.com/gomlx/gomlx/core/tensors"
)

// batcher draws training batches on the host: examples with replacement, a uniform time step
// and Gaussian noise for each, deterministic in the seed.
type batcher struct {
	rng       *rand.Rand
	src       *rand.PCG // rng's source (its state is saved to resume)
	points    []float32
	labels    []int // nil for the denoiser
	n, dim, T int
	// timeSkew > 1 draws t = floor(T u^timeSkew), u ~ U[0, 1), instead of uniformly.
	timeSkew float64
}

func newBatcher(points []float32, labels []int, dim, T int, seed int64) *batcher {
	rng, src := newSource(seed)
	return &batcher{rng: rng, src: src, points: points, labels: labels, n: len(points) / dim, dim: dim, T: T}
}

// drawT draws one time step in [0, T): uniformly, or skewed to small t (see TrainConfig.TimeSkew).
func (b *batcher) drawT() int32 {
	if b.timeSkew <= 1 {
		return int32(b.rng.IntN(b.T))
	}
	return int32(min(b.T-1, int(float64(b.T)*math.Pow(b.rng.Float64(), b.timeSkew))))
}

// shards draws a batch of size examples split into workers shards; each shard's inputs are
// x0 [m, dim] float32, t [m] int32, noise [m, dim] float32 and, with labels, y [m] int32.
// The batch drawn does not depend on workers.
func (b *batcher) shards(size, workers int) [][]any {
	x0 := make([]float32, 0, size*b.dim)
	t := make([]int32, size)
	var y []int32
	if b.labels != nil {
		y = make([]int32, size)
	}
	for i := range size {
		j := b.rng.IntN(b.n)
		x0 = append(x0, b.points[j*b.dim:(j+1)*b.dim]...)
		t[i] = b.drawT()
		if y != nil {
			y[i] = int32(b.labels[j])
		}
	}
	noise := seeded.Normals(b.rng, size*b.dim)
	return dataparallel.Shards(size, workers, func(lo, hi int) []any {
		m := hi - lo
		shard := []any{tensors.FromFlatDataAndDimensions(x0[lo*b.dim:hi*b.dim], m, b.dim),
			tensors.FromFlatDataAndDimensions(t[lo:hi], m),
			tensors.FromFlatDataAndDimensions(noise[lo*b.dim:hi*b.dim], m, b.dim)}
		if y != nil {
			shard = append(shard, tensors.FromFlatDataAndDimensions(y[lo:hi], m))
		}
		return shard
	})
}
