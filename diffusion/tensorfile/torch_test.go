package tensorfile

import (
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// systemPython is Debian's Python, which has python3-torch and numpy; a
// pyenv python earlier on PATH usually has neither.
const systemPython = "/usr/bin/python3"

// requireTorch skips the test unless systemPython can import torch and numpy.
func requireTorch(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping PyTorch interop in -short mode")
	}
	if err := exec.Command(systemPython, "-c", "import torch, numpy").Run(); err != nil {
		t.Skipf("%s cannot import torch and numpy: %v", systemPython, err)
	}
}

// runPython runs a Python script with args and decodes its JSON output.
func runPython(t *testing.T, script string, out any, args ...string) {
	t.Helper()
	cmd := exec.Command(systemPython, append([]string{"-c", script}, args...)...)
	b, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python failed: %v\n%s", err, stderr)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("bad python output %q: %v", b, err)
	}
}

type pyTensor struct {
	DType  string        `json:"dtype"`
	Shape  []int         `json:"shape"`
	Values []floatString `json:"values"`
	Ints   []int64       `json:"ints"`
}

// floatString is a float printed by Python's repr (which may be inf or nan).
type floatString float64

// UnmarshalJSON parses a JSON string holding a Python float repr.
func (f *floatString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := strconv.ParseFloat(s, 64)
	*f = floatString(v)
	return err
}

const describeTensors = `
import json, sys, torch
def describe(t):
    d = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
    if t.dtype == torch.int64:
        d["ints"] = t.flatten().tolist()
    else:
        d["values"] = [repr(v) for v in t.double().flatten().tolist()]
    return d
`

func TestTorchLoadsWrittenFiles(t *testing.T) {
	requireTorch(t)
	dir := t.TempDir()
	single := filepath.Join(dir, "single.pt")
	data := sampleFloat32(12)
	data[3] = float32(math.Inf(-1))
	if err := WritePTTensor(single, data, 3, 4); err != nil {
		t.Fatal(err)
	}
	var got pyTensor
	runPython(t, describeTensors+`
t = torch.load(sys.argv[1])
assert isinstance(t, torch.Tensor) and t.is_contiguous() and not t.requires_grad
print(json.dumps(describe(t)))
`, &got, single)
	if got.DType != "float32" || !reflect.DeepEqual(got.Shape, []int{3, 4}) || len(got.Values) != 12 {
		t.Fatalf("torch.load gave %+v", got)
	}
	for i, v := range got.Values {
		if float32(v) != data[i] {
			t.Errorf("element %d: torch %v, wrote %v", i, v, data[i])
		}
	}

	dict := filepath.Join(dir, "states.pt")
	points, _ := NewFloat32(sampleFloat32(5000*2), 5000, 2)
	labelData := make([]int64, 5000)
	for i := range labelData {
		labelData[i] = int64(i%5) - 1<<40
	}
	labels, _ := NewInt64(labelData)
	if err := WritePTDict(dict, NamedTensor{"data", points}, NamedTensor{"labels", labels}); err != nil {
		t.Fatal(err)
	}
	var gotDict map[string]pyTensor
	var order []string
	runPython(t, describeTensors+`
d = torch.load(sys.argv[1])
assert type(d) is dict, type(d)
print(json.dumps({k: describe(v) for k, v in d.items()}))
`, &gotDict, dict)
	runPython(t, `import json, sys, torch; print(json.dumps(list(torch.load(sys.argv[1]).keys())))`, &order, dict)
	if !reflect.DeepEqual(order, []string{"data", "labels"}) {
		t.Errorf("torch sees keys %v in that order", order)
	}
	d, l := gotDict["data"], gotDict["labels"]
	if d.DType != "float32" || !reflect.DeepEqual(d.Shape, []int{5000, 2}) || l.DType != "int64" || !reflect.DeepEqual(l.Shape, []int{5000}) {
		t.Fatalf("torch sees data %s %v, labels %s %v", d.DType, d.Shape, l.DType, l.Shape)
	}
	for i, v := range d.Values {
		if float32(v) != points.Float32s[i] {
			t.Fatalf("data element %d: torch %v, wrote %v", i, v, points.Float32s[i])
		}
	}
	if !reflect.DeepEqual(l.Ints, labelData) {
		t.Errorf("labels differ")
	}

	// torch.load(weights_only=True) accepts only allow-listed globals; check
	// the files pass it when this torch has the option.
	var ok bool
	runPython(t, `import json, sys, torch, inspect
if "weights_only" in inspect.signature(torch.load).parameters:
    torch.load(sys.argv[1], weights_only=True); torch.load(sys.argv[2], weights_only=True)
print("true")`, &ok, single, dict)
}

