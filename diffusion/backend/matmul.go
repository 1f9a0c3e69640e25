package backend

import (
	"slices"

	"github.com/gomlx/compute"
)

// smallMatMulSize is the product n*m*k of the sizes of a matrix product below which the Go
// backend of github.com/gomlx/compute v0.1.2 takes its "small" kernels
// (noSIMDSmallMatMulSizeThreshold, 4 Mi, in internal/gobackend/dot/matmul).
const smallMatMulSize = 4 << 20

// DotGeneral is the wrapped backend's DotGeneral, with the operands transposed first to the
// layout of matMulLayout when the MatMulLayouts rewrite is on.
func (f *elidingFunction) DotGeneral(lhs compute.Value, lhsContractingAxes, lhsBatchAxes []int,
	rhs compute.Value, rhsContractingAxes, rhsBatchAxes []int, config compute.DotGeneralConfig) (compute.Value, error) {
	if f.builder.backend.rewrites.MatMulLayouts {
		lp, rp, ok := f.matMulLayout(lhs, lhsContractingAxes, lhsBatchAxes, rhs, rhsContractingAxes, rhsBatchAxes)
		if ok && (lp != nil || rp != nil) {
			var err error
			if lp != nil {
				if lhs, err = f.Function.Transpose(lhs, lp...); err != nil {
					return nil, err
				}
				lhsContractingAxes, lhsBatchAxes = layoutAxes(len(lhsBatchAxes), true)
			}
			if rp != nil {
				if rhs, err = f.Function.Transpose(rhs, rp...); err != nil {
					return nil, err
				}
				rhsContractingAxes, rhsBatchAxes = layoutAxes(len(rhsBatchAxes), false)
			}
		}
	}
	return f.Function.DotGeneral(lhs, lhsContractingAxes, lhsBatchAxes, rhs, rhsContractingAxes, rhsBatchAxes, config)
}

// layoutAxes returns the contracting and batch axes of an operand in the row-major layout:
// lhs [batch, n, k] (contracting axis last), rhs [batch, k, m] (contracting axis first after
// the batch axis).
func layoutAxes(batchAxes int, lhs bool) (contracting, batch []int) {
	if batchAxes == 1 {
		batch = []int{0}
	}
	if lhs {
		return []int{batchAxes + 1}, batch
	}
	return []int{batchAxes}, batch
}

// matMulLayout returns the permutations that bring the operands of a matrix product to the
// row-major layout (nil: the operand stays as it is), for products with one contracting axis,
// one free axis per operand and at most one batch axis (ok false: any other product, left to
// the backend).
//
// The Go backend (compute v0.1.2) runs a product below smallMatMulSize in the row-major
// layout with a broadcast kernel, and any other layout as one dot product per output element
// ending in a horizontal sum, 5-8x slower on a Zen 3 core: 2.30 vs 0.30 ms for 128 x 128 x 128
// (lhs [n, k], rhs [m, k]), 2.43 ms for lhs [k, n] (the weight gradient of a dense layer);
// above it, it transposes both operands of lhs [k, n] (2.42 vs 1.39 ms for 500 x 256 x 256)
// and takes rhs [m, k] as fast as rhs [k, m] (1.45 vs 1.39 ms), which the rewrite leaves alone.
// Below smallMatMulSize the operands are moved only when the product has at least
// transposeCost multiply-adds per moved element and m is a multiple of 8 (docs/STATUS.md,
// session 12).
func (f *elidingFunction) matMulLayout(lhs compute.Value, lhsContractingAxes, lhsBatchAxes []int,
	rhs compute.Value, rhsContractingAxes, rhsBatchAxes []int) (lhsPerm, rhsPerm []int, ok bool) {
	if len(lhsContractingAxes) != 1 || len(rhsContractingAxes) != 1 || len(lhsBatchAxes) > 1 || len(lhsBatchAxes) != len(rhsBatchAxes) {
		return nil, nil, false
	}
	ls, err := f.Function.Shape(lhs)
	if err != nil {
		return nil, nil, false
	}
	rs, err := f.Function.Shape(rhs)
	if err != nil {
		return nil, nil, false
	}
	nb := len(lhsBatchAxes)
	if ls.Rank() != nb+2 || rs.Rank() != nb+2 || !ls.DType.IsFloat() || ls.DType != rs.DType {
		return nil, nil, false
	}
	for _, d := range append(slices.Clone(ls.Dimensions), rs.Dimensions...) {
		if d < 0 { // a dynamic axis
			return nil, nil, false
		}
	}
	lc, rc := lhsContractingAxes[0], rhsContractingAxes[0]
	lf, rf := freeAxis(ls.Rank(), lc, lhsBatchAxes), freeAxis(rs.Rank(), rc, rhsBatchAxes)
	if lf < 0 || rf < 0 {
		return nil, nil, false
	}
	size := ls.Dimensions[lf] * rs.Dimensions[rf] * ls.Dimensions[lc]
	lhsWant := append(slices.Clone(lhsBatchAxes), lf, lc)
	rhsWant := append(slices.Clone(rhsBatchAxes), rc, rf)
	if !isIdentity(lhsWant) {
		lhsPerm = lhsWant
	}
	if !isIdentity(rhsWant) {
		rhsPerm = rhsWant
	}
	if size >= smallMatMulSize {
		// The backend takes rhs [batch, m, k] as it is when lhs is (or is made) row-major, as
		// fast as rhs [batch, k, m].
		if isIdentity(append(slices.Clone(rhsBatchAxes), rf, rc)) {
			rhsPerm = nil
		}
		return lhsPerm, rhsPerm, true
	}
	// Below it, a transpose (an element-by-element copy, ~4.5 ns per element here) pays only
	// against enough multiply-adds: the dot-product kernel is slow for short contractions, not
	// for long ones (lhs [3, 1000] x rhs [256, 1000]: 0.44 ms as it is, 1.63 ms with rhs
	// transposed). And the row-major kernel ends each row of the output with scalar code when
	// m is not a multiple of 8 (the AVX2 vector), which runs up to 30x slower after the
	// kernels' AVX code (lhs [256, 1000] x rhs [1000, 2]: 0.28 ms or 7.9 ms from one run to
	// the next; issue 11's scalar-math penalty): such products stay as they are.
	moved := 0
	if lhsPerm != nil {
		moved += ls.Size()
	}
	if rhsPerm != nil {
		moved += rs.Size()
	}
	macs := size
	if nb == 1 {
		macs *= ls.Dimensions[lhsBatchAxes[0]]
	}
	if moved*transposeCost > macs || rs.Dimensions[rf]%8 != 0 {
		return nil, nil, true
	}
	return lhsPerm, rhsPerm, true
}

// transposeCost is how many multiply-adds of a small product a transposed element must save
// (measured on Zen 3: BenchmarkMatMulLayouts).
const transposeCost = 8

// freeAxis returns the one axis of an operand of rank r that is neither its contracting axis
// c nor a batch axis (-1 when the axes are out of range or repeated).
func freeAxis(r, c int, batch []int) int {
	if c < 0 || c >= r {
		return -1
	}
	free := -1
	for a := range r {
		if a == c || slices.Contains(batch, a) {
			continue
		}
		if free >= 0 {
			return -1
		}
		free = a
	}
	for _, b := range batch {
		if b < 0 || b >= r || b == c {
			return -1
		}
	}
	return free
}
