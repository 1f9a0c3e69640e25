package dataparallel

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

// A least-squares problem on 7 examples of 3 features: loss_i = (x_i . w - y_i)^2, metric_i =
// |x_i . w - y_i|.
var (
	xs = [][]float32{{1, 2, 0}, {0, 1, -1}, {2, 0, 1}, {-1, 1, 1}, {0.5, -2, 0}, {1, 1, 1}, {3, -1, 2}}
	ys = []float32{1, -1, 2, 0.5, 3, -2, 1}
	w0 = []float32{0.3, -0.2, 0.5}
)

// hostStep returns the mean loss, the mean metric and the weights after one SGD step of rate
// lr on the mean loss, in float64.
func hostStep(lr float64) (loss, metric float64, w1 []float64) {
	grad := make([]float64, 3)
	for i, x := range xs {
		r := -float64(ys[i])
		for j := range x {
			r += float64(x[j]) * float64(w0[j])
		}
		loss += r * r
		metric += math.Abs(r)
		for j := range x {
			grad[j] += 2 * r * float64(x[j])
		}
	}
	n := float64(len(xs))
	for j := range w0 {
		w1 = append(w1, float64(w0[j])-lr*grad[j]/n)
	}
	return loss / n, metric / n, w1
}

func newProblem(t *testing.T, workers int) (*Stepper, *model.Store) {
	t.Helper()
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	store.VariableWithValue("/net/w", tensors.FromValue(slices.Clone(w0)))
	opt := optimizer.StochasticGradientDescent().WithDecay(false).WithLearningRate(0.1).Done()
	s, err := New(b, store, opt, Config{Workers: workers, Metrics: 1}, func(scope *model.Scope, in []*Node) (*Node, []*Node) {
		x, y := in[0], in[1]
		w := scope.Store().GetVariable("/net/w").NodeValue(x.Graph())
		r := Sub(ReduceSum(Mul(x, ExpandAxes(w, 0)), -1), y)
		return Square(r), []*Node{Abs(r)}
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, store
}

// shards splits the problem's examples into at most workers shards.
func shards(workers int) [][]any {
	return Shards(len(xs), workers, func(lo, hi int) []any {
		return []any{tensors.FromValue(xs[lo:hi]), tensors.FromValue(ys[lo:hi])}
	})
}

func weights(t *testing.T, store *model.Store) []float32 {
	t.Helper()
	v := store.GetVariable("/net/w")
	val, err := v.Value()
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](val)
}

// One step on 1, 2, 3 or 7 shards (uneven ones: 7 = 3 + 4, 2 + 2 + 3) returns the batch's mean
// loss and metric and applies the gradient of the batch's mean loss, as computed on the host.
func TestShardsGiveTheBatchGradient(t *testing.T) {
	wantLoss, wantMetric, wantW := hostStep(0.1)
	for _, workers := range []int{1, 2, 3, 7} {
		s, store := newProblem(t, workers)
		if s.Workers() != workers {
			t.Fatalf("Workers() = %d, want %d", s.Workers(), workers)
		}
		loss, metrics, gradOK, err := s.Step(len(xs), shards(workers))
		if err != nil || !gradOK {
			t.Fatalf("%d workers: gradient finite %v, %v", workers, gradOK, err)
		}
		if math.Abs(loss-wantLoss) > 1e-5*wantLoss || math.Abs(metrics[0]-wantMetric) > 1e-5*wantMetric {
			t.Errorf("%d workers: loss %v metric %v, want %v %v", workers, loss, metrics[0], wantLoss, wantMetric)
		}
		for j, w := range weights(t, store) {
			if math.Abs(float64(w)-wantW[j]) > 1e-6 {
				t.Errorf("%d workers: w[%d] = %v after the step, want %v", workers, j, w, wantW[j])
			}
		}
	}
}

// Fewer shards than workers is allowed (a batch smaller than the workers); more, or none, is
// an error.
func TestShardCount(t *testing.T) {
	s, store := newProblem(t, 3)
	if _, _, _, err := s.Step(len(xs), shards(1)); err != nil {
		t.Fatalf("one shard on 3 workers: %v", err)
	}
	_, _, w := hostStep(0.1)
	if got := weights(t, store); math.Abs(float64(got[0])-w[0]) > 1e-6 {
		t.Errorf("w[0] = %v, want %v", got[0], w[0])
	}
	for _, n := range []int{0, 4} {
		sh := make([][]any, n)
		for i := range sh {
			sh[i] = shards(1)[0]
		}
		if _, _, _, err := s.Step(len(xs), sh); err == nil || !strings.Contains(err.Error(), "shards for 3 workers") {
			t.Errorf("%d shards: error %v", n, err)
		}
	}
	if _, _, _, err := s.Step(0, shards(1)); err == nil || !strings.Contains(err.Error(), "batch size 0") {
		t.Errorf("batch size 0: error %v", err)
	}
}

// A step whose loss is finite but whose gradient is not (d sqrt(u) at u = 0) is reported and
// not applied: the weights and the optimizer state are unchanged.
func TestStepRefusesNonFiniteGradient(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	store.VariableWithValue("/net/w", tensors.FromValue([]float32{1, 2}))
	s, err := New(b, store, optimizer.Adam().LearningRate(0.1).Done(), Config{Workers: 2}, func(scope *model.Scope, in []*Node) (*Node, []*Node) {
		w := scope.Store().GetVariable("/net/w").NodeValue(in[0].Graph())
		l := Sqrt(ReduceAllSum(Square(Sub(w, w))))
		return Add(ZerosLike(in[0]), l), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	loss, _, gradOK, err := s.Step(2, [][]any{{tensors.FromValue([]float32{1})}, {tensors.FromValue([]float32{2})}})
	if err != nil || gradOK || loss != 0 {
		t.Fatalf("loss %v, gradient finite %v, %v", loss, gradOK, err)
	}
	if got := weights(t, store); !slices.Equal(got, []float32{1, 2}) {
		t.Errorf("weights %v after a refused step, want [1 2]", got)
	}
	for v := range store.IterVariables() {
		if strings.Contains(v.Path(), "adam") {
			t.Errorf("optimizer variable %s created by a refused step", v.Path())
		}
	}
}

// Compile creates the optimizer's variables without changing the weights; a bad EMA decay is
// refused by name.
func TestCompileAndConfig(t *testing.T) {
	s, store := newProblem(t, 2)
	if err := s.Compile(len(xs), func(m int) []shapes.Shape {
		return []shapes.Shape{shapes.Make(dtypes.Float32, m, 3), shapes.Make(dtypes.Float32, m)}
	}); err != nil {
		t.Fatal(err)
	}
	if got := weights(t, store); !slices.Equal(got, w0) {
		t.Errorf("weights %v after Compile, want %v", got, w0)
	}
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []float64{-0.1, 1, math.NaN()} {
		_, err := New(b, model.NewStore(), optimizer.Adam().Done(), Config{EMADecay: d}, nil)
		if err == nil || !strings.Contains(err.Error(), "EMA decay must be in [0, 1)") {
			t.Errorf("EMA decay %v: error %v", d, err)
		}
	}
	if got := ShardSizes(7, 3); !slices.Equal(got, []int{2, 2, 3}) {
		t.Errorf("ShardSizes(7, 3) = %v", got)
	}
	if got := ShardSizes(5, 0); !slices.Equal(got, []int{5}) {
		t.Errorf("ShardSizes(5, 0) = %v", got)
	}
	var ranges [][2]int
	Shards(3, 7, func(lo, hi int) []any { ranges = append(ranges, [2]int{lo, hi}); return nil })
	if !slices.Equal(ranges, [][2]int{{0, 1}, {1, 2}, {2, 3}}) {
		t.Errorf("Shards(3, 7) ranges %v, want one example each", ranges)
	}
}

// A state variable (a running mean of the examples' first feature, updated by the loss graph
// as batch normalization updates its statistics) is not written by the shards: the update sets
// the mean of the shards' new values, i.e. for equal shards the running mean of the whole
// batch. The gradient step is unchanged. A state variable created inside the loss graph is
// refused by name.
func TestStateVariablesAreTheShardsMean(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	const momentum = 0.25
	newStepper := func(workers int) (*Stepper, *model.Store) {
		store := model.NewStore()
		store.VariableWithValue("/net/w", tensors.FromValue(slices.Clone(w0)))
		store.VariableWithValue("/net/running", tensors.FromValue([]float32{2})).SetTrainable(false)
		opt := optimizer.StochasticGradientDescent().WithDecay(false).WithLearningRate(0.1).Done()
		s, err := New(b, store, opt, Config{Workers: workers}, func(scope *model.Scope, in []*Node) (*Node, []*Node) {
			x, y := in[0], in[1]
			g := x.Graph()
			w := scope.Store().GetVariable("/net/w").NodeValue(g)
			run := scope.Store().GetVariable("/net/running")
			first := Slice(x, AxisRange(), AxisElem(0))
			run.SetNodeValue(Add(MulScalar(run.NodeValue(g), 1-momentum), MulScalar(ReduceMean(first, 0), momentum)))
			r := Sub(ReduceSum(Mul(x, ExpandAxes(w, 0)), -1), y)
			return Square(r), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return s, store
	}
	// Six examples in shards of 3 (2 workers) or 2 (3 workers): equal shards.
	batch := func(workers int) [][]any {
		return Shards(6, workers, func(lo, hi int) []any {
			return []any{tensors.FromValue(xs[lo:hi]), tensors.FromValue(ys[lo:hi])}
		})
	}
	mean := 0.0
	for _, x := range xs[:6] {
		mean += float64(x[0]) / 6
	}
	want := (1-momentum)*2 + momentum*mean
	var w1 []float32
	for _, workers := range []int{1, 2, 3} {
		s, store := newStepper(workers)
		if _, _, ok, err := s.Step(6, batch(workers)); err != nil || !ok {
			t.Fatalf("%d workers: %v (gradient finite %v)", workers, err, ok)
		}
		if st := s.StateVariables(); len(st) != 1 || st[0].Path() != "/net/running" {
			t.Errorf("%d workers: state variables %v, want /net/running", workers, st)
		}
		v, err := store.GetVariable("/net/running").Value()
		if err != nil {
			t.Fatal(err)
		}
		if got := float64(tensors.MustCopyFlatData[float32](v)[0]); math.Abs(got-want) > 1e-6 {
			t.Errorf("%d workers: running mean %v after the step, want %v", workers, got, want)
		}
		if workers == 1 {
			w1 = weights(t, store)
		} else if got := weights(t, store); !slices.EqualFunc(got, w1, func(a, b float32) bool { return math.Abs(float64(a-b)) < 1e-6 }) {
			t.Errorf("%d workers: weights %v, one worker %v", workers, got, w1)
		}
	}

	store := model.NewStore()
	store.VariableWithValue("/net/w", tensors.FromValue(slices.Clone(w0)))
	s, err := New(b, store, optimizer.Adam().Done(), Config{Workers: 2}, func(scope *model.Scope, in []*Node) (*Node, []*Node) {
		g := in[0].Graph()
		v := scope.VariableWithValue("late", float32(0)).SetTrainable(false)
		v.SetNodeValue(AddScalar(v.NodeValue(g), 1))
		w := scope.Store().GetVariable("/net/w").NodeValue(g)
		return Square(ReduceSum(Mul(in[0], ExpandAxes(w, 0)), -1)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Step(6, batch(2)); err == nil || !strings.Contains(err.Error(), "created and updated the variable") {
		t.Errorf("a state variable created in the loss graph: error %v", err)
	}
}
