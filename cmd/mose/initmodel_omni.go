package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/model/omni"
)

// omniPresetNames lists omni.Presets' names, sorted.
func omniPresetNames() []string {
	var names []string
	for n := range omni.Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// initOmniModel is init-model for an omni preset: a random Qwen2.5-Omni
// thinker (thinker-only layout) with its preset's tokenizer
// (omniproc.PresetTokenizerJSON). overrides names the size
// flags that were set, which the omni presets do not take.
func initOmniModel(cmd *cobra.Command, preset, out string, dt safetensors.DType, seed uint64, std float64, force bool, overrides []string) error {
	if len(overrides) > 0 {
		return badInput(fmt.Errorf("init-model: %s not supported with --preset %s", strings.Join(overrides, ", "), preset))
	}
	cfg := omni.Presets[preset]
	if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
		if !force {
			return badInput(fmt.Errorf("init-model: %s exists and is not empty (use --force to replace it)", out))
		}
		if err := os.RemoveAll(out); err != nil {
			return err
		}
	}
	if err := omni.WriteRandom(out, cfg, seed, std, dt); err != nil {
		return badInput(fmt.Errorf("init-model: %w", err))
	}
	tj, err := omniproc.PresetTokenizerJSON(preset)
	if err == nil {
		err = fsutil.WriteBytes(filepath.Join(out, "tokenizer.json"), tj)
	}
	if err != nil {
		return fmt.Errorf("init-model: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s Qwen2.5-Omni thinker (%d parameters, vocab %d) to %s\n",
		preset, cfg.ParamCount(), cfg.Text.VocabSize, out)
	return nil
}

// isOmniPreset reports whether preset is one of omni.Presets.
func isOmniPreset(preset string) bool { return slices.Contains(omniPresetNames(), preset) }
