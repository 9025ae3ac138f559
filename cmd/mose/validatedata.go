package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/tokenizer"
)

// loadTokenizer opens a tokenizer.json for validate-data's token lengths
// (a variable so that tests can substitute one).
var loadTokenizer = func(path string) (data.Tokenizer, error) {
	t, err := tokenizer.Load(path)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func newValidateDataCmd() *cobra.Command {
	var (
		manifest, modelDir, tokPath string
		opt                         data.ValidateOptions
	)
	cmd := &cobra.Command{
		Use:   "validate-data --manifest FILE --model DIR",
		Short: "Check a dataset against a model and summarise it",
		Long: `validate-data reads every line of a manifest and every feature file it names,
checks them against the modality inputs, labels and prompt in the "mose" section
of DIR/config.json, and prints counts per subset and label, token lengths
(feature slots included) and every problem found. It exits 2 if there is any.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manifest == "" || modelDir == "" {
				return badInput(errors.New("validate-data: --manifest and --model are required"))
			}
			spec, err := data.ReadModelSpec(modelDir)
			if err != nil {
				return badInput(err)
			}
			var tok data.Tokenizer
			if tokPath == "" {
				tokPath = filepath.Join(modelDir, "tokenizer.json")
			}
			switch _, statErr := os.Stat(tokPath); {
			case errors.Is(statErr, fs.ErrNotExist):
				logrus.WithField("path", tokPath).Warn("no tokenizer: token lengths are not computed")
			default:
				if tok, err = loadTokenizer(tokPath); err != nil {
					return badInput(fmt.Errorf("tokenizer %s: %w", tokPath, err))
				}
			}
			rep, err := data.Validate(manifest, spec, tok, opt)
			if err != nil {
				return badInput(err)
			}
			if err := rep.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			if n := rep.Problems.Len(); n > 0 {
				return badInput(fmt.Errorf("validate-data: %d problem(s) in %s", n, manifest))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&manifest, "manifest", "", "manifest (JSONL) to check")
	f.StringVar(&modelDir, "model", "", "model directory whose config.json has a \"mose\" section")
	f.StringVar(&tokPath, "tokenizer", "", "tokenizer.json (default: DIR/tokenizer.json)")
	f.StringVar(&opt.Root, "root", "", "data root (default: the manifest's directory)")
	f.IntVar(&opt.MaxLen, "max-len", 0, "maximum sequence length; longer samples lose subtitle text (0: none)")
	f.BoolVar(&opt.HeadersOnly, "headers-only", false, "check dtype and shape from headers only (no NaN/Inf scan)")
	f.IntVar(&opt.Workers, "workers", 4, "parallel file readers")
	return cmd
}
