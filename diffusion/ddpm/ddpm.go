// Package ddpm trains and samples the discrete-time diffusion models of 2-D point data
// (the STATES assignment): an eps-prediction MLP denoiser, a noisy-point MLP classifier,
// ancestral DDPM sampling, DDIM sampling with fewer steps, and classifier guidance.
//
// Points travel as flat row-major []float32 of N*D values (D = 2) and labels as []int.
// Every exported function returns errors: GoMLX panics raised while building or running a
// graph are recovered here and returned as errors, so a notebook kernel never dies.
//
// Each model owns a GoMLX model.Store with its variables (and its optimizer state once
// trained). Functions take the compute.Backend to run on; see package diffusion/backend.
package ddpm

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// Scope names of the models' variables inside their stores.
const (
	DenoiserScope   = "denoiser"
	ClassifierScope = "classifier"
)

// DType of all model computations.
const DType = dtypes.Float32

// recoverError turns a panic into an error stored in *err (see savedmodel.RecoverError).
func recoverError(err *error, what string) {
	if r := recover(); r != nil {
		*err = savedmodel.PanicError(r, what)
	}
}

// Denoiser is an eps-prediction network with its noise schedule.
type Denoiser struct {
	Net      nets.DenoiserConfig
	Schedule *schedule.Schedule

	backend compute.Backend
	store   *model.Store
}

// NewDenoiser creates a denoiser with freshly initialized weights (PyTorch-style init drawn
// from seed).
func NewDenoiser(backend compute.Backend, net nets.DenoiserConfig, sched schedule.Config, seed int64) (d *Denoiser, err error) {
	defer recoverError(&err, "ddpm.NewDenoiser")
	if backend == nil {
		return nil, fmt.Errorf("ddpm.NewDenoiser: nil backend")
	}
	if err := net.Validate(); err != nil {
		return nil, err
	}
	s, err := schedule.New(sched)
	if err != nil {
		return nil, err
	}
	d = &Denoiser{Net: net, Schedule: s, backend: backend, store: model.NewStore()}
	if err := d.store.SetRNGStateFromSeed(seed); err != nil {
		return nil, err
	}
	// Create and initialize the variables by predicting once.
	if _, err := d.PredictNoise(make([]float32, net.DataDim), []int{0}); err != nil {
		return nil, err
	}
	return d, nil
}

// Backend returns the backend the model runs on.
func (d *Denoiser) Backend() compute.Backend { return d.backend }

// Store returns the GoMLX store with the model's variables (under DenoiserScope) and, once
// trained, the optimizer state. For advanced use (e.g. custom graphs).
func (d *Denoiser) Store() *model.Store { return d.store }

// NumParameters returns the number of scalar weights of the network.
func (d *Denoiser) NumParameters() int { return d.store.Scope("/" + DenoiserScope).NumParameters() }

// Graph builds the network's eps prediction for points x [B, D] at integer time steps t ([B]
// or [B, 1], any integer dtype) in a graph of scope's store. The store must hold (or be able
// to create) the variables under DenoiserScope.
func (d *Denoiser) Graph(scope *model.Scope, x, t *Node) *Node {
	tNorm := d.Schedule.TimeInputNode(t, x.DType())
	return nets.Denoiser(scope.At(DenoiserScope), d.Net, x, tNorm)
}

// PredictNoise returns the predicted noise for the points x (flat N*D) at time steps t (N values).
func (d *Denoiser) PredictNoise(x []float32, t []int) (eps []float32, err error) {
	defer recoverError(&err, "ddpm.Denoiser.PredictNoise")
	n, err := numPoints(x, d.Net.DataDim)
	if err != nil {
		return nil, err
	}
	if len(t) != n {
		return nil, fmt.Errorf("ddpm: %d points but %d time steps", n, len(t))
	}
	ts, err := timeSteps(t, d.Schedule.T())
	if err != nil {
		return nil, err
	}
	exec, err := model.NewExec1(d.backend, d.store, func(scope *model.Scope, x, t *Node) *Node {
		return d.Graph(scope.ResetVisited(), x, t)
	})
	if err != nil {
		return nil, err
	}
	out, err := exec.Call(tensors.FromFlatDataAndDimensions(x, n, d.Net.DataDim), ts)
	if err != nil {
		return nil, err
	}
	return tensors.CopyFlatData[float32](out)
}

// Classifier predicts the class of noisy points x_t at time step t.
type Classifier struct {
	Net      nets.ClassifierConfig
	Schedule *schedule.Schedule

	backend compute.Backend
	store   *model.Store
}

// NewClassifier creates a classifier with freshly initialized weights drawn from seed.
func NewClassifier(backend compute.Backend, net nets.ClassifierConfig, sched schedule.Config, seed int64) (c *Classifier, err error) {
	defer recoverError(&err, "ddpm.NewClassifier")
	if backend == nil {
		return nil, fmt.Errorf("ddpm.NewClassifier: nil backend")
	}
	if err := net.Validate(); err != nil {
		return nil, err
	}
	s, err := schedule.New(sched)
	if err != nil {
		return nil, err
	}
	c = &Classifier{Net: net, Schedule: s, backend: backend, store: model.NewStore()}
	if err := c.store.SetRNGStateFromSeed(seed); err != nil {
		return nil, err
	}
	if _, err := c.Probabilities(make([]float32, net.DataDim), []int{0}); err != nil {
		return nil, err
	}
	return c, nil
}

// Backend returns the backend the model runs on.
func (c *Classifier) Backend() compute.Backend { return c.backend }

