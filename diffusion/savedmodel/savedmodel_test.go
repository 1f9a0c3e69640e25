package savedmodel

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"

	"github.com/godiffusion/notebooks/diffusion/backend"
)

// testMeta stands for a caller's MetaFile content.
type testMeta struct {
	Kind   string  `json:"kind"`
	Format int     `json:"format"`
	Hidden int     `json:"hidden"`
	Score  float64 `json:"score"`
}

var meta1 = testMeta{Kind: "test-net", Format: 1, Hidden: 4, Score: 0.5}

// newStore returns a store with a small network under /net (float32 weights and bias, a
// float64 and an int64 statistic) whose values depend on seed, plus a variable outside /net.
func newStore(seed float32) *model.Store {
	s := model.NewStore()
	w := make([][]float32, 3)
	for i := range w {
		w[i] = make([]float32, 4)
		for j := range w[i] {
			w[i][j] = seed + float32(i) - 0.25*float32(j)
		}
	}
	s.VariableWithValue("/net/dense/weights", tensors.FromValue(w))
	s.VariableWithValue("/net/dense/bias", tensors.FromValue([]float32{seed, -seed, 2 * seed, 0.125}))
	s.VariableWithValue("/net/bn/mean", tensors.FromValue([]float64{float64(seed) / 3, 1e-300}))
	s.VariableWithValue("/net/bn/count", tensors.FromValue(int64(seed*1000)))
	s.VariableWithValue("/optimizer/m", tensors.FromValue([]float32{7, 7}))
	return s
}

// values returns the flat values (as float64) of the store's variables under scope.
func values(t *testing.T, s *model.Store, scope string) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for v := range s.Scope(scope).IterVariables() {
		value, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		var flat []float64
		if err := value.ConstFlatData(func(f any) {
			switch f := f.(type) {
			case []float32:
				for _, x := range f {
					flat = append(flat, float64(x))
				}
			case []float64:
				flat = append(flat, f...)
			case []int64:
				for _, x := range f {
					flat = append(flat, float64(x))
				}
			default:
				t.Fatalf("unexpected type %T", f)
			}
		}); err != nil {
			t.Fatal(err)
		}
		out[v.Path()] = flat
	}
	return out
}

func sameValues(a, b map[string][]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if !slices.Equal(va, b[k]) {
			return false
		}
	}
	return true
}

func mustSave(t *testing.T, dir string, s *model.Store, meta any) {
	t.Helper()
	if err := Save(dir, s, "/net", meta); err != nil {
		t.Fatal(err)
	}
}

// load reads the checkpoint in dir the way the callers do: ReadMeta, then LoadVariables into
// target's /net.
func load(dir string, target *model.Store) (testMeta, error) {
	var m testMeta
	if err := ReadMeta(dir, &m); err != nil {
		return m, err
	}
	return m, LoadVariables(dir, target, "/net")
}

// checkpointFiles returns the names of the files of the checkpoint in dir, sorted.
func checkpointFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// gomlxBase returns the base name of the GoMLX checkpoint files in dir (there must be one).
func gomlxBase(t *testing.T, dir string) string {
	t.Helper()
	var bases []string
	for _, n := range checkpointFiles(t, dir) {
		if b, ok := strings.CutSuffix(n, checkpoint.JsonNameSuffix); ok && strings.HasPrefix(b, "checkpoint-") {
			bases = append(bases, b)
		}
	}
	if len(bases) != 1 {
		t.Fatalf("%s holds GoMLX checkpoints %v, want one", dir, bases)
	}
	return bases[0]
}

// copyDir copies the (flat) checkpoint directory src into a new directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range checkpointFiles(t, src) {
		raw, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, n), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// noLeftovers fails if the parent of dir holds anything but dir (temporary directories).
func noLeftovers(t *testing.T, dir string) {
	t.Helper()
	names := checkpointFiles(t, filepath.Dir(dir))
	if len(names) > 1 || (len(names) == 1 && names[0] != filepath.Base(dir)) {
		t.Errorf("the parent of %s holds %v", dir, names)
	}
}

// errorMentions fails unless err is a non-panic error whose message has every one of parts.
func errorMentions(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	var p panicError
	if errors.As(err, &p) {
		t.Fatalf("error from a recovered panic: %v", err)
	}
	for _, part := range parts {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not mention %q", err, part)
		}
	}
}

