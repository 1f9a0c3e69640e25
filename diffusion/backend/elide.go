package backend

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
)

// ElideIdentityTransposes wraps a backend so that a Transpose whose permutation leaves
// every axis in place returns its operand instead of adding an op to the graph.
//
// GoMLX's gradient of DotGeneral (v0.28) ends with such a transpose for every dense
// layer, and the Go backend of github.com/gomlx/compute (v0.1.2-v0.1.5) executes it as
// an element-by-element copy. Skipping it makes the STATES denoiser's training step 1.10x
// faster (BenchmarkDenoiserTrainStepElision in diffusion/ddpm). Every other operation, and
// every graph without identity transposes, is unchanged. The wrapper's buffers and
// executables report it as their backend, as GoMLX's tensors require.
func ElideIdentityTransposes(b compute.Backend) compute.Backend {
	return Rewrite(b, Rewrites{IdentityTransposes: true})
}

// Rewrites selects the graph rewrites of a backend wrapped by Rewrite.
type Rewrites struct {
	// IdentityTransposes elides transposes that leave every axis in place
	// (ElideIdentityTransposes).
	IdentityTransposes bool
	// MatMulLayouts hands every matrix product with one contracting axis, one free axis per
	// operand and at most one batch axis to the Go backend in the row-major layout its fast
	// kernels take (lhs [batch, n, k], rhs [batch, k, m]), transposing the operands that are
	// not (see matMulLayout).
	MatMulLayouts bool
}

// AllRewrites is every rewrite, as New applies them to the Go backend.
var AllRewrites = Rewrites{IdentityTransposes: true, MatMulLayouts: true}

// Rewrite wraps a backend so that the graphs built on it get the rewrites r; the results
// of every graph are unchanged (up to float rounding). Wrapping a wrapped backend again
// replaces its rewrites.
func Rewrite(b compute.Backend, r Rewrites) compute.Backend {
	if w, ok := b.(elidingBackend); ok {
		if w.rewrites == r {
			return w
		}
		b = w.Backend
	}
	return elidingBackend{Backend: b, rewrites: r}
}

type elidingBackend struct {
	compute.Backend
	rewrites Rewrites
}

// Builder returns the wrapped backend's builder, wrapped.
func (b elidingBackend) Builder(name string) compute.Builder {
	return &elidingBuilder{Builder: b.Backend.Builder(name), backend: b, wrapped: map[compute.Function]*elidingFunction{}}
}

// BufferFromFlatData returns the wrapped backend's buffer, wrapped so that its Backend is b
// (GoMLX's tensors refuse buffers of another backend).
func (b elidingBackend) BufferFromFlatData(deviceNum compute.DeviceNum, flat any, shape shapes.Shape) (compute.Buffer, error) {
	buf, err := b.Backend.BufferFromFlatData(deviceNum, flat, shape)
	return b.wrapBuffer(buf), err
}

// NewSharedBuffer returns the wrapped backend's shared buffer, wrapped.
func (b elidingBackend) NewSharedBuffer(deviceNum compute.DeviceNum, shape shapes.Shape) (compute.Buffer, any, error) {
	buf, flat, err := b.Backend.NewSharedBuffer(deviceNum, shape)
	return b.wrapBuffer(buf), flat, err
}

func (b elidingBackend) wrapBuffer(buf compute.Buffer) compute.Buffer {
	if buf == nil {
		return nil
	}
	return &elidingBuffer{Buffer: buf, backend: b}
}

// elidingBuffer is a buffer of the wrapped backend that reports the wrapper as its backend.
type elidingBuffer struct {
	compute.Buffer
	backend elidingBackend
}

func (buf *elidingBuffer) Backend() compute.Backend { return buf.backend }

func (buf *elidingBuffer) CopyToDevice(deviceNum compute.DeviceNum) (compute.Buffer, error) {
	c, err := buf.Buffer.CopyToDevice(deviceNum)
	return buf.backend.wrapBuffer(c), err
}

func unwrapBuffer(buf compute.Buffer) compute.Buffer {
	if w, ok := buf.(*elidingBuffer); ok {
		return w.Buffer
	}
	return buf
}

