package infer

import (
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/stack"
)

// Eval through the KV cache holds nothing across batches: the number of live
// tensors at the start of every batch (after the first) is the same over three passes of
// cached scoring and of cached generation (27 batches each), AR on.
func TestCacheEvalMemoryFlat(t *testing.T) {
	cfg, ck := fixture.Adapted(t)
	cfg.Eval = fixture.Recipe(t, "eval.batch_size=4", "eval.max_new_tokens=6", "eval.ar.enabled=true", "eval.ar.dump_stats=true").Eval
	err := torch.Run(func() error {
		c, err := stack.Load(cfg, ck, stack.EvalData)
		if err != nil {
			return err
		}
		defer c.Close()
		off, err := UseAR(c)
		if err != nil {
			return err
		}
		defer off()
		opt, err := decodeOptionsOf(c)
		if err != nil {
			return err
		}
		opt.ends = nil
		for _, what := range []string{"score", "generate"} {
			var live []int64
			for range 3 {
				err := ForEachBatch(t.Context(), c, c.Eval, data.ModePrompt, func(b *data.Batch) error {
					live = append(live, torch.Live())
					if what == "generate" {
						_, err := decode(c, b, opt, 1)
						return err
					}
					s := torch.NewScope()
					defer s.Close()
					_, err := ScoreCached(s, c, c.Eval.Encoder(), b)
					return err
				})
				if err != nil {
					return err
				}
			}
			if len(live) != 27 {
				t.Fatalf("%s: %d batches, want 27", what, len(live))
			}
			// the first batch builds the model's rotary tables (cos, sin): +2
			for i, n := range live[1:] {
				if n != live[1] || n > live[0]+2 {
					t.Errorf("%s: %d live tensors before batch %d, %d before the second, %d before the first", what, n, i+1, live[1], live[0])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
