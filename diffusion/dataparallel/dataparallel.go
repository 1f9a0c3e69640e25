// Package dataparallel runs data-parallel optimizer steps on one machine: each worker
// computes the loss and the gradients of one shard of the batch, concurrently, and one update
// then applies the sum of the shards' gradients.
//
// The go backend runs element-wise ops on one core (its parallel op scheduler is off, see
// package backend), so for the small networks of the assignments (the STATES MLPs, the VAE)
// shards are what puts a second core to work. Each shard's loss is its sum of per-example
// losses divided by the whole batch size, so the sum of the shards' gradients is exactly the
// gradient of the batch's mean loss, for any split (up to float rounding).
package dataparallel

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/godiffusion/notebooks/diffusion/ema"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
)

// gradientApplier is implemented by GoMLX optimizers that can apply given gradients (Adam).
type gradientApplier interface {
	UpdateGraphWithGradients(scope *model.Scope, grads []*Node, lossDType dtypes.DType)
}

// LossFunc builds the per-example losses [b] of one shard of a batch, and optional
// per-example metrics [b] (e.g. correctness, or the terms of the loss), from the shard's
// inputs. It must return the same number of metrics every time (Config.Metrics).
type LossFunc func(scope *model.Scope, inputs []*Node) (losses *Node, metrics []*Node)

// Config configures a Stepper.
type Config struct {
	// Workers is the number of shards of each batch (values < 1 mean 1).
	Workers int
	// Metrics is the number of per-example metrics the loss function returns.
	Metrics int
	// EMADecay > 0 also keeps an exponential moving average of the trainable weights
	// (non-trainable copies under "/ema", package ema), updated after every step.
	EMADecay float64
	// EMAWarmup makes the decay of step k (0-based, counted by Steps) ema.WarmupDecay(EMADecay,
	// k) instead of EMADecay.
	EMAWarmup bool
}

// Stepper runs the data-parallel steps of one store's trainable variables.
type Stepper struct {
	grad, apply *model.Exec
	workers     int
	metrics     int
	emaDecay    float64
	emaWarmup   bool
	steps       int               // steps applied (the EMA warm-up)
	weights     []*model.Variable // trainable variables, in the store's order
	avg         *ema.Averages     // their averages, when emaDecay > 0
	// state are the non-trainable variables the loss graph updates (in the store's order),
	// found when the first gradient graph is built; stateKnown tells that it was.
	state      []*model.Variable
	stateKnown bool
	stateMu    sync.Mutex
	built      map[string]bool // shardKey of the shards whose gradient graph was built
}

