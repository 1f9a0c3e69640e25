package backend

import (
	"slices"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

func plainGoBackend(t *testing.T) compute.Backend {
	t.Helper()
	b, err := compute.NewWithConfig(Effective("go"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Finalize)
	return b
}

func TestElideIdentityTransposes(t *testing.T) {
	b := ElideIdentityTransposes(plainGoBackend(t))
	if ElideIdentityTransposes(b) != b {
		t.Fatal("wrapping twice should return the same backend")
	}
	builder := b.Builder("transposes")
	f := builder.Main()
	if f != builder.Main() || f.Builder() != builder {
		t.Fatal("Main and Builder should return the same wrappers each time")
	}
	x, err := f.Parameter("x", shapes.Make(dtypes.Float32, 2, 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	same, err := f.Transpose(x, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if same != x {
		t.Fatal("an identity Transpose should return its operand")
	}
	swapped, err := f.Transpose(x, 1, 0)
	if err != nil || swapped == x {
		t.Fatalf("Transpose(x, 1, 0) = %v, %v: want a new op", swapped, err)
	}
	if _, err := f.Transpose(x, 0); err == nil {
		t.Fatal("a permutation of the wrong length should still be an error")
	}
	if err := f.Return([]compute.Value{swapped, same}, nil); err != nil {
		t.Fatal(err)
	}
	exec, err := builder.Compile()
	if err != nil {
		t.Fatal(err)
	}
	in, err := b.BufferFromFlatData(0, []float32{1, 2, 3, 4, 5, 6}, shapes.Make(dtypes.Float32, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	if in.Backend() != b {
		t.Fatal("buffers should report the wrapping backend")
	}
	out, err := exec.Execute([]compute.Buffer{in}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]float32{{1, 4, 2, 5, 3, 6}, {1, 2, 3, 4, 5, 6}} {
		got := make([]float32, 6)
		if err := out[i].ToFlatData(got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) || out[i].Backend() != b {
			t.Errorf("output %d = %v (backend %v), want %v on the wrapping backend", i, got, out[i].Backend(), want)
		}
	}
}

// The gradients of a dense layer, which contain identity transposes, and a sort, which
// passes a comparator function to the backend, give the same values with and without
// the wrapper.
func TestElidedGraphsMatchPlainBackend(t *testing.T) {
	plain := plainGoBackend(t)
	graphFn := func(x, w *Node) []*Node {
		y := Tanh(DotGeneral(x, []int{1}, nil, w, []int{1}, nil)) // [4, 5]
		loss := ReduceAllSum(Square(y))
		grads := Gradient(loss, x, w)
		return []*Node{loss, grads[0], grads[1], Sort(Reshape(y, -1), 0, true)}
	}
	x := ([][]float32{{0.1, -0.2, 0.3}, {0.4, 0.5, -0.6}, {-0.7, 0.8, 0.9}, {1.0, -1.1, 1.2}})
	w := ([][]float32{{0.5, -0.1, 0.2}, {0.3, 0.3, -0.4}, {-0.2, 0.6, 0.1}, {0.7, -0.5, 0.05}, {0.0, 0.25, -0.3}})
	want, err := ExecOnceN(plain, graphFn, x, w)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ExecOnceN(ElideIdentityTransposes(plain), graphFn, x, w)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if want[i].String() != got[i].String() {
			t.Errorf("output %d: plain %v, wrapped %v", i, want[i], got[i])
		}
	}
}

func TestNewWrapsTheGoBackend(t *testing.T) {
	b, err := NewWithConfig("go")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	if _, ok := b.(elidingBackend); !ok {
		t.Fatalf("NewWithConfig(\"go\") = %T, want the transpose-eliding wrapper", b)
	}
}
