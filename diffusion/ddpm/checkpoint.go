package ddpm

import (
	"encoding/json"

	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"

	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// MetaFile is the name of the JSON file of a checkpoint directory with the model's kind and
// hyperparameters; the weights are in GoMLX checkpoint files (package ml/model/checkpoint).
const MetaFile = "model.json"

// FormatVersion of the checkpoint metadata.
const FormatVersion = 1

// Model kinds stored in MetaFile.
const (
	KindDenoiser   = "ddpm-denoiser"
	KindClassifier = "ddpm-classifier"
)

// Meta is the content of MetaFile.
type Meta struct {
	Kind       string                 `json:"kind"`
	Format     int                    `json:"format"`
	Schedule   schedule.Config        `json:"schedule"`
	Denoiser   *nets.DenoiserConfig   `json:"denoiser,omitempty"`
	Classifier *nets.ClassifierConfig `json:"classifier,omitempty"`
}

// ReadMeta reads the metadata of the checkpoint in dir.
func ReadMeta(dir string) (*Meta, error) {
	raw, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return nil, fmt.Errorf("ddpm: reading checkpoint %q: %w", dir, err)
	}
	var m Meta
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("ddpm: checkpoint %q: invalid %s: %w", dir, MetaFile, err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("ddpm: checkpoint %q has format %d, this code reads format %d", dir, m.Format, FormatVersion)
	}
	return &m, nil
}

// saveCheckpoint writes the variables under scopePath of store plus meta into dir,
// atomically: everything is written into a temporary sibling directory that then replaces dir.
func saveCheckpoint(dir string, store *model.Store, scopePath string, meta Meta) (err error) {
	defer recoverError(&err, "ddpm: saving checkpoint")
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
	meta.Format = FormatVersion
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

// loadVariables loads the checkpoint in dir and copies its variables into the variables
// under scopePath of target (which must exist, freshly initialized from the checkpoint's
// config). Missing, extra or differently shaped variables are errors.
func loadVariables(dir string, target *model.Store, scopePath string) (err error) {
	defer recoverError(&err, "ddpm: loading checkpoint weights")
	loaded := model.NewStore()
	if _, err := checkpoint.Load(loaded).Dir(dir).Immediate().Done(); err != nil {
		return fmt.Errorf("ddpm: reading checkpoint %q: %w", dir, err)
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
		return fmt.Errorf("ddpm: checkpoint %q does not match its config: %s", dir, strings.Join(problems, "; "))
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

// checkWant compares the checkpoint's config with the one the caller expects.
func checkWant[C any](dir string, got C, want *C) error {
	if want == nil || reflect.DeepEqual(got, *want) {
		return nil
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(*want)
	return fmt.Errorf("ddpm: checkpoint %q has config %s, expected %s", dir, g, w)
}

// Save writes the denoiser's weights and hyperparameters (network and schedule) into dir,
// replacing any previous checkpoint there atomically. Optimizer state is not saved.
func (d *Denoiser) Save(dir string) error {
	net := d.Net
	return saveCheckpoint(dir, d.store, "/"+DenoiserScope,
		Meta{Kind: KindDenoiser, Schedule: d.Schedule.Config, Denoiser: &net})
}

// LoadDenoiser loads a denoiser saved with Save. If want is not nil, the checkpoint's network
// config must equal it. Mismatched configs or weights are returned as errors.
func LoadDenoiser(backend compute.Backend, dir string, want *nets.DenoiserConfig) (*Denoiser, error) {
	meta, err := ReadMeta(dir)
	if err != nil {
		return nil, err
	}
	if meta.Kind != KindDenoiser || meta.Denoiser == nil {
		return nil, fmt.Errorf("ddpm: checkpoint %q holds a %q, not a %q", dir, meta.Kind, KindDenoiser)
	}
	if err := checkWant(dir, *meta.Denoiser, want); err != nil {
		return nil, err
	}
	d, err := NewDenoiser(backend, *meta.Denoiser, meta.Schedule, 0)
	if err != nil {
		return nil, fmt.Errorf("ddpm: checkpoint %q: %w", dir, err)
	}
	if err := loadVariables(dir, d.store, "/"+DenoiserScope); err != nil {
		return nil, err
	}
	return d, nil
}

// Save writes the classifier's weights and hyperparameters into dir, replacing any previous
// checkpoint there atomically.
func (c *Classifier) Save(dir string) error {
	net := c.Net
	return saveCheckpoint(dir, c.store, "/"+ClassifierScope,
		Meta{Kind: KindClassifier, Schedule: c.Schedule.Config, Classifier: &net})
}

// LoadClassifier loads a classifier saved with Save. If want is not nil, the checkpoint's
// network config must equal it.
func LoadClassifier(backend compute.Backend, dir string, want *nets.ClassifierConfig) (*Classifier, error) {
	meta, err := ReadMeta(dir)
	if err != nil {
		return nil, err
	}
	if meta.Kind != KindClassifier || meta.Classifier == nil {
		return nil, fmt.Errorf("ddpm: checkpoint %q holds a %q, not a %q", dir, meta.Kind, KindClassifier)
	}
	if err := checkWant(dir, *meta.Classifier, want); err != nil {
		return nil, err
	}
	c, err := NewClassifier(backend, *meta.Classifier, meta.Schedule, 0)
	if err != nil {
		return nil, fmt.Errorf("ddpm: checkpoint %q: %w", dir, err)
	}
	if err := loadVariables(dir, c.store, "/"+ClassifierScope); err != nil {
		return nil, err
	}
	return c, nil
}
