package main

import (
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mose-llm/mose/trainer"
)

func newTrainCmd() *cobra.Command {
	var opt trainer.Options
	var noProgress bool
	var nproc int
	cmd := &cobra.Command{
		Use:   "train --recipe F [--set key=value ...] [--resume auto|PATH]",
		Short: "Train adapters with a recipe",
		Long: `train builds the frozen model, injects the adapters (MoSE or plain LoRA), and
trains them as the recipe says, writing metrics.jsonl, checkpoints
(<output_dir>/checkpoints/step-NNNNNNN/) and plots into run.output_dir.

--resume auto continues from the newest complete checkpoint (or starts fresh
if there is none); --resume PATH from that checkpoint. Resuming refuses a
recipe changed in a way that breaks exactness unless --allow-recipe-change.
SIGINT/SIGTERM finish the current step, checkpoint and exit 130/143.

--nproc N trains data-parallel on N processes of this machine (like
torchrun --standalone --nproc-per-node N): each takes train.batch_size
samples of every global batch of N × train.batch_size. Under torchrun or
srun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, or SLURM's
variables) mose joins that launch instead. CUDA ranks use cuda:LOCAL_RANK
and NCCL, CPU ranks Gloo; MOSE_DIST_TIMEOUT (default 60s) bounds every
collective, so a lost rank stops the others.`,
		Args: cobra.NoArgs,
	}
	rf := addRecipeFlags(cmd)
	cmd.Flags().StringVar(&opt.Resume, "resume", "", "auto, or a checkpoint directory")
	cmd.Flags().BoolVar(&opt.AllowRecipeChange, "allow-recipe-change", false, "resume even if the recipe changed in keys that break exact resume")
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "no progress bar, even on a terminal")
	cmd.Flags().IntVar(&nproc, "nproc", 0, "train data-parallel on N processes of this machine (0: one, or the launcher's)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := rf.load()
		if err != nil {
			return err
		}
		if nproc < 0 || nproc > 1024 {
			return badInput(fmt.Errorf("--nproc %d: want 1..1024 (or 0)", nproc))
		}
		if nproc > 0 {
			if err := checkLaunch(cfg, nproc); err != nil {
				return err
			}
			return launchTrain(cmd.Context(), nproc)
		}
		opt.Version = version
		opt.Command = os.Args
		log := logrus.StandardLogger()
		opt.Log = log
		group, err := joinGroup(cmd.Context(), cfg, log)
		if err != nil {
			return err
		}
		if group != nil {
			defer group.Close()
			opt.Group = group
			noProgress = true // rank-prefixed output; rank 0 logs lines
		}
		var bar *termBar
		if !noProgress && term.IsTerminal(int(os.Stderr.Fd())) {
			bar = &termBar{w: os.Stderr}
			log.SetOutput(bar) // log lines above the progress line
			opt.Progress = bar
		}
		setDataHooks(log, bar) // the data cache, filled as the data opens
		res, err := trainer.Run(cmd.Context(), cfg, opt)
		if err != nil {
			return err
		}
		if group != nil && group.Rank() != 0 {
			return nil // rank 0 prints the table
		}
		if res.Eval != nil {
			return res.Eval.WriteTable(cmd.OutOrStdout())
		}
		return nil
	}
	return cmd
}
