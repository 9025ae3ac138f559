package memest

import (
	"fmt"
	"strings"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// Validate builds everything a run of cfg needs (model, adapters, datasets)
// without training or writing anything, and returns a short summary.
func Validate(cfg *recipes.Config) (string, error) {
	if err := Preflight(cfg, PreflightValidate); err != nil {
		return "", err
	}
	var b strings.Builder
	err := torch.Run(func() error {
		avail := availableBefore(cfg) // before the model takes its share
		c, err := stack.Build(cfg, stack.AllData)
		if err != nil {
			return err
		}
		defer c.Close()
		var n int64
		for _, p := range c.Params {
			n += p.T.Numel()
		}
		mc := c.Model.Config
		fmt.Fprintf(&b, "recipe %s: ok\n", cfg.Run.Name)
		fmt.Fprintf(&b, "  model   %s: %s, %d layers, d=%d, %d projectors, %s on %s\n", cfg.Model.Path, mc.ModelType,
			mc.NumLayers, mc.HiddenSize, len(mc.Projectors), cfg.Model.DType, c.Dev)
		fmt.Fprintf(&b, "  adapters %s on %d linears (%s), %d trainable parameters\n", cfg.Adapters.Method,
			len(c.Set.Mixtures), strings.Join(cfg.Adapters.Targets, ","), n)
		fmt.Fprintf(&b, "  train   %s: %d samples (%d truncated)\n", cfg.Data.Train, c.Train.Len(), c.Train.Truncated())
		if c.Eval != nil {
			fmt.Fprintf(&b, "  eval    %s: %d samples\n", cfg.Data.Eval, c.Eval.Len())
		}
		return memoryEstimate(c, &b, avail)
	})
	return b.String(), err
}