// A saved checkpoint loads back bit for bit into a fresh store, with its metadata; only the
// variables under the scope are saved, and the directory holds exactly the documented files.
func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	src := newStore(1.5)
	mustSave(t, dir, src, meta1)

	target := newStore(-3)
	m, err := load(dir, target)
	if err != nil {
		t.Fatal(err)
	}
	if m != meta1 {
		t.Errorf("meta %+v, want %+v", m, meta1)
	}
	if got, want := values(t, target, "/net"), values(t, src, "/net"); !sameValues(got, want) {
		t.Errorf("loaded %v, want %v", got, want)
	}
	if got := values(t, target, "/optimizer")["/optimizer/m"]; !slices.Equal(got, []float64{7, 7}) {
		t.Errorf("variable outside the scope changed to %v", got)
	}
	base := gomlxBase(t, dir)
	wantFiles := []string{base + ".bin", base + ".json", ManifestFile, MetaFile}
	slices.Sort(wantFiles)
	if got := checkpointFiles(t, dir); !slices.Equal(got, wantFiles) {
		t.Errorf("checkpoint files %v, want %v", got, wantFiles)
	}
	index, err := os.ReadFile(filepath.Join(dir, base+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(index), "optimizer") {
		t.Errorf("a variable outside the scope was saved: %s", index)
	}
	var man manifest
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	if _, ok := man.Files[base+".bin"]; man.Format != FormatVersion || len(man.Files) != 2 || !ok {
		t.Errorf("manifest %+v, want format %d and the 2 GoMLX files", man, FormatVersion)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("checkpoint directory mode %v (%v), want 0755", fi.Mode(), err)
	}
	noLeftovers(t, dir)
	if !Exists(dir) || Exists(filepath.Join(dir, "nothing")) {
		t.Error("Exists is wrong")
	}
}

// The root scope "/" saves and loads every variable.
func TestRootScope(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	src := newStore(2)
	if err := Save(dir, src, "/", meta1); err != nil {
		t.Fatal(err)
	}
	target := newStore(5)
	if err := LoadVariables(dir, target, "/"); err != nil {
		t.Fatal(err)
	}
	if got, want := values(t, target, "/"), values(t, src, "/"); !sameValues(got, want) {
		t.Errorf("loaded %v, want %v", got, want)
	}
}

