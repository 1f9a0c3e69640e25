package statesrun

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/ddpm"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/tensorfile"
)

// The course's checkpoint deliverables, checkpoints/denoiser.pt and checkpoints/classifier.pt,
// are PyTorch state dicts of an nn.Sequential of the networks' layers, which load with
//
//	layers = []
//	for each hidden layer: layers += [nn.Linear(in, out), nn.PReLU()]   # or nn.ReLU()
//	layers += [nn.Linear(last, out_dim)]
//	net = nn.Sequential(*layers); net.load_state_dict(torch.load("denoiser.pt"))
//
// The input is [x1, x2, t_norm] (t_norm = linspace(-1, 1, T)[t]); the keys are "i.weight"
// ([out, in]) and "i.bias" of the Linear at Sequential index i, and "i.weight" ([1]) of a PReLU.
// ReLU layers have no parameters (their index is skipped).

// WriteDenoiserStateDict writes the denoiser's weights as a PyTorch state dict (see above).
func WriteDenoiserStateDict(d *ddpm.Denoiser, path string) error {
	widths := make([]int, d.Net.HiddenLayers)
	for i := range widths {
		widths[i] = d.Net.HiddenWidth
	}
	return writeStateDict(d.Store(), ddpm.DenoiserScope, len(widths), d.Net.Activation, path)
}

// WriteClassifierStateDict writes the classifier's weights as a PyTorch state dict (see above).
func WriteClassifierStateDict(c *ddpm.Classifier, path string) error {
	return writeStateDict(c.Store(), ddpm.ClassifierScope, len(c.Net.Hidden), c.Net.Activation, path)
}

// writeStateDict writes the layers layer_0 .. layer_{n-1} and output of scope in store.
func writeStateDict(store *model.Store, scope string, hidden int, act nets.Activation, path string) error {
	vars := map[string]*model.Variable{}
	for v := range store.IterVariables() {
		vars[strings.TrimPrefix(v.Path(), "/")] = v
	}
	get := func(name string) (*tensorfile.Tensor, error) {
		v, ok := vars[scope+"/"+name]
		if !ok {
			return nil, fmt.Errorf("statesrun: state dict: no variable %s/%s in the model", scope, name)
		}
		t, err := v.Value()
		if err != nil {
			return nil, err
		}
		flat, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			return nil, fmt.Errorf("statesrun: state dict: %s/%s: %w", scope, name, err)
		}
		shape := t.Shape().Dimensions
		if len(shape) == 0 {
			shape = []int{1} // nn.PReLU's weight is [1]
		}
		return tensorfile.NewFloat32(flat, shape...)
	}
	var entries []tensorfile.NamedTensor
	add := func(key, name string) error {
		t, err := get(name)
		if err != nil {
			return err
		}
		entries = append(entries, tensorfile.NamedTensor{Name: key, Tensor: t})
		return nil
	}
	idx := 0
	for i := 0; i <= hidden; i++ {
		layer := fmt.Sprintf("layer_%d", i)
		if i == hidden {
			layer = "output"
		}
		if err := add(fmt.Sprintf("%d.weight", idx), layer+"/weights"); err != nil {
			return err
		}
		if err := add(fmt.Sprintf("%d.bias", idx), layer+"/biases"); err != nil {
			return err
		}
		idx++
		if i == hidden {
			break
		}
		switch act {
		case nets.PReLU:
			if err := add(fmt.Sprintf("%d.weight", idx), layer+"/prelu"); err != nil {
				return err
			}
		case nets.ReLU:
		default:
			return fmt.Errorf("statesrun: state dict: activation %q has no nn.Sequential layer here (want prelu or relu)", act)
		}
		idx++
	}
	return tensorfile.WritePTDict(path, entries...)
}
