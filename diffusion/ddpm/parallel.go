package ddpm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/godiffusion/notebooks/diffusion/ema"
	"github.com/godiffusion/notebooks/diffusion/seeded"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// gradientApplier is implemented by GoMLX optimizers that can apply given gradients (Adam).
type gradientApplier interface {
	UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType)
}

// lossFunc builds the per-example losses [b] of one shard of a batch (and optional
// per-example metrics [b], e.g. correctness) from the shard's inputs.
type lossFunc func(scope *model.Scope, inputs []*Node) (losses *Node, metrics []*Node)

// stepper runs data-parallel optimizer steps: each of its workers computes the loss and the
// gradients of one shard of the batch, concurrently (the go backend runs element-wise ops on
// one core, so this is what uses a second core); one update then applies the sum of the
// shards' gradients. Each shard's loss is its sum of per-example losses divided by the whole
// batch size, so the sum is exactly the gradient of the batch's mean loss, for any split.
//
// With emaDecay > 0 it also keeps an exponential moving average of the trainable weights
// (non-trainable copies under "/ema"), updated after every step; useEMA copies it into the
// weights.
type stepper struct {
	grad, apply *model.Exec
	workers     int
	numMetrics  int
	emaDecay    float64
	weights     []*model.Variable // trainable variables, in the store's order
	avg         *ema.Averages     // their averages, when emaDecay > 0
}

func newStepper(backend compute.Backend, store *model.Store, opt optimizer.Interface, workers, numMetrics int, emaDecay float64, loss lossFunc) (*stepper, error) {
	applier, ok := opt.(gradientApplier)
	if !ok {
		return nil, fmt.Errorf("ddpm: optimizer %T cannot apply precomputed gradients", opt)
	}
	if emaDecay < 0 || emaDecay >= 1 {
		return nil, fmt.Errorf("ddpm: EMA decay must be in [0, 1), got %g", emaDecay)
	}
	s := &stepper{workers: max(1, workers), numMetrics: numMetrics, emaDecay: emaDecay}
	for v := range store.IterVariables() {
		if v.Trainable {
			s.weights = append(s.weights, v)
		}
	}
	var err error
	if emaDecay > 0 {
		if s.avg, err = ema.New(store, s.weights); err != nil {
			return nil, err
		}
	}
	s.grad, err = model.NewExec(backend, store, func(scope *model.Scope, inputs []*Node) []*Node {
		// inputs[0] is 1 / (whole batch size), the rest the shard's inputs.
		weight := inputs[0]
		losses, metrics := loss(scope, inputs[1:])
		if len(metrics) != numMetrics {
			panic(fmt.Sprintf("ddpm: loss function returned %d metrics, want %d", len(metrics), numMetrics))
		}
		l := Mul(ReduceAllSum(losses), weight)
		outs := []*Node{l}
		for _, m := range metrics {
			outs = append(outs, StopGradient(Mul(ReduceAllSum(m), weight)))
		}
		return append(outs, scope.BuildTrainableVariablesGradientsGraph(l)...)
	})
	if err != nil {
		return nil, err
	}
	s.apply, err = model.NewExec(backend, store, func(scope *model.Scope, grads []*Node) {
		g := grads[0].Graph()
		// Mark the trainable variables as used, in the store's order (the order of the
		// gradients returned by BuildTrainableVariablesGradientsGraph in the gradient graph).
		n := 0
		for v := range scope.IterVariables() {
			if v.Trainable {
				v.NodeValue(g)
				n++
			}
		}
		if n*s.workers != len(grads) {
			panic(fmt.Sprintf("ddpm: %d gradients for %d trainable variables and %d workers", len(grads), n, s.workers))
		}
		sum := make([]*Node, n)
		for i := range n {
			sum[i] = grads[i]
			for w := 1; w < s.workers; w++ {
				sum[i] = Add(sum[i], grads[w*n+i])
			}
		}
		applier.UpdateGraphWithGradients(scope, sum, grads[0].DType())
		if s.avg != nil {
			s.avg.Update(g, Scalar(g, grads[0].DType(), s.emaDecay))
		}
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// step runs one optimizer step on a batch of batchSize examples split into shards (the
// inputs of each worker) and returns the batch's mean loss and metrics. When the loss or a
// gradient value is NaN or infinite (gradOK false, or a non-finite loss) the update is not
// applied: the weights and the optimizer state stay those before the step.
func (s *stepper) step(batchSize int, shards [][]any) (loss float64, metrics []float64, gradOK bool, err error) {
	if len(shards) != s.workers {
		return 0, nil, false, fmt.Errorf("ddpm: %d shards for %d workers", len(shards), s.workers)
	}
	weight := float32(1 / float64(batchSize))
	outs := make([][]*tensors.Tensor, s.workers)
	errs := make([]error, s.workers)
	var wg sync.WaitGroup
	for w := range s.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer recoverError(&errs[w], "ddpm training worker")
			outs[w], errs[w] = s.grad.Exec(append([]any{weight}, shards[w]...)...)
		}()
	}
	wg.Wait()
	defer func() {
		for _, o := range outs {
			for _, t := range o {
				if t != nil {
					t.FinalizeAll()
				}
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return 0, nil, false, err
	}
	metrics = make([]float64, s.numMetrics)
	var grads []any
	for _, o := range outs {
		loss += float64(tensors.ToScalar[float32](o[0]))
		for i := range s.numMetrics {
			metrics[i] += float64(tensors.ToScalar[float32](o[1+i]))
		}
		for _, g := range o[1+s.numMetrics:] {
			grads = append(grads, g)
		}
	}
	gradOK = true
	for _, g := range grads {
		if !finite(g.(*tensors.Tensor)) {
			gradOK = false
			break
		}
	}
	if !gradOK || math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, metrics, gradOK, nil
	}
	if _, err := s.apply.Exec(grads...); err != nil {
		return 0, nil, false, err
	}
	return loss, metrics, true, nil
}

// finite reports whether every value of a float32 tensor is finite (other dtypes: true).
func finite(t *tensors.Tensor) bool {
	ok := true
	t.MustConstFlatData(func(flat any) {
		if f, isF32 := flat.([]float32); isF32 {
			for _, v := range f {
				if v-v != 0 { // NaN or ±Inf
					ok = false
					return
				}
			}
		}
	})
	return ok
}

// useEMA sets the trainable weights to their moving averages (no-op without EMA).
func (s *stepper) useEMA() error {
	if s.avg == nil {
		return nil
	}
	return s.avg.Apply()
}

// shardSizes splits a batch of n examples into workers near-equal shards.
func shardSizes(n, workers int) []int {
	out := make([]int, workers)
	for w := range workers {
		out[w] = (w+1)*n/workers - w*n/workers
	}
	return out
}

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
	out := make([][]any, 0, workers)
	lo := 0
	for _, m := range shardSizes(size, workers) {
		hi := lo + m
		shard := []any{tensors.FromFlatDataAndDimensions(x0[lo*b.dim:hi*b.dim], m, b.dim),
			tensors.FromFlatDataAndDimensions(t[lo:hi], m),
			tensors.FromFlatDataAndDimensions(noise[lo*b.dim:hi*b.dim], m, b.dim)}
		if y != nil {
			shard = append(shard, tensors.FromFlatDataAndDimensions(y[lo:hi], m))
		}
		out = append(out, shard)
		lo = hi
	}
	return out
}
