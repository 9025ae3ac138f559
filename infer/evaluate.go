package infer

import (
	"context"
	"fmt"
	"os"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/memest"
	"github.com/mose-llm/mose/metrics"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// Evaluate scores cfg's eval set with the adapters of a checkpoint (a
// step-NNNNNNN directory holding adapter.safetensors) or of a PEFT export
// (`mose export --format peft`), and writes eval.json into out (default:
// that directory).
func Evaluate(ctx context.Context, cfg *recipes.Config, dir, out string) (*metrics.Report, error) {
	if cfg.Data.Eval == "" {
		return nil, fmt.Errorf("%w: data.eval is empty: nothing to evaluate", recipes.ErrRecipe)
	}
	if err := stack.CheckAdapterDir(dir); err != nil {
		return nil, err
	}
	if out == "" {
		out = dir
	}
	if err := memest.CheckWritableDir("--out", out); err != nil {
		return nil, err
	}
	if err := memest.Preflight(cfg, memest.PreflightEval); err != nil {
		return nil, err
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
		c, err := stack.Load(cfg, dir, stack.EvalData)
		if err != nil {
			return err
		}
		defer c.Close()
		if rep, err = EvalSet(ctx, c, out); err != nil {
			return err
		}
		rep.Checkpoint = dir
		if st, err := checkpoint.Decode(dir); err == nil { // validated whole by stack.Load; an export has none
			rep.Step = st.Step
		}
		return WriteEval(out, rep)
	})
	return rep, err
}
