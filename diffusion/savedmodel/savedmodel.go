// Package savedmodel writes and reads model checkpoint directories: the weights of the
// variables under one scope of a GoMLX store (GoMLX checkpoint files) plus a JSON file
// (MetaFile) with the model's kind and hyperparameters, so that a loader can rebuild the
// network before it loads the weights. Directories are replaced atomically, and loading checks
// that every variable is present with the shape the rebuilt network needs.
package savedmodel

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
)

// MetaFile is the name of the JSON file of a checkpoint directory with the model's kind and
// hyperparameters.
const MetaFile = "model.json"

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
	return err
}

// Exists reports whether dir holds a checkpoint (has a MetaFile).
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, MetaFile))
	return err == nil
}

// ReadMeta decodes the MetaFile of the checkpoint in dir into meta (a pointer).
func ReadMeta(dir string, meta any) error {
	raw, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return fmt.Errorf("reading checkpoint %q: %w", dir, err)
	}
	if err := json.Unmarshal(raw, meta); err != nil {
		return fmt.Errorf("checkpoint %q: invalid %s: %w", dir, MetaFile, err)
	}
	return nil
}

// Save writes the variables under scopePath of store plus meta (JSON-encoded into MetaFile)
// into dir, atomically: everything is written into a temporary sibling directory that then
// replaces dir, so an interrupted save leaves the previous checkpoint intact.
func Save(dir string, store *model.Store, scopePath string, meta any) (err error) {
	defer RecoverError(&err, "saving checkpoint")
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	// Export only the model's variables: copy them into a fresh store.
	export := model.NewStore()
	for v := range store.Scope(scopePath).IterVariables() {
		if _, err := v.CloneToStore(export); err != nil {
			return err
		}
	}
	h, err := checkpoint.Build(export).Dir(tmp).Keep(1).Done()
	if err != nil {
		return err
	}
	if err := h.Save(); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, MetaFile), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	// Replace dir: move the old one aside, move the new one in, delete the old one.
	var old string
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return err
	}
	if old != "" {
		_ = os.RemoveAll(old)
	}
	return nil
}

// LoadVariables loads the checkpoint in dir and copies its variables into the variables under
// scopePath of target (which must exist, freshly initialized from the checkpoint's config).
// Missing, extra or differently shaped variables are errors, and then target is unchanged.
func LoadVariables(dir string, target *model.Store, scopePath string) (err error) {
	defer RecoverError(&err, "loading checkpoint weights")
	loaded := model.NewStore()
	if _, err := checkpoint.Load(loaded).Dir(dir).Immediate().Done(); err != nil {
		return fmt.Errorf("reading checkpoint %q: %w", dir, err)
	}
	want := map[string]*model.Variable{}
	for v := range target.Scope(scopePath).IterVariables() {
		want[v.Path()] = v
	}
	var problems []string
	got := map[string]bool{}
	for v := range loaded.IterVariables() {
		if !strings.HasPrefix(v.Path(), scopePath+"/") {
			continue
		}
		got[v.Path()] = true
		w, ok := want[v.Path()]
		if !ok {
			problems = append(problems, fmt.Sprintf("unexpected variable %s %s", v.Path(), v.Shape()))
			continue
		}
		if !v.Shape().Equal(w.Shape()) {
			problems = append(problems, fmt.Sprintf("variable %s has shape %s in the checkpoint, the config needs %s",
				v.Path(), v.Shape(), w.Shape()))
		}
	}
	for p, w := range want {
		if !got[p] {
			problems = append(problems, fmt.Sprintf("missing variable %s %s", p, w.Shape()))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("checkpoint %q does not match its config: %s", dir, strings.Join(problems, "; "))
	}
	for v := range loaded.IterVariables() {
		if w, ok := want[v.Path()]; ok {
			value, err := v.Value()
			if err != nil {
				return err
			}
			if err := w.SetValue(value); err != nil {
				return err
			}
		}
	}
	return nil
}
