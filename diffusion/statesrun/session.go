package statesrun

import (
	"github.com/gomlx/compute"

	"github.com/godiffusion/notebooks/diffusion/backend"
	"github.com/godiffusion/notebooks/diffusion/preset"
)

// Session is what the cells of notebooks 01-02 (and cmd/states) start from: the backend, the
// preset's configuration with the data and seed applied, and the data.
type Session struct {
	Backend compute.Backend
	Config  Config
	Data    *Data
}

// Setup returns the session of a preset ("smoke", "cpu", "paper"), a data source ("builtin"
// or the path of the course's states.pt) and a seed.
func Setup(presetName, data string, seed int64) (*Session, error) {
	p, err := preset.Parse(presetName)
	if err != nil {
		return nil, err
	}
	cfg, err := PresetConfig(p)
	if err != nil {
		return nil, err
	}
	cfg.Data, cfg.Seed = data, seed
	d, err := LoadData(cfg.Data, cfg.ValFraction, cfg.Seed)
	if err != nil {
		return nil, err
	}
	b, err := backend.New()
	if err != nil {
		return nil, err
	}
	return &Session{Backend: b, Config: cfg, Data: d}, nil
}