// Weights changed by a graph on the backend are the ones saved, and loaded weights are used by
// a graph in a fresh store.
func TestRoundTripThroughBackend(t *testing.T) {
	be, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	forward := func(s *model.Store) []float32 {
		t.Helper()
		exec, err := model.NewExec(be, s, func(scope *model.Scope, x *Node) *Node {
			net := scope.In("net").In("dense")
			w := net.GetVariable("weights").ValueGraph(x)
			b := net.GetVariable("bias").ValueGraph(x)
			return Add(MatMul(x, w), Reshape(b, 1, 4))
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Exec([][]float32{{1, 2, 3}})
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out[0])
	}
	src := newStore(0.5)
	step, err := model.NewExec(be, src, func(scope *model.Scope, x *Node) {
		w := scope.In("net").In("dense").GetVariable("weights")
		w.SetValueGraph(Add(w.ValueGraph(x), x))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := step.Exec(float32(10)); err != nil {
		t.Fatal(err)
	}
	want := forward(src)
	dir := filepath.Join(t.TempDir(), "ckpt")
	mustSave(t, dir, src, meta1)
	target := newStore(0.5)
	if got := forward(target); slices.Equal(got, want) {
		t.Fatalf("the update did not change the output %v", got)
	}
	if _, err := load(dir, target); err != nil {
		t.Fatal(err)
	}
	if got := forward(target); !slices.Equal(got, want) {
		t.Errorf("after loading: %v, want %v", got, want)
	}
}

// Saving again replaces the checkpoint (one GoMLX checkpoint, the new values), including
// files added to the directory after the first save.
func TestResave(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	mustSave(t, dir, newStore(1), meta1)
	if err := os.WriteFile(filepath.Join(dir, "history.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := newStore(2)
	meta2 := meta1
	meta2.Hidden = 8
	mustSave(t, dir, second, meta2)
	target := newStore(0)
	m, err := load(dir, target)
	if err != nil {
		t.Fatal(err)
	}
	if m != meta2 || !sameValues(values(t, target, "/net"), values(t, second, "/net")) {
		t.Errorf("loaded %+v %v, want the second save", m, values(t, target, "/net"))
	}
	gomlxBase(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "history.json")); err == nil {
		t.Error("a file of the old checkpoint directory survived the new save")
	}
	noLeftovers(t, dir)
}

// fileKinds lists the files of the checkpoint in dir, as (label, name).
func fileKinds(t *testing.T, dir string) [][2]string {
	base := gomlxBase(t, dir)
	return [][2]string{
		{"meta", MetaFile},
		{"manifest", ManifestFile},
		{"index", base + checkpoint.JsonNameSuffix},
		{"data", base + checkpoint.BinDataSuffix},
	}
}

// offsets returns the offsets into a file of size n to cut or corrupt it at: the ends, the
// middle and random ones.
func offsets(rng *rand.Rand, n int) []int {
	o := []int{0, 1, n / 2, n - 1}
	for range 6 {
		o = append(o, rng.IntN(n))
	}
	return o
}

// Every file of a checkpoint, cut at any offset, gives an error naming the file, and leaves
// the target unchanged: with a manifest, and without (a checkpoint written before manifests).
func TestTruncated(t *testing.T) {
	saved := filepath.Join(t.TempDir(), "ckpt")
	mustSave(t, saved, newStore(1), meta1)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, legacy := range []bool{false, true} {
		for _, f := range fileKinds(t, saved) {
			if legacy && f[1] == ManifestFile {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(saved, f[1]))
			if err != nil {
				t.Fatal(err)
			}
			for _, cut := range offsets(rng, len(raw)) {
				dir := copyDir(t, saved)
				if legacy {
					if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(dir, f[1]), raw[:cut], 0o644); err != nil {
					t.Fatal(err)
				}
				target := newStore(-1)
				before := values(t, target, "/")
				_, err := load(dir, target)
				if (legacy || f[0] == "manifest" || f[0] == "meta") && f[0] != "data" && strings.TrimSpace(string(raw[cut:])) == "" {
					// Only the final newline of a JSON file no manifest covers was cut: nothing
					// is lost.
					if err != nil {
						t.Errorf("legacy=%v: %s without its final newline: %v", legacy, f[0], err)
					}
					continue
				}
				if err == nil {
					t.Errorf("legacy=%v: %s cut to %d of %d bytes: no error", legacy, f[0], cut, len(raw))
					continue
				}
				errorMentions(t, err, f[1], "truncated")
				if !sameValues(values(t, target, "/"), before) {
					t.Errorf("legacy=%v: %s cut to %d: the failed load changed the target", legacy, f[0], cut)
				}
			}
		}
	}
}

// A changed byte anywhere in any file of a checkpoint gives an error naming the file; in
// MetaFile (not in the manifest, so that it can be edited), it gives an error or a visible
// change of the metadata (which callers check against the weights' shapes).
func TestCorrupted(t *testing.T) {
	saved := filepath.Join(t.TempDir(), "ckpt")
	mustSave(t, saved, newStore(1), meta1)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, f := range fileKinds(t, saved) {
		raw, err := os.ReadFile(filepath.Join(saved, f[1]))
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range offsets(rng, len(raw)) {
			for _, flip := range []byte{0xff, 0x01} {
				dir := copyDir(t, saved)
				bad := slices.Clone(raw)
				bad[at] ^= flip
				if err := os.WriteFile(filepath.Join(dir, f[1]), bad, 0o644); err != nil {
					t.Fatal(err)
				}
				target := newStore(-1)
				before := values(t, target, "/")
				m, err := load(dir, target)
				if err == nil && f[1] == MetaFile && m != meta1 {
					continue
				}
				if err == nil {
					t.Errorf("%s with byte %d ^ %#x: no error", f[0], at, flip)
					continue
				}
				errorMentions(t, err, f[1])
				if !sameValues(values(t, target, "/"), before) {
					t.Errorf("%s with byte %d changed: the failed load changed the target", f[0], at)
				}
			}
		}
	}
}

// Without a manifest, corrupting the compressed weights is still caught (gzip checksum).
func TestCorruptedLegacyData(t *testing.T) {
	saved := filepath.Join(t.TempDir(), "ckpt")
	mustSave(t, saved, newStore(1), meta1)
	if err := os.Remove(filepath.Join(saved, ManifestFile)); err != nil {
		t.Fatal(err)
	}
	name := gomlxBase(t, saved) + checkpoint.BinDataSuffix
	raw, err := os.ReadFile(filepath.Join(saved, name))
	if err != nil {
		t.Fatal(err)
	}
	// The GoMLX header, then gzip's: magic, method and flags are checked, but not the
	// modification time and OS bytes (offsets 4..9 of the gzip header).
	const start = len(gomlxGzipHeader) + 10
	rng := rand.New(rand.NewPCG(5, 6))
	ats := []int{0, len(gomlxGzipHeader), len(gomlxGzipHeader) + 1, len(raw) - 1}
	for range 8 {
		ats = append(ats, start+rng.IntN(len(raw)-start))
	}
	for _, at := range ats {
		dir := copyDir(t, saved)
		bad := slices.Clone(raw)
		bad[at] ^= 0x55
		if err := os.WriteFile(filepath.Join(dir, name), bad, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := load(dir, newStore(0))
		errorMentions(t, err, name)
	}
}

// A missing file is named in the error; without the manifest the checkpoint still loads (it
// is what checkpoints written before manifests look like).
func TestMissingFile(t *testing.T) {
	saved := filepath.Join(t.TempDir(), "ckpt")
	src := newStore(1)
	mustSave(t, saved, src, meta1)
	for _, legacy := range []bool{false, true} {
		for _, f := range fileKinds(t, saved) {
			if f[1] == ManifestFile {
				continue
			}
			dir := copyDir(t, saved)
			if legacy {
				if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Remove(filepath.Join(dir, f[1])); err != nil {
				t.Fatal(err)
			}
			_, err := load(dir, newStore(0))
			want := f[1]
			if legacy && f[0] == "index" {
				want = "checkpoint-*.json"
			}
			errorMentions(t, err, want, "missing")
		}
	}
	dir := copyDir(t, saved)
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil {
		t.Fatal(err)
	}
	target := newStore(0)
	if _, err := load(dir, target); err != nil {
		t.Fatalf("without %s: %v", ManifestFile, err)
	}
	if !sameValues(values(t, target, "/net"), values(t, src, "/net")) {
		t.Error("without the manifest, wrong values loaded")
	}
	nowhere := filepath.Join(t.TempDir(), "nowhere")
	_, err := load(nowhere, newStore(0))
	errorMentions(t, err, nowhere)
	errorMentions(t, LoadVariables(nowhere, newStore(0), "/net"), nowhere)
}

// A checkpoint as the code before manifests wrote it (GoMLX files plus MetaFile) loads.
func TestLegacyCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "old")
	src := newStore(4)
	export := model.NewStore()
	for v := range src.Scope("/net").IterVariables() {
		if _, err := v.CloneToStore(export); err != nil {
			t.Fatal(err)
		}
	}
	h, err := checkpoint.Build(export).Dir(dir).Keep(1).Done()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(meta1)
	if err := os.WriteFile(filepath.Join(dir, MetaFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	target := newStore(0)
	m, err := load(dir, target)
	if err != nil {
		t.Fatal(err)
	}
	if m != meta1 || !sameValues(values(t, target, "/net"), values(t, src, "/net")) {
		t.Errorf("loaded %+v %v", m, values(t, target, "/net"))
	}
	// Saving over it writes the current format.
	mustSave(t, dir, newStore(5), meta1)
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err != nil {
		t.Error(err)
	}
}

// A checkpoint of another model (other variables) is refused with the differences listed,
// and target is unchanged.
func TestOtherModel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	other := model.NewStore()
	other.VariableWithValue("/classifier/logits/weights", tensors.FromValue([][]float32{{1, 2}}))
	if err := Save(dir, other, "/classifier", testMeta{Kind: "test-classifier", Format: 1}); err != nil {
		t.Fatal(err)
	}
	var m testMeta
	if err := ReadMeta(dir, &m); err != nil || m.Kind != "test-classifier" {
		t.Fatalf("ReadMeta: %+v %v", m, err)
	}
	target := newStore(1)
	before := values(t, target, "/")
	err := LoadVariables(dir, target, "/net")
	errorMentions(t, err, dir, gomlxBase(t, dir)+".json",
		"it has no variable under /net but has /classifier/logits/weights: a checkpoint of another model?",
		"missing variable /net/dense/weights (Float32)[3, 4]", "missing variable /net/bn/count (Int64)")
	if !sameValues(values(t, target, "/"), before) {
		t.Error("the failed load changed the target")
	}
	// The same checkpoint loads into its own scope.
	if err := LoadVariables(dir, other, "/classifier"); err != nil {
		t.Error(err)
	}
}

// Variables with another shape or dtype than the model's, or missing or extra ones, are
// named with both shapes; target is unchanged.
func TestShapeAndDTypeMismatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	mustSave(t, dir, newStore(1), meta1)
	cases := []struct {
		name   string
		change func(s *model.Store)
		want   []string
	}{
		{"shape", func(s *model.Store) {
			_ = s.DeleteVariable("/net/dense/weights")
			s.VariableWithValue("/net/dense/weights", tensors.FromShape(tensors.FromValue([][]float32{{1, 2, 3}}).Shape()))
		}, []string{"variable /net/dense/weights has shape (Float32)[3, 4] in the checkpoint, the model needs (Float32)[1, 3]"}},
		{"dtype", func(s *model.Store) {
			_ = s.DeleteVariable("/net/dense/bias")
			s.VariableWithValue("/net/dense/bias", tensors.FromValue([]float64{1, 2, 3, 4}))
		}, []string{"variable /net/dense/bias has shape (Float32)[4] in the checkpoint, the model needs (Float64)[4]"}},
		{"scalar", func(s *model.Store) {
			_ = s.DeleteVariable("/net/bn/count")
			s.VariableWithValue("/net/bn/count", tensors.FromValue([]int64{1}))
		}, []string{"variable /net/bn/count has shape (Int64) in the checkpoint, the model needs (Int64)[1]"}},
		{"missing", func(s *model.Store) {
			s.VariableWithValue("/net/extra/scale", tensors.FromValue([]float32{1}))
		}, []string{"missing variable /net/extra/scale (Float32)[1]"}},
		{"unexpected", func(s *model.Store) {
			_ = s.DeleteVariable("/net/bn/mean")
		}, []string{"unexpected variable /net/bn/mean (Float64)[2]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := newStore(-1)
			c.change(target)
			before := values(t, target, "/")
			err := LoadVariables(dir, target, "/net")
			errorMentions(t, err, append(c.want, dir, gomlxBase(t, dir)+".json", "does not match the model")...)
			if strings.Contains(err.Error(), "another model") {
				t.Errorf("error %q calls a near match another model", err)
			}
			if !sameValues(values(t, target, "/"), before) {
				t.Error("the failed load changed the target")
			}
		})
	}
}

// A checkpoint of a newer format version (or an invalid one) is refused, naming the manifest
// and the versions.
func TestFormatVersion(t *testing.T) {
	saved := filepath.Join(t.TempDir(), "ckpt")
	mustSave(t, saved, newStore(1), meta1)
	for _, c := range []struct {
		format int
		want   []string
	}{
		{FormatVersion + 1, []string{ManifestFile, "format 2", "reads format 1", "newer"}},
		{0, []string{ManifestFile, "invalid", "format 0"}},
	} {
		dir := copyDir(t, saved)
		path := filepath.Join(dir, ManifestFile)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		m["format"] = c.format
		raw, _ = json.Marshal(m)
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		var meta testMeta
		errorMentions(t, ReadMeta(dir, &meta), c.want...)
		errorMentions(t, LoadVariables(dir, newStore(0), "/net"), c.want...)
	}
}

// A second GoMLX checkpoint in the directory (not from Save) is refused rather than one of
// the two being picked.
func TestExtraGoMLXCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	mustSave(t, dir, newStore(1), meta1)
	base := gomlxBase(t, dir)
	for _, ext := range []string{".json", ".bin"} {
		raw, err := os.ReadFile(filepath.Join(dir, base+ext))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "checkpoint-n9999999-20990101-000000-initial"+ext), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	errorMentions(t, LoadVariables(dir, newStore(0), "/net"), "checkpoint-n9999999-20990101-000000-initial.json", ManifestFile)
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil {
		t.Fatal(err)
	}
	errorMentions(t, LoadVariables(dir, newStore(0), "/net"), "2 GoMLX checkpoints", base)
}

// MetaFile can be edited by hand: the edit is what loads, and an edit that no longer matches
// the weights fails at LoadVariables (as callers rebuild the model from the metadata).
func TestEditedMeta(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	mustSave(t, dir, newStore(1), meta1)
	path := filepath.Join(dir, MetaFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(raw), `"hidden": 4`, `"hidden": 5`, 1)
	if edited == string(raw) {
		t.Fatalf("unexpected %s: %s", MetaFile, raw)
	}
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	var m testMeta
	if err := ReadMeta(dir, &m); err != nil || m.Hidden != 5 {
		t.Fatalf("ReadMeta after editing: %+v %v", m, err)
	}
	// A model rebuilt from the edited metadata has a bias of 5 values, not 4.
	target := newStore(0)
	_ = target.DeleteVariable("/net/dense/bias")
	target.VariableWithValue("/net/dense/bias", tensors.FromValue(make([]float32, m.Hidden)))
	errorMentions(t, LoadVariables(dir, target, "/net"), "/net/dense/bias", "(Float32)[4]", "(Float32)[5]")
}

// Invalid or extra content in MetaFile is an error naming it.
func TestInvalidMeta(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	mustSave(t, dir, newStore(1), meta1)
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"", "{", `{"kind": 3}`, `{"kind": "a"} {"kind": "b"}`, "null x"} {
		if err := os.WriteFile(filepath.Join(dir, MetaFile), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		var m testMeta
		errorMentions(t, ReadMeta(dir, &m), MetaFile, "invalid")
	}
}

// checkIntact checks that dir still holds the checkpoint of src (meta1) and nothing was left
// next to it.
func checkIntact(t *testing.T, dir string, src *model.Store) {
	t.Helper()
	target := newStore(0)
	m, err := load(dir, target)
	if err != nil {
		t.Fatalf("the previous checkpoint does not load: %v", err)
	}
	if m != meta1 || !sameValues(values(t, target, "/net"), values(t, src, "/net")) {
		t.Errorf("the previous checkpoint changed: %+v %v", m, values(t, target, "/net"))
	}
	noLeftovers(t, dir)
}

// A save that fails, before or after writing its files, leaves the previous checkpoint intact
// and loadable, and no temporary files.
func TestFailedSaveKeepsPrevious(t *testing.T) {
	newer := newStore(9)
	cases := []struct {
		name  string
		save  func(dir string) error
		want  []string
		setup func(t *testing.T)
	}{
		{"NaN in meta", func(dir string) error {
			m := meta1
			m.Score = math.NaN()
			return Save(dir, newer, "/net", m)
		}, []string{MetaFile, "NaN"}, nil},
		{"NaN weight", func(dir string) error {
			s := newStore(9)
			s.GetVariable("/net/dense/bias").MustSetValue(tensors.FromValue([]float32{1, float32(math.NaN()), 0, 0}))
			return Save(dir, s, "/net", meta1)
		}, []string{"/net/dense/bias", "NaN", "flat index 1", "nothing was written"}, nil},
		{"Inf weight", func(dir string) error {
			s := newStore(9)
			s.GetVariable("/net/bn/mean").MustSetValue(tensors.FromValue([]float64{math.Inf(-1), 0}))
			return Save(dir, s, "/net", meta1)
		}, []string{"/net/bn/mean", "-Inf"}, nil},
		{"error before replacing", func(dir string) error {
			return Save(dir, newer, "/net", meta1)
		}, []string{"injected"}, func(t *testing.T) {
			beforeReplace = func(tmp string) error {
				if _, err := os.Stat(filepath.Join(tmp, ManifestFile)); err != nil {
					t.Errorf("the new checkpoint is incomplete: %v", err)
				}
				return errors.New("injected")
			}
			t.Cleanup(func() { beforeReplace = nil })
		}},
		{"variable without value", func(dir string) error {
			s := newStore(9)
			v := s.GetVariable("/net/dense/bias")
			if err := v.Reset(); err != nil {
				return err
			}
			return Save(dir, s, "/net", meta1)
		}, []string{"/net/dense/bias"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ckpt")
			src := newStore(1)
			mustSave(t, dir, src, meta1)
			if c.setup != nil {
				c.setup(t)
			}
			err := c.save(dir)
			errorMentions(t, err, append(c.want, dir)...)
			checkIntact(t, dir, src)
		})
	}
}

// A parent directory that cannot be written fails the save cleanly.
func TestSaveParentNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into read-only directories")
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "ckpt")
	src := newStore(1)
	mustSave(t, dir, src, meta1)
	if err := os.Chmod(parent, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(parent, 0o755) })
	errorMentions(t, Save(dir, newStore(2), "/net", meta1), dir)
	checkIntact(t, dir, src)
}

