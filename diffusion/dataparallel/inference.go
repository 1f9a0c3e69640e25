package dataparallel

import (
	"errors"
	"runtime"
	"slices"
	"sync"

	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
)

// Concat splits n examples into up to workers near-equal contiguous shards [lo, hi) (one per
// example at most), calls f on them concurrently and concatenates the answers in order: an
// inference call of a network on shards of its batch, whose answers do not depend on the
// split. A panic in f is returned as an error.
func Concat[T any](n, workers int, f func(lo, hi int) ([]T, error)) ([]T, error) {
	workers = max(1, min(workers, n))
	if workers == 1 {
		return f(0, n)
	}
	outs := make([][]T, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Go(func() {
			defer savedmodel.RecoverError(&errs[w], "dataparallel: inference worker")
			outs[w], errs[w] = f(lo, hi)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.Concat(outs...), nil
}

// InferenceWorkers is the number of concurrent shards worth running for inference calls on b:
// every core (GOMAXPROCS) on the go backend, which runs element-wise ops and copies on one
// core per call; one elsewhere (XLA parallelizes each call itself).
func InferenceWorkers(b compute.Backend) int {
	if backend.IsGo(b) {
		return runtime.GOMAXPROCS(0)
	}
	return 1
}
