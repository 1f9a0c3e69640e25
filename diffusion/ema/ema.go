// Package ema is the one home of the exponential moving average of a model's weights that
// every trainer can keep: the averages live in the model's store (non-trainable variables
// under "/ema", so checkpoints save them), are updated inside the training step's graph after
// the optimizer's update, and replace the weights at the end of training.
package ema

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Averages are the moving averages of a set of trainable variables.
type Averages struct {
	weights, averages []*model.Variable
}

// New creates in store, under "/ema", an average for each of weights (initialized to its
// current value), or finds the existing one (a further Train continues the same average).
func New(store *model.Store, weights []*model.Variable) (*Averages, error) {
	a := &Averages{weights: weights}
	for _, v := range weights {
		value, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("ema: %s: %w", v.Path(), err)
		}
		if value, err = value.Clone(); err != nil {
			return nil, fmt.Errorf("ema: %s: %w", v.Path(), err)
		}
		a.averages = append(a.averages, store.VariableWithValue(model.JoinPath("/ema", v.Path()), value).SetTrainable(false))
	}
	return a, nil
}

// NewForScope is New for every trainable variable under the scope path (e.g. "/unet") of
// store.
func NewForScope(store *model.Store, path string) (*Averages, error) {
	var weights []*model.Variable
	for v := range store.Scope(path).IterVariables() {
		if v.Trainable {
			weights = append(weights, v)
		}
	}
	return New(store, weights)
}

// Update sets, in graph g, every average to w + decay (average - w), with w the weight's
// value in g (call it after the optimizer's update, so w is the updated weight). decay is a
// scalar node (an input, to follow a warm-up, or a constant).
func (a *Averages) Update(g *Graph, decay *Node) {
	for i, e := range a.averages {
		w := a.weights[i].NodeValue(g)
		e.SetNodeValue(Add(w, Mul(ConvertDType(decay, w.DType()), Sub(e.NodeValue(g), w))))
	}
}

// Apply sets every weight to its average.
func (a *Averages) Apply() error {
	for i, e := range a.averages {
		value, err := e.Value()
		if err != nil {
			return err
		}
		if value, err = value.Clone(); err != nil {
			return err
		}
		if err := a.weights[i].SetValue(value); err != nil {
			return err
		}
	}
	return nil
}

// WarmupDecay is the decay at step k (0-based) with the usual warm-up
// min(decay, (1 + k) / (10 + k)), so that the average forgets the initial weights quickly.
func WarmupDecay(decay float64, k int) float64 {
	return min(decay, float64(1+k)/float64(10+k))
}
