package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/mose-llm/mose/data/omnisynth"
	"github.com/mose-llm/mose/data/synth"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
)

// ModelPresets are the decoder sizes of `mose init-model`; the modality
// inputs come from the synth preset of the same name.
var ModelPresets = map[string]model.Config{
	"tiny": {ModelType: "llama", HiddenSize: 128, IntermediateSize: 344, NumLayers: 4,
		NumHeads: 4, NumKVHeads: 2, RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 1024, HiddenAct: "silu"},
	"small": {ModelType: "llama", HiddenSize: 512, IntermediateSize: 1376, NumLayers: 8,
		NumHeads: 8, NumKVHeads: 4, RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 2048, HiddenAct: "silu"},
}

// InitModel says what random model InitModelDir writes.
type InitModel struct {
	Preset                       string // tiny or small
	Seed                         uint64
	Std                          float64 // normal init std (0: 0.02)
	DType                        safetensors.DType
	Hidden, Layers, Intermediate int   // overrides of the preset (0: keep)
	Heads, KVHeads               int   // overrides of the attention heads (0: keep)
	ShardBytes                   int64 // split weights into shards (0: one file)
	VisualTokens                 int   // visual tokens per sample (0: the preset's)
}

// InitModelDir writes a complete random model dir for the synthetic data:
// config.json with the preset's "mose" section, weights, and a LLaMA-2-style
// tokenizer.json covering the synthetic vocabulary. It writes to a temporary
// dir and renames it to dir, which must not exist (or be empty). It returns
// the config written.
func InitModelDir(dir string, o InitModel) (model.Config, error) {
	cfg, ok := ModelPresets[o.Preset]
	if !ok {
		return model.Config{}, fmt.Errorf("%w: unknown model preset %q (want tiny or small)", recipes.ErrRecipe, o.Preset)
	}
	p, err := synth.LookupPreset(o.Preset)
	if err != nil {
		return model.Config{}, err
	}
	if o.VisualTokens > 0 {
		if p, err = p.WithVisualTokens(o.VisualTokens); err != nil {
			return model.Config{}, err
		}
	}
	if o.Hidden > 0 {
		cfg.HiddenSize = o.Hidden
	}
	if o.Layers > 0 {
		cfg.NumLayers = o.Layers
	}
	if o.Intermediate > 0 {
		cfg.IntermediateSize = o.Intermediate
	}
	if o.Heads > 0 {
		cfg.NumHeads = o.Heads
	}
	if o.KVHeads > 0 {
		cfg.NumKVHeads = o.KVHeads
	}
	tokJSON, err := TinyTokenizer()
	if err != nil {
		return model.Config{}, err
	}
	tok, err := tokenizer.Parse(tokJSON)
	if err != nil {
		return model.Config{}, err
	}
	cfg.VocabSize = tok.VocabSize()
	spec := p.Spec()
	for _, in := range spec.Inputs {
		cfg.Projectors = append(cfg.Projectors, model.ProjectorConfig{Name: in.Name, Dim: in.Dim, Kind: in.Projector})
	}
	cfg = cfg.WithDefaults()
	mose, err := json.Marshal(spec)
	if err != nil {
		return model.Config{}, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return model.Config{}, fmt.Errorf("%s exists and is not empty", dir)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return model.Config{}, err
	}
	tmp := filepath.Clean(dir) + fmt.Sprintf(".tmp-%d", os.Getpid())
	os.RemoveAll(tmp)
	pad, _ := tok.TokenID("<pad>")
	opt := model.RandomOptions{Seed: o.Seed, Std: o.Std, DType: o.DType, Mose: mose, MaxShardSize: o.ShardBytes,
		Extra: map[string]any{"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": pad}}
	err = model.WriteRandom(tmp, cfg, opt)
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, "tokenizer.json"), tokJSON, 0o644)
	}
	if err == nil {
		os.Remove(dir) // an empty dir may stand in the way of the rename
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return model.Config{}, err
	}
	return cfg, nil
}

