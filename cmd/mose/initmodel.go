package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/data/synth"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/stack"
)

func newInitModelCmd() *cobra.Command {
	var (
		out, dtype string
		o          stack.InitModel
		force      bool
		shardMB    int
		size       string
	)
	cmd := &cobra.Command{
		Use:   "init-model --preset tiny|small|omni-tiny|omni-small --out DIR",
		Short: "Write a complete random model dir (config, weights, tokenizer) for the synthetic data",
		Long: `init-model writes a HF-layout model directory with random weights: config.json
(LlamaConfig keys plus a "mose" section with the preset's modality inputs, prompt
and labels), model.safetensors (or shards), and a LLaMA-2-style byte-fallback BPE
tokenizer.json covering the synthetic subtitles and labels. transformers and
tokenizers load it too (scripts/checks/check_model_dir.py). tiny: d=128, 4 layers;
small: d=512, 8 layers. --size 1b is a LLaMA-3.2-1B-shaped decoder (d=2048,
16 layers, MLP 8192, 32 heads, 8 KV heads; about 1.0B parameters with the
synthetic vocabulary) on the small preset's inputs, for throughput benchmarks;
--hidden, --layers, --intermediate, --heads and --kv-heads override single sizes.

omni-tiny and omni-small write a random Qwen2.5-Omni thinker instead (config.json
in transformers 5's layout and model.safetensors): d=64 with a 512-token
vocabulary (special tokens at 500-509) and a Qwen2-style tokenizer.json (so that
mose preprocess runs on it), or d=256 with Qwen2.5-Omni's vocabulary and special
token ids and no tokenizer; both take the real processor's media.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return badInput(errors.New("init-model: --out is required"))
			}
			o.DType = map[string]safetensors.DType{"float32": safetensors.F32, "bfloat16": safetensors.BF16}[dtype]
			if o.DType == "" {
				return badInput(fmt.Errorf("init-model: --dtype %q (want float32 or bfloat16)", dtype))
			}
			if isOmniPreset(o.Preset) {
				var set []string
				for _, name := range []string{"hidden", "layers", "intermediate", "heads", "kv-heads", "size", "shard-mb", "visual-tokens"} {
					if cmd.Flags().Changed(name) {
						set = append(set, "--"+name)
					}
				}
				return initOmniModel(cmd, o.Preset, out, o.DType, o.Seed, o.Std, force, set)
			}
			if _, ok := stack.ModelPresets[o.Preset]; !ok {
				return badInput(fmt.Errorf("init-model: unknown --preset %q (want tiny, small, %s)", o.Preset, strings.Join(omniPresetNames(), " or ")))
			}
			if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
				if !force {
					return badInput(fmt.Errorf("init-model: %s exists and is not empty (use --force to replace it)", out))
				}
				if err := os.RemoveAll(out); err != nil {
					return err
				}
			}
			if o.VisualTokens < 0 || o.VisualTokens > synth.MaxVisualTokens {
				return badInput(fmt.Errorf("init-model: --visual-tokens %d not in [1, %d] (or 0)", o.VisualTokens, synth.MaxVisualTokens))
			}
			if err := applySize(&o, size); err != nil {
				return badInput(err)
			}
			o.ShardBytes = int64(shardMB) << 20
			cfg, err := stack.InitModelDir(out, o)
			if err != nil {
				return fmt.Errorf("init-model: %w", err)
			}
			logrus.WithFields(logrus.Fields{"dir": out, "preset": o.Preset, "params": cfg.ParamCount(),
				"vocab": cfg.VocabSize, "seed": o.Seed}).Info("random model written")
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s model (%d parameters, vocab %d) to %s\n",
				o.Preset, cfg.ParamCount(), cfg.VocabSize, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Preset, "preset", "tiny", "model size and inputs: tiny or small, or a Qwen2.5-Omni thinker: omni-tiny or omni-small")
	f.StringVar(&out, "out", "", "output model directory")
	f.Uint64Var(&o.Seed, "seed", 1, "random seed of the weights")
	f.Float64Var(&o.Std, "std", 0.02, "std of the normal init (transformers' initializer_range)")
	f.StringVar(&dtype, "dtype", "float32", "weight dtype on disk: float32 or bfloat16")
	f.IntVar(&o.Hidden, "hidden", 0, "override the preset's hidden size")
	f.IntVar(&o.Layers, "layers", 0, "override the preset's number of layers")
	f.IntVar(&o.Intermediate, "intermediate", 0, "override the preset's MLP size")
	f.IntVar(&o.Heads, "heads", 0, "override the preset's attention heads")
	f.IntVar(&o.KVHeads, "kv-heads", 0, "override the preset's key/value heads (GQA)")
	f.StringVar(&size, "size", "", "a named size on top of the preset: 1b (flags above override it)")
	f.IntVar(&shardMB, "shard-mb", 0, "split the weights into shards of this many MB (0: one file)")
	f.IntVar(&o.VisualTokens, "visual-tokens", 0, "visual tokens per sample (0: the preset's; synth-data --visual-tokens must match)")
	f.BoolVar(&force, "force", false, "replace an existing --out")
	return cmd
}

// modelSizes are named decoder shapes for `init-model --size`, applied on top
// of a preset (whose modality inputs and vocabulary stay).
var modelSizes = map[string]stack.InitModel{
	// LLaMA-3.2-1B's decoder shape: with the synthetic vocabulary, about 1.0B parameters.
	"1b": {Hidden: 2048, Layers: 16, Intermediate: 8192, Heads: 32, KVHeads: 8},
}

// applySize fills the sizes of o that its flags left at 0 from the named size.
func applySize(o *stack.InitModel, size string) error {
	if size == "" {
		return nil
	}
	s, ok := modelSizes[size]
	if !ok {
		return fmt.Errorf("init-model: unknown --size %q (want 1b)", size)
	}
	for _, f := range []struct {
		dst *int
		v   int
	}{{&o.Hidden, s.Hidden}, {&o.Layers, s.Layers},
		{&o.Intermediate, s.Intermediate}, {&o.Heads, s.Heads}, {&o.KVHeads, s.KVHeads}} {
		if *f.dst == 0 {
			*f.dst = f.v
		}
	}
	return nil
}
