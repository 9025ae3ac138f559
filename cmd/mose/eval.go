package main

import (
	"errors"

	"github.com/mose-llm/mose/infer"
	"github.com/spf13/cobra"
)

func newEvalCmd() *cobra.Command {
	var checkpoint, out string
	var confusion bool
	cmd := &cobra.Command{
		Use:   "eval --checkpoint PATH [--recipe F]",
		Short: "Evaluate a checkpoint on the recipe's eval set",
		Long: `eval loads the recipe's model with the adapters of a checkpoint and ranks every
label of every eval sample by the log-likelihood of its answer (score mode).
It prints accuracy (WAR), UAR, weighted and macro F1 per subset and the
conflict gap acc(audio-aligned) − acc(video-aligned), and writes eval.json
(into the checkpoint directory unless --out). The recipe defaults to the
checkpoint's own recipe.yaml; an export needs --recipe. --checkpoint may be a
training checkpoint, a PEFT export, or a merged export (a model dir, run as it
is stored: its deltas folded in, the recipe's model.path and model.quantize
not used).`,
		Args: cobra.NoArgs,
	}
	rf := addRecipeFlags(cmd)
	cmd.Flags().StringVar(&checkpoint, "checkpoint", "", "checkpoint directory (step-NNNNNNN), PEFT export or merged export directory")
	cmd.Flags().StringVar(&out, "out", "", "directory for eval.json (default: the checkpoint)")
	cmd.Flags().BoolVar(&confusion, "confusion", false, "also print the confusion matrix")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if checkpoint == "" {
			return badInput(errors.New("eval: --checkpoint is required"))
		}
		cfg, err := rf.loadFor("eval", checkpoint)
		if err != nil {
			return err
		}
		rep, err := infer.Evaluate(cmd.Context(), cfg, checkpoint, out)
		if err != nil {
			return err
		}
		if err := rep.WriteTable(cmd.OutOrStdout()); err != nil {
			return err
		}
		if confusion {
			return rep.WriteConfusion(cmd.OutOrStdout(), "all")
		}
		return nil
	}
	return cmd
}
