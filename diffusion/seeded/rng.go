// Package seeded is the one home of the models' host-side random helpers: a deterministic
// generator per seed and standard normal draws.
package seeded

import "math/rand/v2"

// New returns a deterministic PCG generator for seed (the stream of ddpm's and imagediff's
// batches, noise and initial points; changing it changes every trained model).
func New(seed int64) *rand.Rand { return rand.New(Source(seed)) }

// Source returns the PCG source of New(seed): rand.New(Source(seed)) draws the same stream,
// and the source's state can be saved (MarshalBinary) and restored (UnmarshalBinary) to
// resume it exactly (a rand.Rand keeps no state of its own).
func Source(seed int64) *rand.PCG { return rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15) }

// Normals returns n standard normal float32 values drawn from r.
func Normals(r *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}
