// Package savedmodel writes and reads model checkpoint directories: the weights of the
// variables under one scope of a GoMLX store (GoMLX checkpoint files) plus a JSON file
// (MetaFile) with the model's kind and hyperparameters, so that a loader can rebuild the
// network before it loads the weights, plus a ManifestFile with the size and SHA-256 of the
// weights' files, so that a truncated or corrupted file is reported as such. Directories are
// replaced as a whole (a failed save leaves the previous checkpoint intact), and loading
// checks that every variable is present with the shape and dtype the rebuilt network needs.
package savedmodel

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/dtypes/bfloat16"
	"github.com/gomlx/compute/dtypes/float16"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// MetaFile is the name of the JSON file of a checkpoint directory with the model's kind and
// hyperparameters.
const MetaFile = "model.json"

// ManifestFile is the name of the JSON file of a checkpoint directory that lists the GoMLX
// files of the checkpoint (the weights) with their sizes and SHA-256 digests, and the
// FormatVersion of the directory layout. MetaFile is not listed: it stays editable by hand, and
// is checked by decoding it and, by callers, against the weights' shapes. Checkpoints written
// before ManifestFile existed (none in the directory) still load, unverified.
const ManifestFile = "manifest.json"

// FormatVersion is the version of the checkpoint directory layout written by Save (recorded in
// ManifestFile). Loading a checkpoint of a newer version is an error. It is independent of the
// version callers may keep in their own MetaFile.
const FormatVersion = 1

// RecoverError turns a panic into an error (with the panic value and, for runtime errors, a
// stack trace) stored in *err. Use as `defer savedmodel.RecoverError(&err, "what")` in
// functions that build GoMLX graphs, which report errors by panicking. (recover only works in
// the deferred function itself: wrappers must call recover and PanicError.)
func RecoverError(err *error, what string) {
	if r := recover(); r != nil {
		*err = PanicError(r, what)
	}
}

// PanicError returns the error for a recovered panic value r (not nil).
func PanicError(r any, what string) error {
	var err error
	if e, ok := r.(error); ok {
		err = fmt.Errorf("%s: %w", what, e)
	} else {
		err = fmt.Errorf("%s: %v", what, r)
	}
	if _, isRuntime := r.(interface{ RuntimeError() }); isRuntime {
		err = fmt.Errorf("%w\n%s", err, debug.Stack())
	}
	return panicError{err}
}

// panicError marks the errors made by PanicError, so that tests can tell a recovered panic
// (a bug) from an ordinary error.
type panicError struct{ error }

func (e panicError) Unwrap() error { return e.error }

// Exists reports whether dir holds a checkpoint (has a MetaFile).
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, MetaFile))
	return err == nil
}

