package memest

import (
	"fmt"
	"path/filepath"

	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
)

// checkQuantize refuses model.quantize when a decoder weight does not fit
// its layout (nf4: a multiple of 64 × 256 elements), naming the tensors and
// the rule, before anything is loaded.
func checkQuantize(cfg *recipes.Config, mc model.Config) error {
	k, err := quant.ParseKind(cfg.Model.Quantize)
	if err != nil {
		return fmt.Errorf("%w: model.quantize: %v", recipes.ErrRecipe, err)
	}
	if err := mc.CheckQuantize(k); err != nil {
		return fmt.Errorf("%w: model.quantize %s on %s: %w", recipes.ErrRecipe, k,
			filepath.Join(cfg.Model.Path, "config.json"), err)
	}
	return nil
}

// quantNote says how the decoder linears are stored, for the report.
func quantNote(cfg *recipes.Config) string {
	switch cfg.Model.Quantize {
	case "nf4":
		return "  (decoder linears nf4: ~4.13 bits a weight)"
	case "int8":
		return "  (decoder linears int8, a float32 scale per row)"
	}
	return ""
}
