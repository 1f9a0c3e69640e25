package statesrun

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/ddpm"
	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/schedule"
	"github.com/godiffusion/notebooks/diffusion/tensorfile"
)

// sequential evaluates the documented nn.Sequential of a state dict in float64: Linear layers
// (x W^T + b) with PReLU (or ReLU when relu) between them.
func sequential(sd map[string]*tensorfile.Tensor, hidden int, relu bool, in []float64) ([]float64, error) {
	h := in
	idx := 0
	for i := 0; i <= hidden; i++ {
		w, b := sd[fmt.Sprintf("%d.weight", idx)], sd[fmt.Sprintf("%d.bias", idx)]
		if w == nil || b == nil {
			return nil, fmt.Errorf("no Linear at index %d", idx)
		}
		out, inDim := w.Shape[0], w.Shape[1]
		if inDim != len(h) {
			return nil, fmt.Errorf("Linear %d takes %d inputs, got %d", idx, inDim, len(h))
		}
		next := make([]float64, out)
		for o := range out {
			s := float64(b.Float32s[o])
			for j := range inDim {
				s += float64(w.Float32s[o*inDim+j]) * h[j]
			}
			next[o] = s
		}
		h = next
		idx++
		if i == hidden {
			break
		}
		slope := 0.0
		if !relu {
			a := sd[fmt.Sprintf("%d.weight", idx)]
			if a == nil || len(a.Float32s) != 1 {
				return nil, fmt.Errorf("no PReLU at index %d", idx)
			}
			slope = float64(a.Float32s[0])
		}
		for j, v := range h {
			if v < 0 {
				h[j] = slope * v
			}
		}
		idx++
	}
	return h, nil
}

// The state dicts, read back and evaluated as the documented nn.Sequential, give the Go
// models' outputs; with PyTorch installed, torch loads them into that module too.
func TestStateDicts(t *testing.T) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	sc := schedule.DefaultConfig()
	d, err := ddpm.NewDenoiser(b, nets.DenoiserConfig{DataDim: 2, HiddenWidth: 16, HiddenLayers: 3, Activation: nets.PReLU}, sc, 3)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ddpm.NewClassifier(b, nets.ClassifierConfig{DataDim: 2, Hidden: []int{8, 12}, NumClasses: 5, Activation: nets.ReLU}, sc, 4)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dp, cp := filepath.Join(dir, "denoiser.pt"), filepath.Join(dir, "classifier.pt")
	if err := WriteDenoiserStateDict(d, dp); err != nil {
		t.Fatal(err)
	}
	if err := WriteClassifierStateDict(c, cp); err != nil {
		t.Fatal(err)
	}
	x := []float32{0.3, -1.2, 1.5, 0.7, -0.4, 0.1}
	ts := []int{0, 250, 499}
	eps, err := d.PredictNoise(x, ts)
	if err != nil {
		t.Fatal(err)
	}
	probs, err := c.Probabilities(x, ts)
	if err != nil {
		t.Fatal(err)
	}
	dsd, err := tensorfile.ReadPTDict(dp)
	if err != nil {
		t.Fatal(err)
	}
	csd, err := tensorfile.ReadPTDict(cp)
	if err != nil {
		t.Fatal(err)
	}
	if len(dsd) != 3*3+2 || len(csd) != 2*3 {
		t.Errorf("%d denoiser and %d classifier entries, want 11 and 6", len(dsd), len(csd))
	}
	for i, k := range ts {
		in := []float64{float64(x[2*i]), float64(x[2*i+1]), d.Schedule.TimeInput[k]}
		got, err := sequential(dsd, 3, false, in)
		if err != nil {
			t.Fatal(err)
		}
		for j := range got {
			if math.Abs(got[j]-float64(eps[2*i+j])) > 1e-5*(1+math.Abs(got[j])) {
				t.Errorf("denoiser point %d: state dict gives %g, Go %g", i, got[j], eps[2*i+j])
			}
		}
		logits, err := sequential(csd, 2, true, in)
		if err != nil {
			t.Fatal(err)
		}
		mx, sum := math.Inf(-1), 0.0
		for _, l := range logits {
			mx = math.Max(mx, l)
		}
		for _, l := range logits {
			sum += math.Exp(l - mx)
		}
		for j, l := range logits {
			if p := math.Exp(l-mx) / sum; math.Abs(p-float64(probs[5*i+j])) > 1e-5 {
				t.Errorf("classifier point %d class %d: state dict gives %g, Go %g", i, j, p, probs[5*i+j])
			}
		}
	}
	// PyTorch itself, where it is installed: Debian's python3-torch (scripts/setup.sh) is in
	// /usr/bin/python3, which a python3 earlier in PATH (pyenv) may not see.
	python := ""
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import torch").Run() == nil {
			python = py
			break
		}
	}
	if python == "" {
		t.Log("PyTorch not installed: the torch.load check is skipped")
		return
	}
	script := fmt.Sprintf(`import torch, torch.nn as nn
d = nn.Sequential(nn.Linear(3, 16), nn.PReLU(), nn.Linear(16, 16), nn.PReLU(), nn.Linear(16, 16), nn.PReLU(), nn.Linear(16, 2))
d.load_state_dict(torch.load(%q))
c = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 5))
c.load_state_dict(torch.load(%q))
x = torch.tensor([[0.3, -1.2, %.17g], [1.5, 0.7, %.17g], [-0.4, 0.1, %.17g]])
print(" ".join("%%.7g" %% v for v in d(x).flatten().tolist()))
print(" ".join("%%.7g" %% v for v in torch.softmax(c(x), -1).flatten().tolist()))
`, dp, cp, d.Schedule.TimeInput[0], d.Schedule.TimeInput[250], d.Schedule.TimeInput[499])
	out, err := exec.Command(python, "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("torch: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for li, want := range [][]float32{eps, probs} {
		var got []float64
		for _, f := range strings.Fields(lines[li]) {
			var v float64
			fmt.Sscan(f, &v)
			got = append(got, v)
		}
		for j := range want {
			if math.Abs(got[j]-float64(want[j])) > 1e-5*(1+math.Abs(got[j])) {
				t.Errorf("torch output %d[%d] = %g, Go %g", li, j, got[j], want[j])
			}
		}
	}
}