// ReadMeta decodes the MetaFile of the checkpoint in dir into meta (a pointer). A checkpoint of
// a newer FormatVersion, or with an invalid ManifestFile, is an error.
func ReadMeta(dir string, meta any) error {
	if _, err := readManifest(dir); err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checkpoint %q: %s is missing", dir, MetaFile)
	}
	if err != nil {
		return fmt.Errorf("checkpoint %q: %w", dir, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(meta); err != nil {
		return fmt.Errorf("checkpoint %q: invalid %s (truncated or corrupted?): %w", dir, MetaFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("checkpoint %q: invalid %s: data after the JSON value", dir, MetaFile)
	}
	return nil
}

// Save writes the variables under scopePath of store plus meta (JSON-encoded into MetaFile)
// into dir, atomically: everything is written (and synced) into a temporary sibling directory
// that then replaces dir, so a failed save leaves the previous checkpoint intact. (Replacing
// takes two renames: if the process dies between them, dir is missing and the previous
// checkpoint is in the sibling .<name>.tmp-*.old.) Save refuses to replace a dir that exists
// and is neither empty nor a checkpoint, and weights with NaN or infinite values (saving those
// would replace a good checkpoint by a broken one).
func Save(dir string, store *model.Store, scopePath string, meta any) (err error) {
	defer RecoverError(&err, "saving checkpoint")
	dir = filepath.Clean(dir)
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("saving checkpoint %q: encoding %s: %w", dir, MetaFile, err)
	}
	// Export only the model's variables: copy them into a fresh store.
	export := model.NewStore()
	for v := range store.Scope(scopePath).IterVariables() {
		value, err := v.Value()
		if err != nil {
			return fmt.Errorf("saving checkpoint %q: %w", dir, err)
		}
		if err := checkFinite(value); err != nil {
			return fmt.Errorf("saving checkpoint %q: variable %s %s; nothing was written", dir, v.Path(), err)
		}
		if _, err := v.CloneToStore(export); err != nil {
			return fmt.Errorf("saving checkpoint %q: %w", dir, err)
		}
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("saving checkpoint %q: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("saving checkpoint %q: %w", dir, err)
	}
	defer func() {
		// Recover here too: the deferred RecoverError above runs after this.
		if r := recover(); r != nil {
			err = PanicError(r, "saving checkpoint")
		}
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("saving checkpoint %q: %w", dir, err)
	}
	h, err := checkpoint.Build(export).Dir(tmp).Keep(1).Done()
	if err != nil {
		return fmt.Errorf("saving checkpoint %q: %w", dir, err)
	}
	if err := h.Save(); err != nil {
		return fmt.Errorf("saving checkpoint %q: %w", dir, err)
	}
	if err := writeFileSync(filepath.Join(tmp, MetaFile), append(raw, '\n')); err != nil {
		return fmt.Errorf("saving checkpoint %q: %w", dir, err)
	}
	if err := writeManifest(tmp); err != nil {
		return fmt.Errorf("saving checkpoint %q: %w", dir, err)
	}
	if beforeReplace != nil {
		if err := beforeReplace(tmp); err != nil {
			return fmt.Errorf("saving checkpoint %q: %w", dir, err)
		}
	}
	// Replace dir: move the old one aside, move the new one in, delete the old one.
	var old string
	if _, err := os.Lstat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("saving checkpoint %q: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return fmt.Errorf("saving checkpoint %q: %w", dir, err)
	}
	syncDir(parent)
	if old != "" {
		_ = os.RemoveAll(old)
	}
	return nil
}

// beforeReplace, when set (by tests), runs after the new checkpoint is complete in its temporary
// directory and before it replaces dir; an error fails the save there.
var beforeReplace func(tmp string) error

// checkReplaceable returns an error if dir exists and Save must not replace it: it is not a
// directory, or it is a non-empty directory with none of the files of a checkpoint (replacing it
// would delete unrelated files). A damaged checkpoint can be replaced.
func checkReplaceable(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("saving checkpoint %q: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("saving checkpoint %q: it exists and is not a directory (a file or a symbolic link); not replacing it", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("saving checkpoint %q: %w", dir, err)
	}
	for _, e := range entries {
		// A checkpoint, possibly damaged.
		n := e.Name()
		if n == MetaFile || n == ManifestFile || (strings.HasPrefix(n, "checkpoint-") && strings.HasSuffix(n, checkpoint.JsonNameSuffix)) {
			return nil
		}
	}
	if len(entries) > 0 {
		return fmt.Errorf("saving checkpoint %q: the directory exists, is not empty and is not a checkpoint (no %s); not replacing it", dir, MetaFile)
	}
	return nil
}

// checkFinite returns an error if a float tensor holds a NaN or an infinity.
func checkFinite(t *tensors.Tensor) error {
	if !t.DType().IsFloat() {
		return nil
	}
	bad := -1
	var badValue float64
	find := func(n int, at func(i int) float64) {
		for i := range n {
			if x := at(i); math.IsNaN(x) || math.IsInf(x, 0) {
				bad, badValue = i, x
				return
			}
		}
	}
	err := t.ConstFlatData(func(flat any) {
		switch f := flat.(type) {
		case []float32:
			find(len(f), func(i int) float64 { return float64(f[i]) })
		case []float64:
			find(len(f), func(i int) float64 { return f[i] })
		case []float16.Float16:
			find(len(f), func(i int) float64 { return f[i].Float64() })
		case []bfloat16.BFloat16:
			find(len(f), func(i int) float64 { return f[i].Float64() })
		}
	})
	if err != nil {
		return err
	}
	if bad >= 0 {
		return fmt.Errorf("has the value %v at flat index %d", badValue, bad)
	}
	return nil
}

// LoadVariables loads the checkpoint in dir and copies its variables into the variables under
// scopePath of target (which must exist, freshly initialized from the checkpoint's config).
// Missing, extra or differently shaped variables are errors, and then target is unchanged.
// The checkpoint's files are checked against its ManifestFile (when it has one), and its
// index of variables against target, before any weight is read.
func LoadVariables(dir string, target *model.Store, scopePath string) (err error) {
	defer RecoverError(&err, "loading checkpoint weights")
	want := map[string]*model.Variable{}
	for v := range target.Scope(scopePath).IterVariables() {
		want[v.Path()] = v
	}
	base, err := checkFiles(dir)
	if err != nil {
		return err
	}
	if err := checkIndex(dir, base, scopePath, want); err != nil {
		return err
	}
	loaded := model.NewStore()
	if _, err := checkpoint.Load(loaded).Dir(dir).Immediate().Done(); err != nil {
		return fmt.Errorf("checkpoint %q: reading %s{%s,%s}: %w", dir, base, checkpoint.JsonNameSuffix, checkpoint.BinDataSuffix, err)
	}
	// The index was checked, but check what was loaded too before changing target.
	var problems []string
	for v := range loaded.IterVariables() {
		w, ok := want[v.Path()]
		if !ok && (v.Path() == globalStep || !underScope(v.Path(), scopePath)) {
			continue
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("unexpected variable %s %s", v.Path(), v.Shape()))
		} else if !sameShape(v.Shape().DType, v.Shape().Dimensions, w) {
			problems = append(problems, fmt.Sprintf("variable %s has shape %s in the checkpoint, the model needs %s", v.Path(), v.Shape(), w.Shape()))
		}
	}
	for p, w := range want {
		if loaded.GetVariable(p) == nil {
			problems = append(problems, fmt.Sprintf("missing variable %s %s", p, w.Shape()))
		}
	}
	if len(problems) > 0 {
		return mismatch(dir, base+checkpoint.JsonNameSuffix, "", problems)
	}
	for v := range loaded.IterVariables() {
		w, ok := want[v.Path()]
		if !ok {
			continue
		}
		value, err := v.Value()
		if err != nil {
			return fmt.Errorf("checkpoint %q: %w", dir, err)
		}
		if err := w.SetValue(value); err != nil {
			return fmt.Errorf("checkpoint %q: %w", dir, err)
		}
	}
	return nil
}

// CheckFinite reads every variable of the checkpoint in dir (its files checked against its
// ManifestFile first, when it has one) and returns an error naming the first variable with a
// NaN or infinite value, or nil when every value is finite.
func CheckFinite(dir string) (err error) {
	defer RecoverError(&err, "checking checkpoint weights")
	base, err := checkFiles(dir)
	if err != nil {
		return err
	}
	loaded := model.NewStore()
	if _, err := checkpoint.Load(loaded).Dir(dir).Immediate().Done(); err != nil {
		return fmt.Errorf("checkpoint %q: reading %s{%s,%s}: %w", dir, base, checkpoint.JsonNameSuffix, checkpoint.BinDataSuffix, err)
	}
	for v := range loaded.IterVariables() {
		value, err := v.Value()
		if err != nil {
			return fmt.Errorf("checkpoint %q: %w", dir, err)
		}
		if err := checkFinite(value); err != nil {
			return fmt.Errorf("checkpoint %q: variable %s %s", dir, v.Path(), err)
		}
	}
	return nil
}

func sameShape(dtype dtypes.DType, dims []int, w *model.Variable) bool {
	return dtype == w.Shape().DType && slices.Equal(dims, w.Shape().Dimensions)
}

// mismatch is the error for the differences (problems) between a checkpoint and its model.
func mismatch(dir, file, hint string, problems []string) error {
	slices.Sort(problems)
	const maxShown = 8
	if n := len(problems); n > maxShown {
		problems = append(problems[:maxShown], fmt.Sprintf("and %d more", n-maxShown))
	}
	return fmt.Errorf("checkpoint %q does not match the model (%s): %s%s", dir, file, hint, strings.Join(problems, "; "))
}

// globalStep is the variable GoMLX's checkpoint.Handler.Save adds to every checkpoint.
var globalStep = "/" + optimizer.GlobalStepVariableName

// underScope reports whether the variable path is under scopePath.
func underScope(path, scopePath string) bool {
	return strings.HasPrefix(path, strings.TrimSuffix(scopePath, "/")+"/")
}

// byteSize returns the size in bytes of a tensor of the given dtype and dimensions, and false if
// the dtype or a dimension is invalid or the size overflows.
func byteSize(dtype dtypes.DType, dims []int) (int, bool) {
	if !dtype.IsSupported() || dtype.Bits() <= 0 {
		return 0, false
	}
	n := 1
	for _, d := range dims {
		if d < 0 || (d > 0 && n > math.MaxInt/d) {
			return 0, false
		}
		n *= d
	}
	bits := dtype.Bits()
	if n > (math.MaxInt-7)/bits {
		return 0, false
	}
	return (n*bits + 7) / 8, true
}

// checkFiles checks that dir holds one GoMLX checkpoint (a .json index and its .bin data) and,
// when it has a ManifestFile, that the checkpoint's files match it. It returns the base name of
// the GoMLX checkpoint files.
func checkFiles(dir string) (string, error) {
	man, err := readManifest(dir)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("reading checkpoint %q: %w", dir, err)
	}
	var bases []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), checkpoint.JsonNameSuffix); ok && strings.HasPrefix(name, "checkpoint-") {
			bases = append(bases, name)
		}
	}
	if man != nil {
		for name := range man.Files {
			if err := man.verify(dir, name); err != nil {
				return "", err
			}
		}
		for _, b := range bases {
			if _, ok := man.Files[b+checkpoint.JsonNameSuffix]; !ok {
				return "", fmt.Errorf("checkpoint %q: %s is not listed in %s (left over from another save?)", dir, b+checkpoint.JsonNameSuffix, ManifestFile)
			}
		}
	}
	switch len(bases) {
	case 0:
		return "", fmt.Errorf("checkpoint %q: the GoMLX checkpoint-*%s file (the weights' index) is missing", dir, checkpoint.JsonNameSuffix)
	case 1:
	default:
		return "", fmt.Errorf("checkpoint %q: holds %d GoMLX checkpoints (%s), expected one", dir, len(bases), strings.Join(bases, ", "))
	}
	if man != nil {
		if _, ok := man.Files[bases[0]+checkpoint.BinDataSuffix]; !ok {
			return "", fmt.Errorf("checkpoint %q: %s does not list %s", dir, ManifestFile, bases[0]+checkpoint.BinDataSuffix)
		}
	}
	return bases[0], nil
}

