package nets

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/conv"
	"github.com/godiffusion/notebooks/diffusion/tensorfile"
)

// torchModules maps the UNet's Go scopes to the module names of bench/torch_unet.py; "block"
// modules are the Conv/DownConv/UpConv/Unflatten blocks (a convolution "c" and a batch norm
// "bn"), the others plain Conv2d or Linear layers.
var torchModules = map[string]struct {
	name  string
	block bool
}{
	"e1/conv_0": {"e1.0", true}, "e1/conv_1": {"e1.1", true},
	"e2/down": {"d1.0", true}, "e2/conv_0": {"d1.1.0", true}, "e2/conv_1": {"d1.1.1", true},
	"e3/down": {"d2.0", true}, "e3/conv_0": {"d2.1.0", true}, "e3/conv_1": {"d2.1.1", true},
	"unflatten": {"unflat", true},
	"u1/up":     {"u1.0", true}, "u1/conv_0": {"u1.1.0", true}, "u1/conv_1": {"u1.1.1", true},
	"u2/up": {"u2.0", true}, "u2/conv_0": {"u2.1.0", true}, "u2/conv_1": {"u2.1.1", true},
	"out_block/conv_0": {"out.0.0", true}, "out_block/conv_1": {"out.0.1", true},
	"out":        {"out.1", false},
	"fc1_t/fc_0": {"t1.0", false}, "fc1_t/fc_1": {"t1.2", false},
	"fc2_t/fc_0": {"t2.0", false}, "fc2_t/fc_1": {"t2.2", false},
	"fc1_c/fc_0": {"c1.0", false}, "fc1_c/fc_1": {"c1.2", false},
	"fc2_c/fc_0": {"c2.0", false}, "fc2_c/fc_1": {"c2.2", false},
}

// torchName returns the PyTorch state-dict name of the UNet variable at path (under "/unet/").
func torchName(path string) (string, error) {
	rel := strings.TrimPrefix(path, "/unet/")
	leaf := map[string]string{"weights": "weight", "biases": "bias", "bn/scale": "bn.weight",
		"bn/offset": "bn.bias", "bn/mean": "bn.running_mean", "bn/variance": "bn.running_var"}
	for suffix, torchLeaf := range leaf {
		prefix, ok := strings.CutSuffix(rel, "/"+suffix)
		if !ok {
			continue
		}
		m, ok := torchModules[prefix]
		if !ok {
			break
		}
		if m.block && !strings.HasPrefix(suffix, "bn/") {
			return m.name + ".c." + torchLeaf, nil
		}
		return m.name + "." + torchLeaf, nil
	}
	return "", fmt.Errorf("no PyTorch name for variable %s", path)
}

func toGoTensor(t *testing.T, x *tensorfile.Tensor) *tensors.Tensor {
	t.Helper()
	if x.DType != tensorfile.Float64 {
		t.Fatalf("want float64 tensors, got %s", x.DType)
	}
	return tensors.FromFlatDataAndDimensions(append([]float64(nil), x.Float64s...), x.Shape...)
}

