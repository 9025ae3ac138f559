package omni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/model"
)

// Presets are random thinkers of the right shape for tests and demos
// (mose init-model --preset omni-tiny|omni-small). Both take the real
// processor's media as they are (128 mel bins, n_window 100, 14-pixel
// patches, temporal patch 2, merge 2, windows of 112 pixels); omni-small
// also has Qwen2.5-Omni's vocabulary size and special token ids, so the
// real processor's input_ids fit it, while omni-tiny's vocabulary of 512
// puts the special tokens at 500–509.
var Presets = map[string]Config{
	"omni-tiny":  preset(512, 500, 64, 2, 4, 2, []int{4, 2, 2}, false),
	"omni-small": preset(151936, 0, 256, 4, 4, 2, []int{16, 8, 8}, true),
}

// preset builds a preset thinker: vocab and the special tokens' first id
// (0: Qwen2.5-Omni's own), decoder width, layers, heads, KV heads and
// mrope_section, and tied embeddings; the towers are two layers as wide as
// the decoder.
func preset(vocab, special, hidden, layers, heads, kv int, mrope []int, tied bool) Config {
	tok := TokenIDs{Audio: 151646, Image: 151655, Video: 151656, AudioStart: 151647, AudioEnd: 151648,
		VisionStart: 151652, VisionEnd: 151653, BOS: []int{151644}, EOS: []int{151645}, Pad: []int{151643}}
	if special > 0 {
		s := special
		tok = TokenIDs{Audio: s, Image: s + 1, Video: s + 2, AudioStart: s + 3, AudioEnd: s + 4,
			VisionStart: s + 5, VisionEnd: s + 6, BOS: []int{s + 7}, EOS: []int{s + 8}, Pad: []int{s + 9}}
	}
	return Config{
		Text: TextConfig{VocabSize: vocab, HiddenSize: hidden, IntermediateSize: 2 * hidden, NumLayers: layers,
			NumHeads: heads, NumKVHeads: kv, RMSNormEps: 1e-6, RopeTheta: 1e6, MRopeSection: mrope, MaxPositionEmbeddings: 32768},
		Audio: AudioConfig{NumMelBins: 128, Layers: 2, Heads: 4, FFNDim: 2 * hidden, DModel: hidden, NWindow: 100,
			OutputDim: hidden, MaxSourcePositions: 1500},
		Vision: VisionConfig{Depth: 2, HiddenSize: hidden, IntermediateSize: 2 * hidden, NumHeads: 4, InChannels: 3,
			PatchSize: 14, SpatialMergeSize: 2, TemporalPatchSize: 2, WindowSize: 112, OutHiddenSize: hidden,
			FullAttBlockIndexes: []int{1}, RopeTheta: 10000},
		Tokens: tok, PositionIDPerSeconds: 25, SecondsPerChunk: 2, TieWordEmbeddings: tied,
	}
}

