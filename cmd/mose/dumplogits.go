package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/export"
	"github.com/mose-llm/mose/internal/safetensors"
)

func newDumpLogitsCmd() *cobra.Command {
	var checkpoint, manifest, out string
	var index int
	cmd := &cobra.Command{
		Use:   "dump-logits --checkpoint PATH --out FILE",
		Short: "Write a training checkpoint's logits on one sample (for scripts/checks/check_peft_export.py)",
		Long: `dump-logits computes, from a training checkpoint itself (its recipe, model and
adapter.safetensors, not an export), the logits at every position of one sample
(--manifest, default the recipe's data.eval or data.train; --index, default 0),
feature tokens included, and writes them to a safetensors file with the inputs:
input_ids, modality, logits, and features.<input> / positions.<input> for each
modality input. scripts/checks/check_peft_export.py compares PEFT on an export with it.
On a Qwen2.5-Omni thinker the sample is written as its processor outputs under
transformers' names (the answer appended to input_ids) with the logits, so that
transformers' thinker runs on the file (scripts/checks/check_omni_export.py).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if checkpoint == "" || out == "" {
				return badInput(errors.New("dump-logits: --checkpoint and --out are required"))
			}
			ts, meta, err := export.DumpLogitsMeta(checkpoint, manifest, index)
			if err != nil {
				return err
			}
			meta["format"], meta["checkpoint"] = "pt", checkpoint
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if err := safetensors.WriteFile(out, ts, meta); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d tensors (logits %v) to %s\n", len(ts), ts[2].Shape, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&checkpoint, "checkpoint", "", "checkpoint directory (step-NNNNNNN)")
	f.StringVar(&manifest, "manifest", "", "manifest to take the sample from (default: the recipe's data.eval, else data.train)")
	f.IntVar(&index, "index", 0, "sample index in the manifest")
	f.StringVar(&out, "out", "", "safetensors file to write")
	return cmd
}
