// Package conv holds the convolution building blocks of the coursework's UNets (CS180 project
// 5B): 3x3 convolutions, stride-2 convolutions, 4x4 stride-2 transposed convolutions, the 7x7
// "Unflatten" transposed convolution, global average pooling, and batch normalization followed
// by GELU, as GoMLX graph functions with custom gradients, written for speed on GoMLX's pure-Go
// "go" backend (GoMLX v0.28.2, github.com/gomlx/compute v0.1.2) and correct on any backend.
//
// # Layout
//
// Feature maps are Maps: data [channels, positions] ("channels first, batch and pixels last")
// plus a Geometry that places pixel (b, h, w) at position Offset + b*(H+1)*(W+1) + h*(W+1) + w.
// Each image row is followed by a zero column and each image by a zero row, so a 3x3
// neighbourhood is 9 constant shifts along the positions axis and the zero padding is already
// in place. FromNHWC/NHWC convert at the network's boundaries (cheap for 1-channel images).
//
// Why not NHWC: measured on the go backend (see README.md in this directory), the backend's
// Slice and Transpose walk an index iterator per element (2-5 ns per element), its broadcasts
// and ReduceSum likewise, while Concatenate copies contiguous blocks with memmove and the
// matmul (DotGeneral) is AVX-512 code that takes [rows, k] x [k, cols] and [rows, k] x [cols, k]
// without transposing. In the frame layout
//   - im2col is ONE Concatenate of shifted copies of each channel row (memmove speed), so a
//     convolution is one Concatenate and one matmul W[M, 9C] x X[9C, positions];
//   - the weight gradient X . dY^T contracts the positions axis, the last axis of both
//     operands: no transposes (in NHWC one operand of a weight gradient must be transposed);
//   - per-channel sums are matmuls with a row of ones, per-channel scale and shift one batched
//     matmul with a 2- or 3-long contraction, avoiding broadcasts and ReduceSum.
//
// # Gradients
//
// GoMLX's automatic gradients of these formulations would reintroduce the slow ops (the
// gradient of Slice is Pad, of Concatenate per-element Slices, of DotGeneral transposes) and
// some are missing or wrong on the go backend (Pad, Reverse, dilated and even-sized
// convolutions). Every block therefore has a custom gradient (withGradient): the convolution's
// input gradient is again one Concatenate of shifted copies of dY and one matmul; the stride-2
// convolution runs on the 4 polyphase components of its input ("space to depth") with no
// wasted multiply-add; the transposed convolution is 4 sub-pixel convolutions interleaved
// ("depth to space") instead of a convolution of a zero-inserted input; batch normalization's
// gradient is the closed form. Each block is tested against naive float64 loop references and
// finite differences, and the whole UNet against PyTorch (diffusion/nets).
//
// # Activation
//
// The go backend computes tanh, erf and exp per element with math.Tanh/Erf/Exp and runs every
// elementwise op as its own pass (1-2 ns per element): GELU costs about as much as the
// convolution it follows. GELUTanh (PyTorch's approximate="tanh") is the default: in training
// z*sigmoid(2u) with the backend's Logistic op, keeping sigmoid(2u) for a multiply-add
// backward pass; in inference the same form on the go backend (its fused GELU calls math.Tanh,
// 1.4x slower in sampling, session 12) and the fused single-op GELU elsewhere.
//
// The AVX-SSE transition penalty: in SIMD builds the vector registers' upper halves are left
// dirty (by the backend's matrix kernels, and by Go's asynchronous preemption without
// GODEBUG=asyncpreemptoff=1), and math.Exp and math.Tanh (which mix VEX FMA and legacy SSE
// instructions) then take 0.8-2.2 us per call instead of 14-43 ns (AMD EPYC Zen 3 and Intel
// Xeon, docs/STATUS.md sessions 6 and 10); math.Expm1 (pure Go) does not pay it on those CPUs
// (it does on a Zen 5, session 12). In conv the GELU follows element-wise batch-norm ops, not a
// matrix kernel, and with asyncpreemptoff set the plain forms measured faster (session 11): the
// GELU takes Expm1 instead of Logistic (1/(2 + expm1(v)) is as exact as 1/(1 + exp(v))) only
// on the go backend of a SIMD build without GODEBUG=asyncpreemptoff=1 (expPenalty).
// BenchmarkExpAfterMatMul (diffusion/safeexp) and BenchmarkExpPenalty (diffusion/backend)
// measure the penalty of a CPU. GELUExact and GELUFast (a sqrt-based approximation within
// 2.2e-4 of the exact GELU) are measured alternatives (README.md).
package conv
