package main

import (
	"os"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mose-llm/mose/trainer"
)

func init() { subcommands = append(subcommands, newTrainCmd) }

func newTrainCmd() *cobra.Command {
	var opt trainer.Options
	var noProgress bool
	cmd := &cobra.Command{
		Use:   "train --recipe F [--set key=value ...] [--resume auto|PATH]",
		Short: "Train adapters with a recipe",
		Long: `train builds the frozen model, injects the adapters (MoSE or plain LoRA), and
trains them as the recipe says, writing metrics.jsonl, checkpoints
(<output_dir>/checkpoints/step-NNNNNNN/) and plots into run.output_dir.

--resume auto continues from the newest complete checkpoint (or starts fresh
if there is none); --resume PATH from that checkpoint. Resuming refuses a
recipe changed in a way that breaks exactness unless --allow-recipe-change.
SIGINT/SIGTERM finish the current step, checkpoint and exit 130/143.`,
		Args: cobra.NoArgs,
	}
	rf := addRecipeFlags(cmd)
	cmd.Flags().StringVar(&opt.Resume, "resume", "", "auto, or a checkpoint directory")
	cmd.Flags().BoolVar(&opt.AllowRecipeChange, "allow-recipe-change", false, "resume even if the recipe changed in keys that break exact resume")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "no progress bar, even on a terminal")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := rf.load()
		if err != nil {
			return err
		}
		opt.Version = version
		opt.Log = logrus.StandardLogger()
		if !noProgress && term.IsTerminal(int(os.Stderr.Fd())) {
			opt.Progress = os.Stderr
		}
		res, err := trainer.Run(cmd.Context(), cfg, opt)
		if err != nil {
			return err
		}
		if res.Eval != nil {
			return res.Eval.WriteTable(cmd.OutOrStdout())
		}
		return nil
	}
	return cmd
}
