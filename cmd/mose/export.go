package main

import (
	"fmt"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/export"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
)

func newExportCmd() *cobra.Command {
	var opt export.Options
	cmd := &cobra.Command{
		Use:   "export --checkpoint PATH --format peft|merged --out DIR",
		Short: "Export a checkpoint as a PEFT adapter or a merged model",
		Long: `export writes a checkpoint's adapters for serving and sharing.

--format peft: adapter_config.json + adapter_model.safetensors with PEFT's key
names; for plain LoRA a complete PEFT adapter, for MoSE the omni expert as a
LoRA plus a sidecar (mose_config.json, mose_adapter.safetensors) holding every
expert, gate, modality weight and trained projector. mose eval reads it back;
the mose_hf Python package (python/) runs it exactly in transformers.

--format merged: a new model dir (config, safetensors shards + index, tokenizer)
with the deltas folded into W0 in float32, shard by shard. Exact for plain LoRA
and a single-expert omni group; MoSE's routed experts need --approximate
--calibration MANIFEST, which merges their expected coefficients and writes
merge_report.json with the merged model's label agreement and logit KL.

Every export holds a README.md saying which loader gives what. Nothing is left
behind on error; an existing --out needs --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opt.Checkpoint == "" {
				return badInput(fmt.Errorf("export: --checkpoint is required"))
			}
			opt.Log = logrus.StandardLogger()
			res, err := export.Export(cmd.Context(), opt)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "exported %s as %s to %s\n", opt.Checkpoint, opt.Format, res.Out)
			if opt.Format == export.FormatPEFT && res.Method == experts.MethodMoSE {
				if res.Omni {
					fmt.Fprintln(out, export.PEFTOnlyNoteOmni)
				} else {
					fmt.Fprintln(out, export.PEFTOnlyNote)
				}
			}
			if r := res.Report; r != nil && r.LabelAgreement != nil {
				fmt.Fprintf(out, "approximate merge on %s (%d samples, %d tokens): label agreement %.4f, mean logit KL %.4g nats\n",
					r.Calibration, r.Samples, r.Tokens, *r.LabelAgreement, *r.MeanLogitKL)
			}
			if r := res.Report; r != nil && r.QuantizedFidelity != nil {
				q := r.QuantizedFidelity
				fmt.Fprintf(out, "base trained %s, merged dequantized to its stored dtype: vs the %s model with adapters on %d tokens, max |logit diff| %.4g, mean logit KL %.4g nats\n",
					r.QuantizedBase, r.QuantizedBase, q.Tokens, q.MaxAbsLogitDiff, q.MeanLogitKL)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opt.Checkpoint, "checkpoint", "", "checkpoint directory (step-NNNNNNN)")
	f.StringVar(&opt.Format, "format", "peft", "peft or merged")
	f.StringVar(&opt.Out, "out", "", "output directory")
	f.BoolVar(&opt.Force, "force", false, "replace an existing --out")
	f.BoolVar(&opt.Approximate, "approximate", false, "merged: also fold routed experts with expected coefficients")
	f.StringVar(&opt.Calibration, "calibration", "", "merged --approximate: manifest to measure expected coefficients and fidelity on")
	return cmd
}