func TestNumpyInterop(t *testing.T) {
	requireTorch(t)
	dir := t.TempDir()
	ours := filepath.Join(dir, "ours.npy")
	data := sampleFloat32(6)
	if err := WriteNPY(ours, data, 2, 3); err != nil {
		t.Fatal(err)
	}
	var got pyTensor
	runPython(t, `import json, sys, numpy as np
a = np.load(sys.argv[1])
assert a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
print(json.dumps({"dtype": str(a.dtype), "shape": list(a.shape), "values": [repr(v) for v in a.astype(float).flatten().tolist()]}))`, &got, ours)
	if got.DType != "float32" || !reflect.DeepEqual(got.Shape, []int{2, 3}) {
		t.Fatalf("np.load gave %+v", got)
	}
	for i, v := range got.Values {
		if float32(v) != data[i] {
			t.Errorf("element %d: numpy %v, wrote %v", i, v, data[i])
		}
	}

	// Files written by numpy, including float64, a scalar and a
	// Fortran-ordered array.
	var done bool
	runPython(t, `import json, sys, numpy as np
d = sys.argv[1]
np.save(d + "/f4.npy", np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8)
np.save(d + "/f8.npy", np.linspace(-1, 1, 7))
np.save(d + "/scalar.npy", np.float32(2.5))
np.save(d + "/fortran.npy", np.asfortranarray(np.ones((3, 2), dtype=np.float32)))
np.save(d + "/i4.npy", np.arange(3, dtype=np.int32))
print("true")`, &done, dir)
	f4, shape, err := ReadNPY(filepath.Join(dir, "f4.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(shape, []int{2, 3, 4}) || f4[23] != 23.0/8 || f4[5] != 5.0/8 {
		t.Errorf("numpy float32 file read as %v %v", shape, f4)
	}
	f8, shape, err := ReadNPY(filepath.Join(dir, "f8.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(shape, []int{7}) || f8[0] != -1 || f8[6] != 1 || math.Abs(float64(f8[1])+2.0/3) > 1e-7 {
		t.Errorf("numpy float64 file read as %v %v", shape, f8)
	}
	sc, shape, err := ReadNPY(filepath.Join(dir, "scalar.npy"))
	if err != nil || len(shape) != 0 || !reflect.DeepEqual(sc, []float32{2.5}) {
		t.Errorf("numpy scalar read as %v %v %v", sc, shape, err)
	}
	if _, _, err := ReadNPY(filepath.Join(dir, "fortran.npy")); err == nil || !strings.Contains(err.Error(), "Fortran") {
		t.Errorf("Fortran-ordered file: err = %v", err)
	}
	if _, _, err := ReadNPY(filepath.Join(dir, "i4.npy")); err == nil || !strings.Contains(err.Error(), `"<i4"`) {
		t.Errorf("int32 file: err = %v", err)
	}
}

func TestReadFilesWrittenByTorch(t *testing.T) {
	requireTorch(t)
	dir := t.TempDir()
	var done bool
	runPython(t, `import sys, torch
from collections import OrderedDict
d = sys.argv[1]
x = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 4
torch.save(x, d + "/x.pt")
torch.save({"w": torch.nn.Parameter(x.clone()), "n": torch.tensor([1, -2, 3]), "f64": torch.tensor([0.5], dtype=torch.float64)}, d + "/dict.pt")
torch.save(OrderedDict(a=x[1:]), d + "/view.pt")
torch.save({"t": x.t()}, d + "/transposed.pt")
torch.save({"h": x.half()}, d + "/half.pt")
torch.save([x], d + "/list.pt")
print("true")`, &done, dir)
	x, err := ReadPTTensor(filepath.Join(dir, "x.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x.Shape, []int{3, 4}) || x.Float32s[11] != 11.0/4 || x.Float32s[1] != 0.25 {
		t.Errorf("torch tensor read as %+v", x)
	}
	d, err := ReadPTDict(filepath.Join(dir, "dict.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d["n"].Int64s, []int64{1, -2, 3}) || !reflect.DeepEqual(d["f64"].Float64s, []float64{0.5}) || !reflect.DeepEqual(d["w"].Float32s, x.Float32s) {
		t.Errorf("torch dict read as %+v %+v %+v", d["n"], d["f64"], d["w"])
	}
	v, err := ReadPTDict(filepath.Join(dir, "view.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v["a"].Shape, []int{2, 4}) || !reflect.DeepEqual(v["a"].Float32s, x.Float32s[4:]) {
		t.Errorf("view x[1:] read as %+v", v["a"])
	}
	for name, want := range map[string]string{"transposed.pt": "only contiguous", "half.pt": "HalfStorage", "list.pt": "a list"} {
		if _, err := ReadPTDict(filepath.Join(dir, name)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", name, err, want)
		}
	}
}
