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
		Long: `validate resolves the recipe (file, MOSE_* variables, --set), loads the model
and checks every tensor against its config, injects the adapters, and opens
the train and eval manifests against the model's inputs and tokenizer. It
trains nothing and writes nothing (model.create / data.synth are not run).`,
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