func assertClose(t *testing.T, what string, got *tensors.Tensor, want *tensorfile.Tensor, tol float64) {
	t.Helper()
	g := tensors.MustCopyFlatData[float64](got)
	if len(g) != len(want.Float64s) {
		t.Fatalf("%s: %d values, PyTorch has %d (shape %v)", what, len(g), len(want.Float64s), want.Shape)
	}
	worst, at := 0.0, 0
	for i, w := range want.Float64s {
		if d := math.Abs(g[i]-w) / math.Max(1, math.Abs(w)); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > tol || math.IsNaN(worst) {
		t.Errorf("%s: differs from PyTorch by %.3g at %d (got %.10g, want %.10g)", what, worst, at, g[at], want.Float64s[at])
	}
}

// TestUNetMatchesPyTorch builds the same UNet in PyTorch (bench/torch_unet.py --export) and here,
// in float64 with PyTorch's parameters and running statistics, and compares the training-mode
// output, the updated running statistics, the gradients of sum(out * r) with respect to every
// parameter, and the inference-mode output.
func TestUNetMatchesPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("PyTorch parity test skipped in -short mode")
	}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import torch").Run(); err != nil {
		t.Skipf("%s cannot import torch: %v", python, err)
	}
	be, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cond, gelu string
		act        conv.Activation
	}{
		{"none", "tanh", conv.GELUTanh},
		{"time", "fast", conv.GELUFast},
		{"class", "none", conv.GELUExact},
	} {
		t.Run(tc.cond+"/"+string(tc.act), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(python, filepath.Join("..", "..", "bench", "torch_unet.py"), "--export", dir,
				"--hidden", "4", "--batch", "3", "--cond", tc.cond, "--gelu", tc.gelu)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("torch export: %v\n%s", err, out)
			}
			read := func(name string) map[string]*tensorfile.Tensor {
				d, err := tensorfile.ReadPTDict(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			params, inputs, results := read("params.pt"), read("inputs.pt"), read("results.pt")
			cfg := UNetConfig{Channels: 1, ImageSize: 28, Hidden: 4, Activation: tc.act,
				TimeConditioned: tc.cond != "none"}
			if tc.cond == "class" {
				cfg.NumClasses = 10
			}
			store := model.NewStore()
			var trainable []*model.Variable
			build := func(training bool) *model.Exec {
				e, err := model.NewExec(be, store, func(scope *model.Scope, in []*Node) []*Node {
					x, tt, c, r := in[0], in[1], in[2], in[3]
					scope.Store().SetTraining(x.Graph(), training)
					x = Reshape(x, x.Shape().Dimensions[0], 28, 28, 1)
					if !cfg.TimeConditioned {
						tt = nil
					}
					if cfg.NumClasses == 0 {
						c = nil
					}
					out := UNet(scope.In("unet"), cfg, x, tt, c)
					if !training {
						return []*Node{out}
					}
					trainable = trainable[:0]
					for v := range scope.IterVariables() {
						if v.Trainable && v.InUseByGraph(x.Graph()) {
							trainable = append(trainable, v)
						}
					}
					slices.SortFunc(trainable, func(a, b *model.Variable) int { return strings.Compare(a.Path(), b.Path()) })
					nodes := make([]*Node, len(trainable))
					for i, v := range trainable {
						nodes[i] = v.NodeValue(x.Graph())
					}
					loss := ReduceAllSum(Mul(out, Reshape(r, out.Shape().Dimensions...)))
					return append([]*Node{out}, Gradient(loss, nodes...)...)
				})
				if err != nil {
					t.Fatal(err)
				}
				return e
			}
			args := func() []any {
				return []any{toGoTensor(t, inputs["x"]), toGoTensor(t, inputs["t"]), toGoTensor(t, inputs["c"]), toGoTensor(t, inputs["r"])}
			}
			trainExec, evalExec := build(true), build(false)
			if _, err := trainExec.Exec(args()...); err != nil { // creates the variables
				t.Fatal(err)
			}
			n := 0
			for v := range store.IterVariables() {
				if !strings.HasPrefix(v.Path(), "/unet/") {
					continue // e.g. the random number generator state
				}
				name, err := torchName(v.Path())
				if err != nil {
					t.Fatal(err)
				}
				p, ok := params[name]
				if !ok {
					t.Fatalf("%s (%s) missing from PyTorch's parameters", name, v.Path())
				}
				if err := v.SetValue(toGoTensor(t, p)); err != nil {
					t.Fatalf("%s: %v", v.Path(), err)
				}
				n++
			}
			if n != len(params) {
				t.Fatalf("%d Go variables, %d PyTorch parameters and buffers", n, len(params))
			}
			out, err := trainExec.Exec(args()...)
			if err != nil {
				t.Fatal(err)
			}
			assertClose(t, "training-mode output", out[0], results["out"], 1e-9)
			for i, v := range trainable {
				name, _ := torchName(v.Path())
				assertClose(t, "gradient of "+v.Path(), out[1+i], results["grad."+name], 1e-9)
			}
			for v := range store.IterVariables() {
				if name, _ := torchName(v.Path()); strings.Contains(name, "running_") {
					assertClose(t, "updated "+v.Path(), v.MustValue(), results["new."+name], 1e-12)
				}
			}
			evalOut, err := evalExec.Exec(args()...)
			if err != nil {
				t.Fatal(err)
			}
			assertClose(t, "inference-mode output", evalOut[0], results["eval_out"], 1e-9)
		})
	}
}
