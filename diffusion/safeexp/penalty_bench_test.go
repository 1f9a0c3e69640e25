//go:build goexperiment.simd && amd64

package safeexp

import (
	"math"
	"simd/archsimd"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

var sink float64

// BenchmarkExpAfterMatMul shows the penalty this package avoids: 16384 calls of math.Exp
// (and of the pure-Go math.Expm1, the replacement) on the host, fresh, right after a 128 x 128
// matrix product on the go backend, and after the product followed by
// archsimd.ClearAVXUpperBits.
func BenchmarkExpAfterMatMul(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Fatal(err)
	}
	m := make([]float32, 128*128)
	for i := range m {
		m[i] = 0.01 * (float32(i%257)/128 - 1)
	}
	mt := tensors.FromFlatDataAndDimensions(m, 128, 128)
	product := graph.MustNewExec(be, func(x *graph.Node) *graph.Node { return graph.MatMul(x, x) })
	xs := make([]float64, 16384)
	for i := range xs {
		xs[i] = 0.5 + 8*float64(i)/float64(len(xs))
	}
	for _, f := range []struct {
		name string
		f    func(float64) float64
	}{{"exp", math.Exp}, {"expm1", math.Expm1}} {
		for _, mode := range []string{"fresh", "after-matmul", "after-matmul+clear"} {
			b.Run(f.name+"/"+mode, func(b *testing.B) {
				s := 0.0
				for b.Loop() {
					if mode != "fresh" {
						product.MustExec(mt)[0].FinalizeAll()
					}
					if mode == "after-matmul+clear" {
						archsimd.ClearAVXUpperBits()
					}
					for _, v := range xs {
						s += f.f(v)
					}
				}
				sink += s
			})
		}
	}
}