// gomlxIndex is the part of a GoMLX checkpoint's .json index that describes the variables in
// its .bin data file (github.com/gomlx/gomlx/ml/model/checkpoint, serializedData).
type gomlxIndex struct {
	Variables []struct {
		ParameterName string
		Dimensions    []int
		DType         dtypes.DType
		Pos, Length   int
	}
	BinFormat string
}

// The header of GoMLX's gzip-compressed .bin files.
const gomlxGzipHeader = "gomlx_checkpointss\x04gzip"

// checkIndex checks the GoMLX index of the checkpoint (base+".json") against the variables the
// model needs (want), and the .bin file against the index, before GoMLX allocates and reads
// anything from it.
func checkIndex(dir, base, scopePath string, want map[string]*model.Variable) error {
	indexFile := base + checkpoint.JsonNameSuffix
	binFile := base + checkpoint.BinDataSuffix
	raw, err := os.ReadFile(filepath.Join(dir, indexFile))
	if err != nil {
		return fmt.Errorf("checkpoint %q: %s: %w", dir, indexFile, err)
	}
	var index gomlxIndex
	if err := json.Unmarshal(raw, &index); err != nil {
		return fmt.Errorf("checkpoint %q: invalid %s (truncated or corrupted?): %w", dir, indexFile, err)
	}
	var problems, elsewhere []string
	seen := map[string]bool{}
	pos, inScope := 0, 0
	for i, v := range index.Variables {
		path, ok := strings.CutPrefix(v.ParameterName, "var:")
		if !ok || !strings.HasPrefix(path, "/") {
			return fmt.Errorf("checkpoint %q: invalid %s: variable #%d has the name %q", dir, indexFile, i, v.ParameterName)
		}
		if seen[path] {
			return fmt.Errorf("checkpoint %q: invalid %s: variable %s is listed twice", dir, indexFile, path)
		}
		seen[path] = true
		shape := shapes.Shape{DType: v.DType, Dimensions: v.Dimensions}
		if v.Pos != pos {
			return fmt.Errorf("checkpoint %q: invalid %s: variable %s is at byte %d of %s, expected %d", dir, indexFile, path, v.Pos, binFile, pos)
		}
		if n, ok := byteSize(v.DType, v.Dimensions); !ok || n != v.Length {
			return fmt.Errorf("checkpoint %q: invalid %s: variable %s %s has length %d", dir, indexFile, path, shape, v.Length)
		}
		if v.Length > math.MaxInt-pos {
			return fmt.Errorf("checkpoint %q: invalid %s: variables too large", dir, indexFile)
		}
		pos += v.Length
		w, ok := want[path]
		switch {
		case !ok && !underScope(path, scopePath):
			if path != globalStep {
				elsewhere = append(elsewhere, path)
			}
		case !ok && path == globalStep:
			// Added by GoMLX's checkpoint.Handler.Save.
		case !ok:
			inScope++
			problems = append(problems, fmt.Sprintf("unexpected variable %s %s", path, shape))
		case !sameShape(v.DType, v.Dimensions, w):
			inScope++
			problems = append(problems, fmt.Sprintf("variable %s has shape %s in the checkpoint, the model needs %s", path, shape, w.Shape()))
		default:
			inScope++
		}
	}
	for p, w := range want {
		if !seen[p] {
			problems = append(problems, fmt.Sprintf("missing variable %s %s", p, w.Shape()))
		}
	}
	if len(problems) > 0 {
		hint := ""
		if inScope == 0 && len(elsewhere) > 0 {
			slices.Sort(elsewhere)
			hint = fmt.Sprintf("it has no variable under %s but has %s: a checkpoint of another model? ", scopePath, strings.Join(elsewhere[:min(3, len(elsewhere))], ", "))
		}
		return mismatch(dir, indexFile, hint, problems)
	}
	f, err := os.Open(filepath.Join(dir, binFile))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checkpoint %q: %s (the weights) is missing", dir, binFile)
	}
	if err != nil {
		return fmt.Errorf("checkpoint %q: %s: %w", dir, binFile, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("checkpoint %q: %s: %w", dir, binFile, err)
	}
	switch index.BinFormat {
	case "gzip":
		header := make([]byte, len(gomlxGzipHeader))
		if _, err := io.ReadFull(f, header); err != nil || string(header) != gomlxGzipHeader {
			return fmt.Errorf("checkpoint %q: %s does not start with the header of a gzip-compressed GoMLX checkpoint (truncated or corrupted)", dir, binFile)
		}
		// Decompress (at most one byte more than the index needs) to check the data's size and
		// gzip checksum.
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("checkpoint %q: %s is truncated or corrupted: %w", dir, binFile, err)
		}
		n, err := io.Copy(io.Discard, io.LimitReader(zr, int64(pos)+1))
		if err != nil {
			return fmt.Errorf("checkpoint %q: %s is truncated or corrupted: %w", dir, binFile, err)
		}
		if n < int64(pos) {
			return fmt.Errorf("checkpoint %q: %s holds %d bytes of weights, %s lists %d (truncated or corrupted)", dir, binFile, n, indexFile, pos)
		}
		if n > int64(pos) {
			return fmt.Errorf("checkpoint %q: %s holds more than the %d bytes of weights %s lists (corrupted)", dir, binFile, pos, indexFile)
		}
	case "uncompressed", "":
		if fi.Size() != int64(pos) {
			return fmt.Errorf("checkpoint %q: %s is %d bytes, %s says %d (truncated or corrupted)", dir, binFile, fi.Size(), indexFile, pos)
		}
	default:
		return fmt.Errorf("checkpoint %q: %s has the unknown BinFormat %q", dir, indexFile, index.BinFormat)
	}
	return nil
}

