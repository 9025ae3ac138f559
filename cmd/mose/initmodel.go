package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/data/synth"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/model"
)

func init() { subcommands = append(subcommands, newInitModelCmd) }

// modelPresets are the decoder sizes of init-model's presets; the modality
// inputs come from the synth preset of the same name.
var modelPresets = map[string]model.Config{
	"tiny": {ModelType: "llama", HiddenSize: 128, IntermediateSize: 344, NumLayers: 4,
		NumHeads: 4, NumKVHeads: 2, RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 1024, HiddenAct: "silu"},
	"small": {ModelType: "llama", HiddenSize: 512, IntermediateSize: 1376, NumLayers: 8,
		NumHeads: 8, NumKVHeads: 4, RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 2048, HiddenAct: "silu"},
}

func newInitModelCmd() *cobra.Command {
	var (
		preset, out, dtype           string
		seed                         uint64
		std                          float64
		hidden, layers, inter, shard int
		force                        bool
	)
	cmd := &cobra.Command{
		Use:   "init-model --preset tiny|small --out DIR",
		Short: "Write a complete random model dir (config, weights, tokenizer) for the synthetic data",
		Long: `init-model writes a HF-layout model directory with random weights: config.json
(LlamaConfig keys plus a "mose" section with the preset's modality inputs, prompt
and labels), model.safetensors (or shards), and a LLaMA-2-style byte-fallback BPE
tokenizer.json covering the synthetic subtitles and labels. transformers and
tokenizers load it too. tiny: d=128, 4 layers; small: d=512, 8 layers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return badInput(errors.New("init-model: --out is required"))
			}
			cfg, ok := modelPresets[preset]
			if !ok {
				return badInput(fmt.Errorf("init-model: unknown --preset %q (want tiny or small)", preset))
			}
			p, err := synth.LookupPreset(preset)
			if err != nil {
				return badInput(err)
			}
			if hidden > 0 {
				cfg.HiddenSize = hidden
			}
			if layers > 0 {
				cfg.NumLayers = layers
			}
			if inter > 0 {
				cfg.IntermediateSize = inter
			}
			dt := map[string]safetensors.DType{"float32": safetensors.F32, "bfloat16": safetensors.BF16}[dtype]
			if dt == "" {
				return badInput(fmt.Errorf("init-model: --dtype %q (want float32 or bfloat16)", dtype))
			}
			tok, err := tinyTokenizer()
			if err != nil {
				return err
			}
			t, err := tokenizer.Parse(tok)
			if err != nil {
				return err
			}
			cfg.VocabSize = t.VocabSize()
			spec := p.Spec()
			for _, in := range spec.Inputs {
				cfg.Projectors = append(cfg.Projectors, model.ProjectorConfig{Name: in.Name, Dim: in.Dim, Kind: in.Projector})
			}
			cfg = cfg.WithDefaults()
			mose, err := json.Marshal(spec)
			if err != nil {
				return err
			}
			if err := prepareOut(out, force); err != nil {
				return err
			}
			tmp := out + ".tmp"
			os.RemoveAll(tmp)
			opt := model.RandomOptions{Seed: seed, Std: std, DType: dt, Mose: mose, MaxShardSize: int64(shard) << 20,
				Extra: map[string]any{"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": padID(t)}}
			if err := model.WriteRandom(tmp, cfg, opt); err != nil {
				os.RemoveAll(tmp)
				return fmt.Errorf("init-model: %w", err)
			}
			if err := os.WriteFile(filepath.Join(tmp, "tokenizer.json"), tok, 0o644); err != nil {
				os.RemoveAll(tmp)
				return err
			}
			os.RemoveAll(out)
			if err := os.Rename(tmp, out); err != nil {
				return err
			}
			logrus.WithFields(logrus.Fields{"dir": out, "preset": preset, "params": cfg.ParamCount(),
				"vocab": cfg.VocabSize, "seed": seed}).Info("random model written")
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s model (%d parameters, vocab %d) to %s\n",
				preset, cfg.ParamCount(), cfg.VocabSize, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&preset, "preset", "tiny", "model size and inputs: tiny or small")
	f.StringVar(&out, "out", "", "output model directory")
	f.Uint64Var(&seed, "seed", 1, "random seed of the weights")
	f.Float64Var(&std, "std", 0.02, "std of the normal init (transformers' initializer_range)")
	f.StringVar(&dtype, "dtype", "float32", "weight dtype on disk: float32 or bfloat16")
	f.IntVar(&hidden, "hidden", 0, "override the preset's hidden size")
	f.IntVar(&layers, "layers", 0, "override the preset's number of layers")
	f.IntVar(&inter, "intermediate", 0, "override the preset's MLP size")
	f.IntVar(&shard, "shard-mb", 0, "split the weights into shards of this many MB (0: one file)")
	f.BoolVar(&force, "force", false, "replace an existing --out")
	return cmd
}

// tinyTokenizer builds the LLaMA-2-style tokenizer of the synthetic models.
func tinyTokenizer() ([]byte, error) {
	v := synth.Vocabulary()
	special := slices.DeleteFunc(slices.Clone(v.Special), func(s string) bool {
		return s == "<s>" || s == "</s>" || s == "<unk>"
	})
	return tokenizer.BuildTinySpec(tokenizer.TinySpec{Words: v.Words, Special: append(special, "<pad>")})
}

func padID(t *tokenizer.Tokenizer) int32 {
	id, _ := t.TokenID("<pad>")
	return id
}

// prepareOut refuses an existing non-empty out unless force.
func prepareOut(out string, force bool) error {
	entries, err := os.ReadDir(out)
	if err == nil && len(entries) > 0 && !force {
		return badInput(fmt.Errorf("%s exists and is not empty (use --force to replace it)", out))
	}
	return nil
}
