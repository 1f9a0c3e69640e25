package seeded

import (
	"math"
	"slices"
	"testing"
)

func TestDeterministicNormals(t *testing.T) {
	a, b := Normals(New(7), 20000), Normals(New(7), 20000)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed gave different draws")
	}
	if slices.Equal(a[:10], Normals(New(8), 10)) {
		t.Error("seeds 7 and 8 gave the same draws")
	}
	mean, sq := 0.0, 0.0
	for _, v := range a {
		mean += float64(v)
		sq += float64(v) * float64(v)
	}
	mean /= float64(len(a))
	variance := sq/float64(len(a)) - mean*mean
	if math.Abs(mean) > 0.03 || math.Abs(variance-1) > 0.04 {
		t.Errorf("mean %g variance %g, want 0 and 1", mean, variance)
	}
}
