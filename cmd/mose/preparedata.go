package main

import (
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mose-llm/mose/internal/dist"
	"github.com/mose-llm/mose/stack"
)

func newPrepareDataCmd() *cobra.Command {
	var noProgress bool
	cmd := &cobra.Command{
		Use:   "prepare-data --recipe R [--set k=v]...",
		Short: "Fill a Qwen2.5-Omni run's data cache (processor and encoder outputs) ahead of training",
		Long: `prepare-data fills the data cache (data.cache_dir, docs/media.md) of the recipe's
data.train and data.eval manifests: every media sample is decoded and processed (in
parallel, data.workers) into <cache_dir>/proc, and every sample's tower outputs are
computed (in batches of train.batch_size) into <cache_dir>/enc. Entries already there are
verified and kept; a bad one is removed and recomputed. Training fills the same cache
lazily; this command moves the work ahead of it. Under a data-parallel launcher's
environment (WORLD_SIZE, RANK) rank r fills the samples i with i % WORLD_SIZE == r.
A bad media file exits 2 naming it, and leaves no entry.`,
		Args: cobra.NoArgs,
	}
	rf := addRecipeFlags(cmd)
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "no progress bar, even on a terminal")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := rf.load()
		if err != nil {
			return err
		}
		if !stack.IsOmniDir(cfg.Model.Path) {
			return badInput(fmt.Errorf("model.path %s: prepare-data fills a Qwen2.5-Omni model's data cache; this is not one (a LLaMA-family model reads feature files)", cfg.Model.Path))
		}
		rank, world := 0, 1
		if dc, ok, err := dist.FromEnv(os.Getenv); err != nil {
			return badInput(err)
		} else if ok {
			rank, world = dc.Rank, dc.World
		}
		log := logrus.StandardLogger()
		var bar *termBar
		if !noProgress && term.IsTerminal(int(os.Stderr.Fd())) {
			bar = &termBar{w: os.Stderr}
			log.SetOutput(bar) // log lines above the progress line
		}
		setDataHooks(log, bar)
		c, err := stack.Build(cfg, stack.NoData)
		if err != nil {
			return err
		}
		defer c.Close()
		dir, _ := stack.DataCacheDir(cfg)
		for _, m := range []struct{ key, path string }{{"data.train", cfg.Data.Train}, {"data.eval", cfg.Data.Eval}} {
			if m.path == "" {
				continue
			}
			res, err := c.PrepareData(m.key, m.path, rank, world)
			if bar != nil {
				bar.Done()
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d samples (rank %d of %d): %d processed, %d tower outputs computed, %d found in %s\n",
				m.key, res.Samples, rank, world, res.Made, res.Misses, res.Hits, dir)
		}
		return nil
	}
	return cmd
}

// setDataHooks reports the data cache (stack.DataHooks) through log
// (warnings) and bar (a progress line), or, with no bar, a log line when a
// manifest's samples are all done.
func setDataHooks(log *logrus.Logger, bar *termBar) {
	stack.DataHooks.Warn = func(msg string) { log.Warn(msg) }
	stack.DataHooks.Progress = func(what string, done, total int) {
		if bar != nil {
			bar.Draw(fmt.Sprintf("data cache: %s: %d/%d samples", what, done, total))
		} else if done == total {
			log.WithField("manifest", what).Infof("data cache: %d/%d samples done", done, total)
		}
	}
}
