package trainer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/metrics"
	"github.com/mose-llm/mose/recipes"
)

// Evaluate scores cfg's eval set with the adapters of a checkpoint (a
// step-NNNNNNN directory holding adapter.safetensors) or of a PEFT export
// (`mose export --format peft`), and writes eval.json into out (default:
// that directory).
func Evaluate(ctx context.Context, cfg *recipes.Config, checkpoint, out string) (*metrics.Report, error) {
	if cfg.Data.Eval == "" {
		return nil, fmt.Errorf("%w: data.eval is empty: nothing to evaluate", ErrRecipe)
	}
	adapter := filepath.Join(checkpoint, adapterFile)
	export := isExport(checkpoint)
	if _, err := os.Stat(adapter); err != nil && !export {
		return nil, fmt.Errorf("%w: %s holds neither %s (a checkpoint) nor %s (an export)", ErrRecipe, checkpoint, adapterFile, peftConfigFile)
	}
	if out == "" {
		out = checkpoint
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	var rep *metrics.Report
	err := torch.Run(func() error {
		if cfg.Run.Threads > 0 {
			if err := torch.SetThreads(cfg.Run.Threads); err != nil {
				return err
			}
		}
		c, err := buildComponents(cfg, evalData)
		if err != nil {
			return err
		}
		defer c.close()
		if !export { // a checkpoint is validated whole before use
			st, err := readState(checkpoint)
			if err != nil {
				return err
			}
			if err := c.set.SetModalityWeights(st.ModalityWeights[0], st.ModalityWeights[1]); err != nil {
				return err
			}
		}
		load := func() error { return c.loadAdapters(adapter) }
		if export {
			load = func() error { return c.loadExport(checkpoint) }
		}
		if err := load(); err != nil {
			return fmt.Errorf("%w: %w", ErrRecipe, err)
		}
		if rep, err = evalSet(ctx, c, out); err != nil {
			return err
		}
		return writeEval(out, rep)
	})
	return rep, err
}