// elidingExecutable unwraps the input buffers and wraps the outputs.
type elidingExecutable struct {
	compute.Executable
	backend elidingBackend
}

func (e *elidingExecutable) Execute(inputs []compute.Buffer, donate []bool, defaultDevice compute.DeviceNum) ([]compute.Buffer, error) {
	in := make([]compute.Buffer, len(inputs))
	for i, buf := range inputs {
		in[i] = unwrapBuffer(buf)
	}
	out, err := e.Executable.Execute(in, donate, defaultDevice)
	for i, buf := range out {
		out[i] = e.backend.wrapBuffer(buf)
	}
	return out, err
}

// elidingBuilder hands out one wrapper per function of the wrapped builder, so that a
// function compares equal to itself however it was obtained.
type elidingBuilder struct {
	compute.Builder
	backend elidingBackend
	wrapped map[compute.Function]*elidingFunction
}

func (b *elidingBuilder) wrap(f compute.Function) compute.Function {
	if f == nil {
		return nil
	}
	if w, ok := f.(*elidingFunction); ok {
		return w
	}
	w, ok := b.wrapped[f]
	if !ok {
		w = &elidingFunction{Function: f, builder: b}
		b.wrapped[f] = w
	}
	return w
}

// Compile compiles the wrapped builder's computation; its executable takes and returns
// wrapped buffers.
func (b *elidingBuilder) Compile() (compute.Executable, error) {
	e, err := b.Builder.Compile()
	if err != nil {
		return nil, err
	}
	return &elidingExecutable{Executable: e, backend: b.backend}, nil
}

// Main returns the main function, wrapped.
func (b *elidingBuilder) Main() compute.Function { return b.wrap(b.Builder.Main()) }

// NewFunction creates a named function, wrapped.
func (b *elidingBuilder) NewFunction(name string) (compute.Function, error) {
	f, err := b.Builder.NewFunction(name)
	if err != nil {
		return nil, err
	}
	return b.wrap(f), nil
}

type elidingFunction struct {
	compute.Function
	builder *elidingBuilder
}

// unwrap returns the wrapped backend's function, which its ops that take functions expect.
func unwrap(f compute.Function) compute.Function {
	if w, ok := f.(*elidingFunction); ok {
		return w.Function
	}
	return f
}

// Transpose returns x itself when permutation is the identity.
func (f *elidingFunction) Transpose(x compute.Value, permutation ...int) (compute.Value, error) {
	if f.builder.backend.rewrites.IdentityTransposes && isIdentity(permutation) {
		shape, err := f.Function.Shape(x)
		if err == nil && shape.Rank() == len(permutation) {
			return x, nil
		}
	}
	return f.Function.Transpose(x, permutation...)
}

func isIdentity(permutation []int) bool {
	for i, axis := range permutation {
		if axis != i {
			return false
		}
	}
	return true
}

func (f *elidingFunction) Builder() compute.Builder { return f.builder }
func (f *elidingFunction) Parent() compute.Function { return f.builder.wrap(f.Function.Parent()) }
func (f *elidingFunction) Closure() (compute.Function, error) {
	c, err := f.Function.Closure()
	if err != nil {
		return nil, err
	}
	return f.builder.wrap(c), nil
}

func (f *elidingFunction) Call(fn compute.Function, inputs ...compute.Value) ([]compute.Value, error) {
	return f.Function.Call(unwrap(fn), inputs...)
}

func (f *elidingFunction) Sort(comparator compute.Function, axis int, isStable bool, inputs ...compute.Value) ([]compute.Value, error) {
	return f.Function.Sort(unwrap(comparator), axis, isStable, inputs...)
}

func (f *elidingFunction) While(cond, body compute.Function, initialState ...compute.Value) ([]compute.Value, error) {
	return f.Function.While(unwrap(cond), unwrap(body), initialState...)
}

func (f *elidingFunction) If(pred compute.Value, trueBranch, falseBranch compute.Function) ([]compute.Value, error) {
	return f.Function.If(pred, unwrap(trueBranch), unwrap(falseBranch))
}
