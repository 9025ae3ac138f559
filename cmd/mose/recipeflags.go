package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/recipes"
)

// recipeFlags are the --recipe and --set flags shared by train, eval and
// validate.
type recipeFlags struct {
	recipe string
	sets   []string
}

// addRecipeFlags registers --recipe and the repeatable --set on cmd.
func addRecipeFlags(cmd *cobra.Command) *recipeFlags {
	f := &recipeFlags{}
	cmd.Flags().StringVar(&f.recipe, "recipe", "",
		"recipe YAML file, or the name of a shipped recipe ("+strings.Join(recipes.Presets(), ", ")+")")
	// StringArray, not StringSlice: a value such as train.betas=[0.9,0.95]
	// must not be split at its commas.
	cmd.Flags().StringArrayVar(&f.sets, "set", nil,
		"override a recipe key, e.g. --set train.lr=2e-4 --set adapters.targets=[q_proj,v_proj] (repeatable; beats MOSE_* variables and the file)")
	return f
}

// load resolves, merges and validates the recipe. Every error is bad input
// (exit code 2).
func (f *recipeFlags) load() (*recipes.Config, error) {
	cfg, err := recipes.Load(f.recipe, f.sets)
	if err != nil {
		return nil, badInput(err)
	}
	return cfg, nil
}

// loadFor is load for a command that runs on a checkpoint (eval, predict):
// without --recipe it takes the checkpoint's own recipe.yaml (the resolved
// recipe it was trained with; --set and MOSE_* still apply). An export dir
// has none and needs --recipe.
func (f *recipeFlags) loadFor(command, checkpoint string) (*recipes.Config, error) {
	if f.recipe == "" {
		own := filepath.Join(checkpoint, "recipe.yaml")
		if _, err := os.Stat(own); err != nil {
			return nil, badInput(fmt.Errorf("%s: --recipe is required (%s has no recipe.yaml: an export, or not a checkpoint)", command, checkpoint))
		}
		f.recipe = own
	}
	return f.load()
}
