package trainer

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
)

// openInference builds cfg's model with the adapters of a checkpoint (a
// step-NNNNNNN directory) or of an export (`mose export --format peft`),
// without data sets, on the tensor thread. Close the result.
func openInference(cfg *recipes.Config, checkpoint string) (*components, error) {
	adapter := filepath.Join(checkpoint, adapterFile)
	export := isExport(checkpoint)
	if _, err := os.Stat(adapter); err != nil && !export {
		return nil, fmt.Errorf("%w: %s holds neither %s (a checkpoint) nor %s (an export)", ErrRecipe, checkpoint, adapterFile, peftConfigFile)
	}
	c, err := buildComponents(cfg, evalData)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.close()
		}
	}()
	if st, err := readState(checkpoint); err == nil {
		if err := c.set.SetModalityWeights(st.ModalityWeights[0], st.ModalityWeights[1]); err != nil {
			return nil, err
		}
	}
	load := func() error { return c.loadAdapters(adapter) }
	if export {
		load = func() error { return c.loadExport(checkpoint) }
	}
	if err := load(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRecipe, err)
	}
	ok = true
	return c, nil
}

// useAR turns Attention Reallocation on for c's model as eval.ar says (when
// enabled) and returns the function that turns it off again.
func useAR(c *components) (func(), error) {
	cfg := c.cfg.Eval.AR
	if !cfg.Enabled {
		return func() {}, nil
	}
	n := len(c.model.Layers)
	ar := &model.AR{First: min(2, n-1), Last: n - 1, Beta: cfg.Beta, Adaptive: cfg.Tau != "fixed",
		TauValue: cfg.TauValue, Kappa: cfg.Kappa}
	if len(cfg.Layers) == 2 {
		ar.First, ar.Last = cfg.Layers[0], cfg.Layers[1]
	}
	if err := ar.Validate(n); err != nil {
		return nil, fmt.Errorf("%w: eval.ar: %v", ErrRecipe, err)
	}
	if cfg.DumpStats {
		ar.Stats = &model.ARStats{}
	}
	c.model.AR = ar
	return func() { c.model.AR = nil }, nil
}
