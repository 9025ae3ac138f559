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

// dequantScratch is the peak memory of dequantizing a weight of n elements
// in a run dtype of es bytes (internal/torch's QuantLinear): nf4 holds the
// byte-pair values (n·es) with either the int32 indices (2n) or the result
// (n·es); int8 holds the codes in the run dtype (n·es) with the float32
// product (4n).
func dequantScratch(k quant.Kind, n, es int64) int64 {
	if k == quant.NF4 {
		return n*es + max(2*n, n*es)
	}
	return n * (es + 4)
}
