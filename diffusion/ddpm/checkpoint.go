package ddpm

import (
	"encoding/json"

	"fmt"
	"reflect"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/godiffusion/notebooks/diffusion/nets"
	"github.com/godiffusion/notebooks/diffusion/savedmodel"
	"github.com/godiffusion/notebooks/diffusion/schedule"
)

// MetaFile is the name of the JSON file of a checkpoint directory with the model's kind and
// hyperparameters; the weights are in GoMLX checkpoint files (package ml/model/checkpoint).
const MetaFile = savedmodel.MetaFile

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
	var m Meta
	if err := savedmodel.ReadMeta(dir, &m); err != nil {
		return nil, fmt.Errorf("ddpm: %w", err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("ddpm: checkpoint %q has format %d, this code reads format %d", dir, m.Format, FormatVersion)
	}
	return &m, nil
}

// saveCheckpoint writes the variables under scopePath of store plus meta into dir, atomically.
func saveCheckpoint(dir string, store *model.Store, scopePath string, meta Meta) error {
	meta.Format = FormatVersion
	if err := savedmodel.Save(dir, store, scopePath, meta); err != nil {
		return fmt.Errorf("ddpm: %w", err)
	}
	return nil
}

// loadVariables copies the checkpoint's weights into the variables under scopePath of target.
func loadVariables(dir string, target *model.Store, scopePath string) error {
	if err := savedmodel.LoadVariables(dir, target, scopePath); err != nil {
		return fmt.Errorf("ddpm: %w", err)
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
