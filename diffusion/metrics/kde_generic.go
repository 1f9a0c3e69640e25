//go:build !(goexperiment.simd && amd64)

package metrics

// kernelSum is kernelSumScalar; builds with GOEXPERIMENT=simd on amd64 use AVX2.
func kernelSum(wx, wy []float64, zx, zy float64) (minQ, sum float64) {
	return kernelSumScalar(wx, wy, zx, zy)
}