// MarshalConfig returns a thinker-only config.json for c in transformers
// 5's layout (model_type qwen2_5_omni_thinker, rope_parameters).
func (c Config) MarshalConfig(std float64, dtype string) ([]byte, error) {
	t, a, v, k := c.Text, c.Audio, c.Vision, c.Tokens
	text := map[string]any{"model_type": "qwen2_5_omni_text", "vocab_size": t.VocabSize, "hidden_size": t.HiddenSize,
		"intermediate_size": t.IntermediateSize, "num_hidden_layers": t.NumLayers, "num_attention_heads": t.NumHeads,
		"num_key_value_heads": t.NumKVHeads, "hidden_act": "silu", "max_position_embeddings": t.MaxPositionEmbeddings,
		"rms_norm_eps": t.RMSNormEps, "use_sliding_window": false, "attention_dropout": 0.0, "initializer_range": std,
		"rope_parameters": map[string]any{"rope_type": "default", "rope_theta": t.RopeTheta, "mrope_section": t.MRopeSection}}
	if t.HeadDim > 0 {
		text["head_dim"] = t.HeadDim
	}
	audio := map[string]any{"model_type": "qwen2_5_omni_audio_encoder", "num_mel_bins": a.NumMelBins, "encoder_layers": a.Layers,
		"encoder_attention_heads": a.Heads, "encoder_ffn_dim": a.FFNDim, "d_model": a.DModel, "n_window": a.NWindow,
		"output_dim": a.OutputDim, "max_source_positions": a.MaxSourcePositions, "activation_function": "gelu",
		"scale_embedding": false, "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, "initializer_range": std}
	vision := map[string]any{"model_type": "qwen2_5_omni_vision_encoder", "depth": v.Depth, "hidden_size": v.HiddenSize,
		"intermediate_size": v.IntermediateSize, "num_heads": v.NumHeads, "in_channels": v.InChannels, "patch_size": v.PatchSize,
		"spatial_merge_size": v.SpatialMergeSize, "temporal_patch_size": v.TemporalPatchSize, "window_size": v.WindowSize,
		"out_hidden_size": v.OutHiddenSize, "fullatt_block_indexes": v.FullAttBlockIndexes, "hidden_act": "silu",
		"initializer_range": std, "rope_parameters": map[string]any{"rope_type": "axial", "rope_theta": v.RopeTheta}}
	m := map[string]any{"architectures": []string{"Qwen2_5OmniThinkerForConditionalGeneration"},
		"model_type": "qwen2_5_omni_thinker", "text_config": text, "audio_config": audio, "vision_config": vision,
		"audio_token_index": k.Audio, "image_token_index": k.Image, "video_token_index": k.Video,
		"audio_start_token_id": k.AudioStart, "audio_end_token_id": k.AudioEnd, "vision_start_token_id": k.VisionStart,
		"vision_end_token_id": k.VisionEnd, "position_id_per_seconds": c.PositionIDPerSeconds,
		"seconds_per_chunk": c.SecondsPerChunk, "tie_word_embeddings": c.TieWordEmbeddings, "initializer_range": std,
		"dtype": dtype}
	for key, ids := range map[string][]int{"bos_token_id": k.BOS, "eos_token_id": k.EOS, "pad_token_id": k.Pad} {
		switch len(ids) {
		case 0:
		case 1:
			m[key] = ids[0]
		default:
			m[key] = ids
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteRandom writes a thinker-only model dir with random weights for c:
// config.json and model.safetensors, the tensors named as transformers
// saves them. Embeddings and linear weights are N(0, std²), norm weights 1,
// biases 0; dtype is safetensors.F32 or BF16. Tensors are drawn and written
// one at a time. dir must not exist or be empty; on error nothing is left.
func WriteRandom(dir string, c Config, seed uint64, std float64, dtype safetensors.DType) (err error) {
	if dtype != safetensors.F32 && dtype != safetensors.BF16 {
		return fmt.Errorf("%w: random weights in %s (want F32 or BF16)", ErrConfig, dtype)
	}
	if !(std > 0 && std < 10) {
		return fmt.Errorf("%w: std %g (want (0, 10))", ErrConfig, std)
	}
	c.Prefix = ""
	if err := c.Validate(); err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s exists and is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	b, err := c.MarshalConfig(std, map[safetensors.DType]string{safetensors.F32: "float32", safetensors.BF16: "bfloat16"}[dtype])
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		return err
	}
	// The audio tower's bos/eos embedding is never used, but transformers
	// expects it in the checkpoint.
	shapes := append(c.Tensors(), model.TensorShape{Name: "audio_tower.audio_bos_eos_token.weight", Shape: []int64{2, int64(c.Audio.OutputDim)}})
	specs := make([]safetensors.TensorSpec, len(shapes))
	for i, t := range shapes {
		specs[i] = safetensors.TensorSpec{Name: t.Name, DType: dtype, Shape: t.Shape}
	}
	// transformers refuses safetensors files without format "pt" metadata.
	w, err := safetensors.CreateSharded(dir, specs, safetensors.ShardOptions{MaxShardSize: math.MaxInt64, Metadata: map[string]string{"format": "pt"}})
	if err != nil {
		return err
	}
	defer w.Abort()
	rng := rand.New(rand.NewPCG(seed, 0x6f6d6e69))
	for _, t := range shapes {
		n := 1
		for _, d := range t.Shape {
			n *= int(d)
		}
		v := make([]float32, n)
		switch {
		case isNormWeight(t.Name):
			for i := range v {
				v[i] = 1
			}
		case strings.HasSuffix(t.Name, ".bias"):
		default:
			for i := range v {
				v[i] = float32(rng.NormFloat64() * std)
			}
		}
		data := make([]byte, len(v)*dtype.Size())
		if err := safetensors.EncodeFloat32s(data, v, dtype); err != nil {
			return err
		}
		if err := w.WriteTensor(t.Name, data); err != nil {
			return err
		}
	}
	return w.Close()
}

// isNormWeight: the scale of an RMSNorm or LayerNorm.
func isNormWeight(name string) bool {
	return slices.ContainsFunc([]string{"norm.weight", "norm1.weight", "norm2.weight", "ln_q.weight", "ln_post.weight"},
		func(s string) bool { return strings.HasSuffix(name, s) })
}