// Save refuses to replace what is not a checkpoint: a file, or a non-empty directory with no
// checkpoint file; an empty directory or a damaged checkpoint is fine. A parent that is a file
// fails cleanly.
func TestSaveRefusesNonCheckpoint(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	errorMentions(t, Save(file, newStore(1), "/net", meta1), file, "not a directory")
	errorMentions(t, Save(filepath.Join(file, "ckpt"), newStore(1), "/net", meta1), file)
	if raw, err := os.ReadFile(file); err != nil || string(raw) != "keep me" {
		t.Errorf("the file changed: %q %v", raw, err)
	}
	other := filepath.Join(root, "outputs")
	if err := os.MkdirAll(filepath.Join(other, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	errorMentions(t, Save(other, newStore(1), "/net", meta1), other, "not a checkpoint")
	if _, err := os.Stat(filepath.Join(other, "sub")); err != nil {
		t.Errorf("the directory was replaced: %v", err)
	}
	// A damaged checkpoint (here without MetaFile, so Exists is false) is replaced.
	damaged := filepath.Join(root, "damaged")
	mustSave(t, damaged, newStore(1), meta1)
	if err := os.Remove(filepath.Join(damaged, MetaFile)); err != nil {
		t.Fatal(err)
	}
	mustSave(t, damaged, newStore(2), meta1)
	if _, err := load(damaged, newStore(0)); err != nil {
		t.Error(err)
	}
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	mustSave(t, empty, newStore(1), meta1)
	if _, err := load(empty, newStore(0)); err != nil {
		t.Error(err)
	}
}

// PanicError keeps the panic's error for errors.Is, and RecoverError stores it.
func TestRecoverError(t *testing.T) {
	sentinel := errors.New("sentinel")
	f := func() (err error) {
		defer RecoverError(&err, "doing")
		panic(sentinel)
	}
	err := f()
	if !errors.Is(err, sentinel) || err.Error() != "doing: sentinel" {
		t.Errorf("got %v", err)
	}
	g := func() (err error) {
		defer RecoverError(&err, "indexing")
		var s []int
		_ = s[3]
		return nil
	}
	if err := g(); err == nil || !strings.Contains(err.Error(), "index out of range") || !strings.Contains(err.Error(), "goroutine") {
		t.Errorf("runtime error without stack: %v", err)
	}
}

// A panic in the middle of a save (GoMLX reports errors by panicking) is returned as an error
// and, like an error, leaves the previous checkpoint intact and no temporary files.
func TestPanickingSaveKeepsPrevious(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	src := newStore(1)
	mustSave(t, dir, src, meta1)
	beforeReplace = func(string) error { panic("injected panic") }
	t.Cleanup(func() { beforeReplace = nil })
	err := Save(dir, newStore(2), "/net", meta1)
	var p panicError
	if !errors.As(err, &p) || !strings.Contains(err.Error(), "injected panic") {
		t.Fatalf("got %v, want the panic as an error", err)
	}
	beforeReplace = nil
	checkIntact(t, dir, src)
}

// CheckFinite accepts a saved checkpoint and names the variable of one with a NaN (written
// around Save, which refuses it) and the file of a damaged one.
func TestCheckFinite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	mustSave(t, dir, newStore(1), meta1)
	if err := CheckFinite(dir); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	s := newStore(9)
	s.GetVariable("/net/dense/bias").MustSetValue(tensors.FromValue([]float32{1, 0, float32(math.Inf(1)), 0}))
	h, err := checkpoint.Build(s).Dir(bad).Keep(1).Done()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}
	errorMentions(t, CheckFinite(bad), bad, "/net/dense/bias", "+Inf", "flat index 2")
	errorMentions(t, CheckFinite(filepath.Join(t.TempDir(), "missing")), "missing")
}