// New builds a Stepper for the trainable variables of store, updated by opt (an optimizer
// that can apply given gradients, such as GoMLX's Adam).
func New(backend compute.Backend, store *model.Store, opt optimizer.Interface, cfg Config, loss LossFunc) (*Stepper, error) {
	applier, ok := opt.(gradientApplier)
	if !ok {
		return nil, fmt.Errorf("dataparallel: optimizer %T cannot apply precomputed gradients", opt)
	}
	if cfg.EMADecay < 0 || cfg.EMADecay >= 1 || math.IsNaN(cfg.EMADecay) {
		return nil, fmt.Errorf("dataparallel: EMA decay must be in [0, 1), got %g", cfg.EMADecay)
	}
	if cfg.Metrics < 0 {
		return nil, fmt.Errorf("dataparallel: negative number of metrics %d", cfg.Metrics)
	}
	s := &Stepper{workers: max(1, cfg.Workers), metrics: cfg.Metrics, emaDecay: cfg.EMADecay, emaWarmup: cfg.EMAWarmup, built: map[string]bool{}}
	for v := range store.IterVariables() {
		if v.Trainable {
			s.weights = append(s.weights, v)
		}
	}
	var err error
	if cfg.EMADecay > 0 {
		if s.avg, err = ema.New(store, s.weights); err != nil {
			return nil, err
		}
	}
	s.grad, err = model.NewExec(backend, store, func(scope *model.Scope, inputs []*Node) []*Node {
		// inputs[0] is 1 / (whole batch size), the rest the shard's inputs.
		weight := inputs[0]
		g := weight.Graph()
		// The values of the non-trainable variables before the loss graph, to find (and undo)
		// its updates of them: the shards must not write them concurrently.
		before := map[*model.Variable]*Node{}
		for v := range scope.IterVariables() {
			if !v.Trainable && v.HasValue() {
				before[v] = v.NodeValue(g)
			}
		}
		losses, metrics := loss(scope, inputs[1:])
		if len(metrics) != s.metrics {
			panic(fmt.Sprintf("dataparallel: loss function returned %d metrics, want %d", len(metrics), s.metrics))
		}
		var state []*model.Variable
		var proposals []*Node
		for v := range scope.IterVariables() {
			if v.Trainable || !v.ChangedInGraph(g) {
				continue
			}
			old, ok := before[v]
			if !ok {
				panic(fmt.Sprintf("dataparallel: the loss graph created and updated the variable %s: create it (e.g. run the model once) before dataparallel.New", v.Path()))
			}
			state = append(state, v)
			proposals = append(proposals, StopGradient(v.NodeValue(g)))
			v.SetNodeValue(old) // the shard does not write it; the update sets the shards' mean
		}
		if err := s.setState(state); err != nil {
			panic(err)
		}
		l := Mul(ReduceAllSum(losses), weight)
		outs := []*Node{l}
		for _, m := range metrics {
			outs = append(outs, StopGradient(Mul(ReduceAllSum(m), weight)))
		}
		outs = append(outs, scope.BuildTrainableVariablesGradientsGraph(l)...)
		return append(outs, proposals...)
	})
	if err != nil {
		return nil, err
	}
	s.apply, err = model.NewExec(backend, store, func(scope *model.Scope, inputs []*Node) {
		g := inputs[0].Graph()
		var decay *Node
		if s.avg != nil { // the last input is the EMA decay
			decay, inputs = inputs[len(inputs)-1], inputs[:len(inputs)-1]
		}
		// Mark the trainable variables as used, in the store's order (the order of the
		// gradients returned by BuildTrainableVariablesGradientsGraph in the gradient graph).
		n := 0
		for v := range scope.IterVariables() {
			if v.Trainable {
				v.NodeValue(g)
				n++
			}
		}
		state := s.stateVariables()
		for _, v := range state {
			// Created before the graph's other nodes: the go backend (compute v0.1.2) fails on an
			// unused parameter numbered after the last node it executes, and SetNodeValue below
			// would create one (the old value is not read).
			v.NodeValue(g)
		}
		k := n + len(state) // inputs per shard: the gradients, then the state proposals
		if n == 0 || len(inputs)%k != 0 {
			panic(fmt.Sprintf("dataparallel: %d inputs for %d trainable and %d state variables", len(inputs), n, len(state)))
		}
		shards := len(inputs) / k
		sum := make([]*Node, n)
		for i := range n {
			sum[i] = inputs[i]
			for w := 1; w < shards; w++ {
				sum[i] = Add(sum[i], inputs[w*k+i])
			}
		}
		applier.UpdateGraphWithGradients(scope, sum, inputs[0].DType())
		for j, v := range state {
			mean := inputs[n+j]
			for w := 1; w < shards; w++ {
				mean = Add(mean, inputs[w*k+n+j])
			}
			v.SetNodeValue(MulScalar(mean, 1/float64(shards)))
		}
		if s.avg != nil {
			s.avg.Update(g, decay)
		}
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// setState records the state variables found in a gradient graph; every graph (one per shard
// size) must find the same.
func (s *Stepper) setState(state []*model.Variable) error {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if !s.stateKnown {
		s.state, s.stateKnown = state, true
		return nil
	}
	if !slices.Equal(s.state, state) {
		return fmt.Errorf("dataparallel: the loss graphs of two shard sizes update different variables (%d and %d)", len(s.state), len(state))
	}
	return nil
}

// stateVariables returns the state variables (empty before a gradient graph was built).
func (s *Stepper) stateVariables() []*model.Variable {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return s.state
}

// StateVariables returns the non-trainable variables that the loss graph updates (found when
// the first shard's graph was built: nil before a Step or Compile), whose new values are the
// means of the shards' updates.
func (s *Stepper) StateVariables() []*model.Variable { return slices.Clone(s.stateVariables()) }

// Workers returns the number of shards each batch must come in.
func (s *Stepper) Workers() int { return s.workers }

// Step runs one optimizer step on a batch of batchSize examples split into shards (the
// inputs of each worker: at most Workers() shards, e.g. fewer for a batch smaller than that)
// and returns the batch's mean loss and
// metrics. When the loss or a gradient value is NaN or infinite (gradOK false, or a
// non-finite loss) the update is not applied: the weights and the optimizer state stay
// those before the step.
func (s *Stepper) Step(batchSize int, shards [][]any) (loss float64, metrics []float64, gradOK bool, err error) {
	if len(shards) < 1 || len(shards) > s.workers {
		return 0, nil, false, fmt.Errorf("dataparallel: %d shards for %d workers", len(shards), s.workers)
	}
	if batchSize < 1 {
		return 0, nil, false, fmt.Errorf("dataparallel: batch size %d < 1", batchSize)
	}
	weight := float32(1 / float64(batchSize))
	outs := make([][]*tensors.Tensor, len(shards))
	errs := make([]error, len(shards))
	run := func(w int) {
		defer savedmodel.RecoverError(&errs[w], "dataparallel: training worker")
		outs[w], errs[w] = s.grad.Exec(append([]any{weight}, shards[w]...)...)
	}
	var wg sync.WaitGroup
	for w := range shards {
		// A shard of a size not run before builds its graph alone: a graph that fails to build
		// while another worker waits for it would block that worker.
		if key := shardKey(shards[w]); !s.built[key] {
			if run(w); errs[w] != nil {
				return 0, nil, false, errs[w]
			}
			s.built[key] = true
			continue
		}
		wg.Go(func() { run(w) })
	}
	wg.Wait()
	defer func() {
		for _, o := range outs {
			for _, t := range o {
				if t != nil {
					t.FinalizeAll()
				}
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return 0, nil, false, err
	}
	metrics = make([]float64, s.metrics)
	var grads []any
	for _, o := range outs {
		loss += scalar(o[0])
		for i := range s.metrics {
			metrics[i] += scalar(o[1+i])
		}
		for _, g := range o[1+s.metrics:] {
			grads = append(grads, g)
		}
	}
	gradOK = true
	nw := len(s.weights)
	for i, g := range grads {
		if i%(nw+len(s.stateVariables())) < nw && !finite(g.(*tensors.Tensor)) {
			gradOK = false
			break
		}
	}
	if !gradOK || math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, metrics, gradOK, nil
	}
	if s.avg != nil {
		decay := s.emaDecay
		if s.emaWarmup {
			decay = ema.WarmupDecay(decay, s.steps)
		}
		grads = append(grads, float32(decay))
	}
	out, err := s.apply.Exec(grads...)
	if err != nil {
		return 0, nil, false, err
	}
	for _, t := range out {
		t.FinalizeAll()
	}
	s.steps++
	return loss, metrics, true, nil
}

// shardKey identifies the gradient graph a shard's inputs need (their shapes).
func shardKey(inputs []any) string {
	var b strings.Builder
	for _, in := range inputs {
		if t, ok := in.(*tensors.Tensor); ok {
			b.WriteString(t.Shape().String())
		} else {
			fmt.Fprintf(&b, "%T", in)
		}
		b.WriteByte(';')
	}
	return b.String()
}

// scalar converts a float scalar tensor to float64.
func scalar(t *tensors.Tensor) float64 {
	switch t.DType() {
	case dtypes.Float64:
		return tensors.ToScalar[float64](t)
	default:
		return float64(tensors.ToScalar[float32](t))
	}
}

// Compile builds and compiles the gradient graph of every shard size of a batch of batchSize
// examples (split into min(batchSize, Workers()) shards, as Step expects them) and the update
// graph, without running them, so that the optimizer's variables
// exist before a saved state is loaded into the store. shard returns the shapes of the inputs
// of a shard of m examples (without the weight Step adds).
func (s *Stepper) Compile(batchSize int, shard func(m int) []shapes.Shape) error {
	shards := min(max(1, batchSize), s.workers)
	seen := map[int]bool{}
	for _, m := range ShardSizes(batchSize, shards) {
		if seen[m] {
			continue
		}
		seen[m] = true
		in := append([]shapes.Shape{shapes.Make(dtypes.Float32)}, shard(m)...)
		if _, err := s.grad.Compile(in...); err != nil {
			return err
		}
	}
	var grads []shapes.Shape
	for range shards {
		for _, v := range s.weights {
			grads = append(grads, v.Shape())
		}
		for _, v := range s.stateVariables() {
			grads = append(grads, v.Shape())
		}
	}
	if s.avg != nil {
		grads = append(grads, shapes.Make(dtypes.Float32))
	}
	_, err := s.apply.Compile(grads...)
	return err
}

// Steps returns the number of steps applied (by this Stepper, or set by SetSteps).
func (s *Stepper) Steps() int { return s.steps }

// SetSteps sets the number of steps applied so far, e.g. that of a resumed training state
// (it sets the EMA warm-up).
func (s *Stepper) SetSteps(k int) { s.steps = k }

// UseEMA sets the trainable weights to their moving averages (no-op without EMA).
func (s *Stepper) UseEMA() error {
	if s.avg == nil {
		return nil
	}
	return s.avg.Apply()
}

// ShardSizes splits a batch of n examples into workers near-equal shards (the earlier ones
// the smaller by at most one).
func ShardSizes(n, workers int) []int {
	workers = max(1, workers)
	out := make([]int, workers)
	for w := range workers {
		out[w] = (w+1)*n/workers - w*n/workers
	}
	return out
}

// Shards cuts a batch of n examples into the shards Step takes: min(n, workers) near-equal
// ranges (ShardSizes), and returns shard(lo, hi), the inputs of examples [lo, hi), for each.
func Shards(n, workers int, shard func(lo, hi int) []any) [][]any {
	sizes := ShardSizes(n, min(n, max(1, workers)))
	out := make([][]any, 0, len(sizes))
	lo := 0
	for _, m := range sizes {
		out = append(out, shard(lo, lo+m))
		lo += m
	}
	return out
}

// finite reports whether every value of a float tensor is finite (other dtypes: true).
func finite(t *tensors.Tensor) bool {
	ok := true
	t.MustConstFlatData(func(flat any) {
		switch f := flat.(type) {
		case []float32:
			for _, v := range f {
				if v-v != 0 { // NaN or ±Inf
					ok = false
					return
				}
			}
		case []float64:
			for _, v := range f {
				if v-v != 0 {
					ok = false
					return
				}
			}
		}
	})
	return ok
}