// Store returns the GoMLX store with the model's variables (under ClassifierScope).
func (c *Classifier) Store() *model.Store { return c.store }

// NumParameters returns the number of scalar weights of the network.
func (c *Classifier) NumParameters() int { return c.store.Scope("/" + ClassifierScope).NumParameters() }

// Graph builds the class logits [B, NumClasses] of points x [B, D] at integer time steps t.
func (c *Classifier) Graph(scope *model.Scope, x, t *Node) *Node {
	tNorm := c.Schedule.TimeInputNode(t, x.DType())
	return nets.Classifier(scope.At(ClassifierScope), c.Net, x, tNorm)
}

// Probabilities returns the softmax class probabilities (flat N*NumClasses, row-major) of the
// points x (flat N*D) at time steps t (N values).
func (c *Classifier) Probabilities(x []float32, t []int) (probs []float32, err error) {
	defer recoverError(&err, "ddpm.Classifier.Probabilities")
	n, err := numPoints(x, c.Net.DataDim)
	if err != nil {
		return nil, err
	}
	if len(t) != n {
		return nil, fmt.Errorf("ddpm: %d points but %d time steps", n, len(t))
	}
	ts, err := timeSteps(t, c.Schedule.T())
	if err != nil {
		return nil, err
	}
	exec, err := model.NewExec1(c.backend, c.store, func(scope *model.Scope, x, t *Node) *Node {
		return Softmax(c.Graph(scope.ResetVisited(), x, t), -1)
	})
	if err != nil {
		return nil, err
	}
	out, err := exec.Call(tensors.FromFlatDataAndDimensions(x, n, c.Net.DataDim), ts)
	if err != nil {
		return nil, err
	}
	return tensors.CopyFlatData[float32](out)
}

// ProbabilityGrid holds class probabilities on a regular grid, for prediction maps.
type ProbabilityGrid struct {
	X, Y       []float64 // grid coordinates: NX values along x, NY along y
	NumClasses int
	T          int       // time step evaluated
	Probs      []float32 // [NY][NX][NumClasses], row-major (y outer)
}

// At returns the probability of class k at grid cell (ix, iy).
func (p *ProbabilityGrid) At(ix, iy, k int) float32 {
	return p.Probs[(iy*len(p.X)+ix)*p.NumClasses+k]
}

// ArgMax returns the most probable class at grid cell (ix, iy).
func (p *ProbabilityGrid) ArgMax(ix, iy int) int {
	best := 0
	for k := 1; k < p.NumClasses; k++ {
		if p.At(ix, iy, k) > p.At(ix, iy, best) {
			best = k
		}
	}
	return best
}

// PredictGrid evaluates the class probabilities at time step t on an nx x ny grid covering
// [xMin, xMax] x [yMin, yMax] (2-D classifiers only).
func (c *Classifier) PredictGrid(xMin, xMax, yMin, yMax float64, nx, ny, t int) (*ProbabilityGrid, error) {
	if c.Net.DataDim != 2 {
		return nil, fmt.Errorf("ddpm.PredictGrid: needs a 2-D classifier, got %d-D", c.Net.DataDim)
	}
	if nx < 2 || ny < 2 || !(xMax > xMin) || !(yMax > yMin) {
		return nil, fmt.Errorf("ddpm.PredictGrid: invalid grid %dx%d over [%g,%g]x[%g,%g]", nx, ny, xMin, xMax, yMin, yMax)
	}
	grid := &ProbabilityGrid{X: make([]float64, nx), Y: make([]float64, ny), NumClasses: c.Net.NumClasses, T: t}
	for i := range nx {
		grid.X[i] = xMin + (xMax-xMin)*float64(i)/float64(nx-1)
	}
	for j := range ny {
		grid.Y[j] = yMin + (yMax-yMin)*float64(j)/float64(ny-1)
	}
	pts := make([]float32, 0, 2*nx*ny)
	ts := make([]int, nx*ny)
	for j := range ny {
		for i := range nx {
			pts = append(pts, float32(grid.X[i]), float32(grid.Y[j]))
		}
	}
	for i := range ts {
		ts[i] = t
	}
	var err error
	grid.Probs, err = c.Probabilities(pts, ts)
	if err != nil {
		return nil, err
	}
	return grid, nil
}

// numPoints checks that x holds whole points of dimension dim and returns their number.
func numPoints(x []float32, dim int) (int, error) {
	if len(x) == 0 || len(x)%dim != 0 {
		return 0, fmt.Errorf("ddpm: points must be a non-empty flat slice of N*%d values, got %d values", dim, len(x))
	}
	return len(x) / dim, nil
}

// timeSteps converts time steps to an int32 tensor, checking their range.
func timeSteps(t []int, T int) (*tensors.Tensor, error) {
	out := make([]int32, len(t))
	for i, v := range t {
		if v < 0 || v >= T {
			return nil, fmt.Errorf("ddpm: time step %d out of range [0, %d)", v, T)
		}
		out[i] = int32(v)
	}
	return tensors.FromFlatDataAndDimensions(out, len(out)), nil
}

// labelsTensor converts labels to an int32 tensor, checking their range.
func labelsTensor(labels []int, numClasses int) (*tensors.Tensor, error) {
	out := make([]int32, len(labels))
	for i, v := range labels {
		if v < 0 || v >= numClasses {
			return nil, fmt.Errorf("ddpm: label %d out of range [0, %d)", v, numClasses)
		}
		out[i] = int32(v)
	}
	return tensors.FromFlatDataAndDimensions(out, len(out)), nil
}

// scalarShape is a float32 scalar shape.
var scalarShape = shapes.Make(DType)
