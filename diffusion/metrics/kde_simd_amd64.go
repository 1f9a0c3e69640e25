//go:build goexperiment.simd && amd64

package metrics

import (
	"math"
	"simd/archsimd"
)

// useAVX2 selects the vector kernel sum; it needs AVX2 and FMA.
var useAVX2 = archsimd.X86.AVX2() && archsimd.X86.FMA()

// kernelSum returns what kernelSumScalar returns, four points at a time with AVX2 when
// the CPU has it. The vector path adds every term (exponents clamped at -700, where
// exp is 1e-304) instead of skipping those below 1e-30: the sums differ by less than
// n*1e-30 relative.
func kernelSum(wx, wy []float64, zx, zy float64) (minQ, sum float64) {
	if !useAVX2 || len(wx) < 4 {
		return kernelSumScalar(wx, wy, zx, zy)
	}
	return kernelSumAVX2(wx, wy, zx, zy)
}

// Constants of expAVX2.
const (
	log2e    = 1.4426950408889634
	ln2Hi    = 6.93147180369123816490e-01
	ln2Lo    = 1.90821492927058770002e-10
	expFloor = -700.0
)

// kernelSumAVX2 is kernelSum on four lanes; it needs len(wx) >= 4. A tail of fewer
// than four points is read as the top lanes of the vector that ends at len(wx).
func kernelSumAVX2(wx, wy []float64, zx, zy float64) (minQ, sum float64) {
	n := len(wx)
	wy = wy[:n]
	vzx, vzy := archsimd.BroadcastFloat64x4(zx), archsimd.BroadcastFloat64x4(zy)
	sqdist := func(i int) archsimd.Float64x4 {
		dx := vzx.Sub(archsimd.LoadFloat64x4Slice(wx[i:]))
		dy := vzy.Sub(archsimd.LoadFloat64x4Slice(wy[i:]))
		return dx.Mul(dx).Add(dy.Mul(dy))
	}
	full := n &^ 3
	// Pass 1: the smallest squared distance. The last vector may overlap the
	// previous one; a minimum does not mind repeats.
	vmin := archsimd.BroadcastFloat64x4(math.Inf(1))
	for i := 0; i < full; i += 4 {
		vmin = vmin.Min(sqdist(i))
	}
	if full < n {
		vmin = vmin.Min(sqdist(n - 4))
	}
	var lanes [4]float64
	vmin.Store(&lanes)
	minQ = min(lanes[0], lanes[1], lanes[2], lanes[3])

	// Pass 2: sum of exp(-(q - minQ)/2).
	vMinQ := archsimd.BroadcastFloat64x4(minQ)
	half := archsimd.BroadcastFloat64x4(-0.5)
	floor := archsimd.BroadcastFloat64x4(expFloor)
	vsum := archsimd.BroadcastFloat64x4(0)
	for i := 0; i < full; i += 4 {
		t := sqdist(i).Sub(vMinQ).Mul(half).Max(floor)
		vsum = vsum.Add(expAVX2(t))
	}
	vsum.Store(&lanes)
	sum = lanes[0] + lanes[1] + lanes[2] + lanes[3]
	if full < n {
		// The last n-full points: the top lanes of the vector ending at n.
		expAVX2(sqdist(n - 4).Sub(vMinQ).Mul(half).Max(floor)).Store(&lanes)
		for j := 4 - (n - full); j < 4; j++ {
			sum += lanes[j]
		}
	}
	return minQ, sum
}

// expAVX2 returns exp(t) for each lane, t in [-708, 0], with a relative error below
// 1e-14: t = k ln2 + r with |r| <= ln2/2, exp(r) by its degree-11 Taylor polynomial,
// 2^k built in the exponent bits.
func expAVX2(t archsimd.Float64x4) archsimd.Float64x4 {
	k := t.Mul(archsimd.BroadcastFloat64x4(log2e)).RoundToEven()
	r := k.Mul(archsimd.BroadcastFloat64x4(-ln2Hi)).Add(t)
	r = k.Mul(archsimd.BroadcastFloat64x4(-ln2Lo)).Add(r)
	c := archsimd.BroadcastFloat64x4
	p := c(1.0/39916800).MulAdd(r, c(1.0/3628800))
	p = p.MulAdd(r, c(1.0/362880))
	p = p.MulAdd(r, c(1.0/40320))
	p = p.MulAdd(r, c(1.0/5040))
	p = p.MulAdd(r, c(1.0/720))
	p = p.MulAdd(r, c(1.0/120))
	p = p.MulAdd(r, c(1.0/24))
	p = p.MulAdd(r, c(1.0/6))
	p = p.MulAdd(r, c(0.5))
	p = p.MulAdd(r, c(1))
	p = p.MulAdd(r, c(1))
	// 2^k: adding 1.5*2^52 puts k (as a two's-complement integer) in the low mantissa
	// bits; subtracting the magic's bits leaves k, then bias and shift into the exponent.
	const magic = 6755399441055744.0
	bits := k.Add(archsimd.BroadcastFloat64x4(magic)).AsInt64x4().
		Sub(archsimd.BroadcastInt64x4(int64(math.Float64bits(magic)) - 1023)).
		ShiftAllLeft(52)
	return p.Mul(bits.AsFloat64x4())
}