// TinyTokenizer builds the LLaMA-2-style tokenizer of the synthetic models:
// every synthetic word is one token; markup such as [INST] and <video> are
// special tokens; <pad> is added.
func TinyTokenizer() ([]byte, error) {
	v := synth.Vocabulary()
	special := slices.DeleteFunc(slices.Clone(v.Special), func(s string) bool {
		return s == "<s>" || s == "</s>" || s == "<unk>"
	})
	return tokenizer.BuildTinySpec(tokenizer.TinySpec{Words: v.Words, Special: append(special, "<pad>")})
}

// EnsureModel creates the recipe's model when it is missing and the recipe
// says how (model.create). Like EnsureData, it only ever fills a directory
// it creates: an existing model.path without config.json (an unfinished
// download, a typo of one's own model dir) is refused, never replaced by a
// random model.
func EnsureModel(path, preset string, seed int64) (created bool, err error) {
	if _, err := os.Stat(filepath.Join(path, "config.json")); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if preset == "" {
		return false, fmt.Errorf("%w: model.path %s has no config.json (set model.create to make a random one)", recipes.ErrRecipe, path)
	}
	if _, err := os.Lstat(path); err == nil {
		return false, fmt.Errorf("%w: model.path %s exists but holds no config.json; model.create (%s) makes a random model only in a directory it creates: "+
			"fix model.path, or unset model.create (--set model.create=) to train on your own model", recipes.ErrRecipe, path, preset)
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if _, ok := omni.Presets[preset]; ok {
		err = InitOmniModelDir(path, preset, uint64(seed))
		return err == nil, err
	}
	_, err = InitModelDir(path, InitModel{Preset: preset, Seed: uint64(seed)})
	return err == nil, err
}

// EnsureData generates the synthetic dataset into the train manifest's
// directory when the manifest is missing and data.synth says how. It only
// ever fills a directory it creates: data.train must be <dir>/train.jsonl
// with <dir> not there yet; a missing manifest in an existing directory (a
// typo of one's own data, most likely) is refused, never replaced by
// synthetic data. Whether the run trains on synthetic data is
// SynthDir's to say.
func EnsureData(train, preset string, samples int, seed uint64) (created bool, err error) {
	if _, err := os.Stat(train); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if preset == "" {
		return false, fmt.Errorf("%w: data.train %s does not exist (set data.synth to generate synthetic data)", recipes.ErrRecipe, train)
	}
	dir := filepath.Dir(train)
	if filepath.Base(train) != "train.jsonl" {
		return false, fmt.Errorf("%w: data.train %s does not exist; data.synth (%s) would generate train.jsonl, not %s: fix data.train, or unset data.synth (--set data.synth=) to train on your own data",
			recipes.ErrRecipe, train, preset, filepath.Base(train))
	}
	if _, err := os.Stat(dir); err == nil {
		return false, fmt.Errorf("%w: data.train %s does not exist; data.synth (%s) generates synthetic data only into a directory it creates, and %s exists: fix data.train, or unset data.synth (--set data.synth=) to train on your own data",
			recipes.ErrRecipe, train, preset, dir)
	}
	if preset == OmniSynthPreset || preset == omnisynth.MediaPreset {
		err := generateOmniData(dir, preset, samples, seed)
		return err == nil, err
	}
	p, err := synth.LookupPreset(preset)
	if err != nil {
		return false, fmt.Errorf("%w: data.synth: %v", recipes.ErrRecipe, err)
	}
	cfg := synth.DefaultConfig(p)
	cfg.Seed = seed
	if samples > 0 {
		cfg.Train, cfg.Eval = samples, max(samples/4, 3)
	}
	_, err = synth.Generate(dir, cfg, false)
	return err == nil, err
}

// SynthDir returns the directory of train when it holds a dataset that
// synth-data (or data.synth) generated (its synth.json), else "".
func SynthDir(train string) string {
	dir := filepath.Dir(train)
	if _, err := os.Stat(filepath.Join(dir, "synth.json")); err == nil {
		return dir
	}
	return ""
}