// manifest is the content of ManifestFile.
type manifest struct {
	Format int                 `json:"format"`
	Files  map[string]fileInfo `json:"files"`
}

type fileInfo struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// readManifest reads the ManifestFile of dir; it returns nil (and no error) if there is none.
func readManifest(dir string) (*manifest, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("reading checkpoint %q: %w", dir, err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading checkpoint %q: %w", dir, err)
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("checkpoint %q: invalid %s (truncated or corrupted?): %w", dir, ManifestFile, err)
	}
	if m.Format > FormatVersion {
		return nil, fmt.Errorf("checkpoint %q: %s says format %d, this code reads format %d and older: it was written by a newer version", dir, ManifestFile, m.Format, FormatVersion)
	}
	if m.Format < 1 {
		return nil, fmt.Errorf("checkpoint %q: invalid %s: format %d", dir, ManifestFile, m.Format)
	}
	for name := range m.Files {
		if name != filepath.Base(name) || name == "." || name == ".." || name == ManifestFile || name == MetaFile {
			return nil, fmt.Errorf("checkpoint %q: invalid %s: it lists %q", dir, ManifestFile, name)
		}
	}
	return &m, nil
}

// verify checks the file name of the checkpoint in dir against the manifest.
func (m *manifest) verify(dir, name string) error {
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checkpoint %q: %s (listed in %s) is missing", dir, name, ManifestFile)
	}
	if err != nil {
		return fmt.Errorf("checkpoint %q: %w", dir, err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("checkpoint %q: reading %s: %w", dir, name, err)
	}
	return m.check(dir, name, n, [32]byte(h.Sum(nil)))
}

