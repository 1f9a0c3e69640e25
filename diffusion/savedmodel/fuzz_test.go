package savedmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
)

// fuzzBase is the base name of the GoMLX files of the fuzzed checkpoints.
const fuzzBase = "checkpoint-n0000000-20260101-000000-initial"

// fuzzTarget returns the model the fuzzed checkpoints are loaded into.
func fuzzTarget() *model.Store {
	s := model.NewStore()
	s.VariableWithValue("/net/w", tensors.FromValue([][]float32{{1, 2, 3}, {4, 5, 6}}))
	s.VariableWithValue("/net/b", tensors.FromValue([]float64{-1, -2, -3}))
	s.VariableWithValue("/net/n", tensors.FromValue(int64(7)))
	return s
}

// fuzzSeeds returns the files (MetaFile, GoMLX index, GoMLX data, ManifestFile) of
// checkpoints of fuzzTarget written by Save, compressed and not, with and without a manifest,
// and of a checkpoint of another model.
func fuzzSeeds(f testing.TB) [][4][]byte {
	read := func(dir, name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	files := func(dir string) [4][]byte {
		base := ""
		entries, err := os.ReadDir(dir)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range entries {
			if b, ok := strings.CutSuffix(e.Name(), checkpoint.JsonNameSuffix); ok && strings.HasPrefix(b, "checkpoint-") {
				base = b
			}
		}
		var man []byte
		if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
			man = read(dir, ManifestFile)
		}
		return [4][]byte{read(dir, MetaFile), read(dir, base+checkpoint.JsonNameSuffix), read(dir, base+checkpoint.BinDataSuffix), man}
	}
	var seeds [][4][]byte
	saved := filepath.Join(f.TempDir(), "saved")
	if err := Save(saved, fuzzTarget(), "/net", meta1); err != nil {
		f.Fatal(err)
	}
	withManifest := files(saved)
	// The manifest names the GoMLX files by their base name, which has the time of the save.
	entries, err := os.ReadDir(saved)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if b, ok := strings.CutSuffix(e.Name(), checkpoint.JsonNameSuffix); ok && strings.HasPrefix(b, "checkpoint-") {
			withManifest[3] = []byte(strings.ReplaceAll(string(withManifest[3]), b, fuzzBase))
		}
	}
	seeds = append(seeds, withManifest, [4][]byte{withManifest[0], withManifest[1], withManifest[2], nil})

	// An uncompressed GoMLX checkpoint (no manifest), as checkpoint.Handler can write them.
	plain := filepath.Join(f.TempDir(), "plain")
	h, err := checkpoint.Build(fuzzTarget()).Dir(plain).WithCompression(checkpoint.BinUncompressed).Done()
	if err != nil {
		f.Fatal(err)
	}
	if err := h.Save(); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plain, MetaFile), withManifest[0], 0o644); err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, files(plain))

	other := model.NewStore()
	other.VariableWithValue("/other/w", tensors.FromValue([]float32{1}))
	otherDir := filepath.Join(f.TempDir(), "other")
	if err := Save(otherDir, other, "/other", meta1); err != nil {
		f.Fatal(err)
	}
	o := files(otherDir)
	seeds = append(seeds, [4][]byte{o[0], o[1], o[2], nil})
	// The index plus a huge variable outside the scope, which the data does not hold.
	var index map[string]any
	if err := json.Unmarshal(withManifest[1], &index); err != nil {
		f.Fatal(err)
	}
	vars := index["Variables"].([]any)
	last := vars[len(vars)-1].(map[string]any)
	vars = append(vars, map[string]any{"ParameterName": "var:/x", "Dimensions": []int{1 << 40}, "DType": "Float32",
		"Pos": last["Pos"].(float64) + last["Length"].(float64), "Length": 1 << 42})
	index["Variables"] = vars
	huge, err := json.Marshal(index)
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, [4][]byte{withManifest[0], huge, withManifest[2], nil})
	return seeds
}

// FuzzLoad writes arbitrary MetaFile, GoMLX index, GoMLX data and (if not empty) ManifestFile
// contents as a checkpoint directory and loads it: the loader must return an error naming
// the checkpoint, or load variables of the model's shapes; it must never panic (not even a
// panic RecoverError turns into an error), hang, or change the model when it fails.
func FuzzLoad(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, meta, index, data, man []byte) {
		defer failAfter(t, 10*time.Second)()
		dir := writeFuzzed(t, [4][]byte{meta, index, data, man})
		check := func(what string, err error) {
			if err == nil {
				return
			}
			var p panicError
			if errors.As(err, &p) {
				t.Fatalf("%s panicked: %v", what, err)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Fatalf("%s: the error does not name the checkpoint: %v", what, err)
			}
		}
		var m testMeta
		check("ReadMeta", ReadMeta(dir, &m))

		target := fuzzTarget()
		before := values(t, target, "/")
		shapesBefore := map[string]string{}
		for v := range target.IterVariables() {
			shapesBefore[v.Path()] = v.Shape().String()
		}
		err := LoadVariables(dir, target, "/net")
		check("LoadVariables", err)
		if err != nil {
			if !sameValues(values(t, target, "/"), before) {
				t.Fatalf("the failed load changed the model: %v", err)
			}
			return
		}
		for v := range target.IterVariables() {
			if got := v.Shape().String(); got != shapesBefore[v.Path()] {
				t.Fatalf("variable %s loaded with shape %s, the model has %s", v.Path(), got, shapesBefore[v.Path()])
			}
		}
	})
}

// writeFuzzed writes a checkpoint directory with the given MetaFile, GoMLX index, GoMLX data
// and (if not empty) ManifestFile contents.
func writeFuzzed(t *testing.T, files [4][]byte) string {
	dir := t.TempDir()
	for i, name := range []string{MetaFile, fuzzBase + checkpoint.JsonNameSuffix, fuzzBase + checkpoint.BinDataSuffix, ManifestFile} {
		if i == 3 && len(files[i]) == 0 {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), files[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The fuzz seeds reach both outcomes: the checkpoints of the model load (values included),
// the others fail for the expected reason.
func TestFuzzSeeds(t *testing.T) {
	seeds := fuzzSeeds(t)
	want := values(t, fuzzTarget(), "/net")
	for i, s := range seeds[:3] {
		target := model.NewStore()
		target.VariableWithValue("/net/w", tensors.FromValue([][]float32{{0, 0, 0}, {0, 0, 0}}))
		target.VariableWithValue("/net/b", tensors.FromValue([]float64{0, 0, 0}))
		target.VariableWithValue("/net/n", tensors.FromValue(int64(0)))
		if err := LoadVariables(writeFuzzed(t, s), target, "/net"); err != nil {
			t.Errorf("seed %d: %v", i, err)
		} else if got := values(t, target, "/net"); !sameValues(got, want) {
			t.Errorf("seed %d: loaded %v, want %v", i, got, want)
		}
	}
	errorMentions(t, LoadVariables(writeFuzzed(t, seeds[3]), fuzzTarget(), "/net"), "another model")
	errorMentions(t, LoadVariables(writeFuzzed(t, seeds[4]), fuzzTarget(), "/net"), fuzzBase+".bin", "truncated")
}

// failAfter makes a load that runs longer than d crash the fuzz worker with a stack trace (so
// the fuzzer records the input), and returns the function that disarms it.
func failAfter(t *testing.T, d time.Duration) func() {
	timer := time.AfterFunc(d, func() {
		panic(fmt.Sprintf("%s: loading took longer than %v", t.Name(), d))
	})
	return func() { timer.Stop() }
}
