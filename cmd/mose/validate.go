package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/trainer"
)

func init() { subcommands = append(subcommands, newValidateCmd) }

func newValidateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate --recipe F",
		Short: "Check a recipe, its model and its data together, without training",
		Long: `validate resolves the recipe (file, MOSE_* variables, --set) and runs the
checks train runs before it starts: dtype against device, the tokenizer
against the model's vocab_size and pad token, eval.ar.layers against the
model's layers, adapter rank and size against the model's dimensions,
sample lengths against max_position_embeddings, every frozen weight and
every feature value of the train and eval sets for NaN/Inf. Then it loads
the model, checks every tensor against its config, injects the adapters and
opens the manifests against the model's inputs and tokenizer. It trains
nothing and writes nothing (model.create / data.synth are not run). Bad
input exits 2 naming the file, line, key or tensor.`,
		Args: cobra.NoArgs,
	}
	rf := addRecipeFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := rf.load()
		if err != nil {
			return err
		}
		sum, err := trainer.Validate(cfg)
		if err != nil {
			return err
		}
		fmt.Fprint(cmd.OutOrStdout(), sum)
		return nil
	}
	return cmd
}
