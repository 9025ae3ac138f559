package main

import (
	"fmt"

	"github.com/mose-llm/mose/memest"
	"github.com/spf13/cobra"
)

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
input exits 2 naming the file, line, key or tensor.

Last it prints the expected peak memory of a training step on the recipe's
device, with and without train.activation_checkpointing: frozen weights,
adapters with their gradients and AdamW state, the activations of the
longest micro-batch, the logits at the answer positions. It warns (and
still succeeds) when the recipe's setting exceeds the device's available
memory (CUDA: free memory; CPU: MemAvailable).

--memory-only prints only that estimate, from the model's config.json
alone (no weights, tokenizer or data are read; micro-batches of
data.max_len tokens): for a model too large to load where validate runs.`,
		Args: cobra.NoArgs,
	}
	rf := addRecipeFlags(cmd)
	memoryOnly := cmd.Flags().Bool("memory-only", false, "only estimate the peak memory, from the model's config.json (no weights or data read)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := rf.load()
		if err != nil {
			return err
		}
		validate := memest.Validate
		if *memoryOnly {
			validate = memest.FromConfig
		}
		sum, err := validate(cfg)
		if err != nil {
			return err
		}
		fmt.Fprint(cmd.OutOrStdout(), sum)
		return nil
	}
	return cmd
}
