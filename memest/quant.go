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

// dequantScratch is the buffers internal/torch's QuantLinear dequantizes a
// weight of n elements into, in a run dtype of es bytes: nf4 the codes as
// int32 (2n) and the values scaled in place (n·es); int8 the float32
// product (4n) and its cast to the run dtype (n·es, none in float32). They
// are kept across linears and steps, sized by the largest weight.
func dequantScratch(k quant.Kind, n, es int64) int64 {
	if k == quant.NF4 {
		return n*es + 2*n
	}
	if es == 4 {
		return 4 * n
	}
	return n * (es + 4)
}