func (m *manifest) check(dir, name string, size int64, sum [32]byte) error {
	want, ok := m.Files[name]
	if !ok {
		return fmt.Errorf("checkpoint %q: %s is not listed in %s", dir, name, ManifestFile)
	}
	if size != want.Size {
		how := "truncated"
		if size > want.Size {
			how = "changed"
		}
		return fmt.Errorf("checkpoint %q: %s is %d bytes, %s says %d (%s)", dir, name, size, ManifestFile, want.Size, how)
	}
	if hex.EncodeToString(sum[:]) != want.SHA256 {
		return fmt.Errorf("checkpoint %q: %s is corrupted: its SHA-256 differs from the one in %s", dir, name, ManifestFile)
	}
	return nil
}

// writeManifest writes the ManifestFile of the new checkpoint in dir, listing (and syncing)
// every regular file there but MetaFile (synced by writeFileSync), and syncs dir.
func writeManifest(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	m := manifest{Format: FormatVersion, Files: map[string]fileInfo{}}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == MetaFile {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err == nil {
			err = f.Sync()
		}
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
		m.Files[e.Name()] = fileInfo{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, ManifestFile), append(raw, '\n')); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// writeFileSync writes a new file and syncs it to disk.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir syncs a directory (its entries), where the platform allows it.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		_ = f.Close()
	}
}
