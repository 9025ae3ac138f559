package omni

import (
	"fmt"

	"github.com/mose-llm/mose/model"
)

// bound is one size with its allowed range.
type bound struct {
	name     string
	v        int
	min, max int
}

// Validate checks that the config describes a thinker mose can run, every
// size within its bound before anything is allocated from it.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, c.field(field), fmt.Sprintf(format, args...))
	}
	t, a, v := c.Text, c.Audio, c.Vision
	hd := t.HeadDim
	if hd == 0 && t.NumHeads > 0 {
		hd = t.HiddenSize / t.NumHeads
	}
	for _, b := range []bound{
		{"text_config.vocab_size", t.VocabSize, 1, model.MaxVocab},
		{"text_config.hidden_size", t.HiddenSize, 1, model.MaxHidden},
		{"text_config.intermediate_size", t.IntermediateSize, 1, model.MaxIntermediate},
		{"text_config.num_hidden_layers", t.NumLayers, 1, model.MaxLayers},
		{"text_config.num_attention_heads", t.NumHeads, 1, model.MaxHeads},
		{"text_config.num_key_value_heads", t.NumKVHeads, 1, model.MaxHeads},
		{"text_config.head_dim", hd, 1, model.MaxHeadDim},
		{"text_config.max_position_embeddings", t.MaxPositionEmbeddings, 0, model.MaxPositions},
		{"audio_config.num_mel_bins", a.NumMelBins, 1, MaxMelBins},
		{"audio_config.encoder_layers", a.Layers, 1, MaxTowerLayers},
		{"audio_config.encoder_attention_heads", a.Heads, 1, model.MaxHeads},
		{"audio_config.encoder_ffn_dim", a.FFNDim, 1, model.MaxIntermediate},
		{"audio_config.d_model", a.DModel, 4, MaxTowerWidth},
		{"audio_config.n_window", a.NWindow, 1, MaxWindow},
		{"audio_config.output_dim", a.OutputDim, 1, model.MaxHidden},
		{"audio_config.max_source_positions", a.MaxSourcePositions, 1, MaxSourceFrames},
		{"vision_config.depth", v.Depth, 1, MaxTowerLayers},
		{"vision_config.hidden_size", v.HiddenSize, 1, MaxTowerWidth},
		{"vision_config.intermediate_size", v.IntermediateSize, 1, model.MaxIntermediate},
		{"vision_config.num_heads", v.NumHeads, 1, model.MaxHeads},
		{"vision_config.in_channels", v.InChannels, 1, MaxChannels},
		{"vision_config.patch_size", v.PatchSize, 1, MaxPatch},
		{"vision_config.spatial_merge_size", v.SpatialMergeSize, 1, MaxPatch},
		{"vision_config.temporal_patch_size", v.TemporalPatchSize, 1, MaxPatch},
		{"vision_config.window_size", v.WindowSize, 1, MaxWindow},
		{"vision_config.out_hidden_size", v.OutHiddenSize, 1, model.MaxHidden},
		{"position_id_per_seconds", c.PositionIDPerSeconds, 1, MaxTimeScale},
		{"seconds_per_chunk", c.SecondsPerChunk, 1, MaxTimeScale},
	} {
		if b.v < b.min || b.v > b.max {
			return bad(b.name, "%d is outside [%d, %d] (a damaged or hostile config?)", b.v, b.min, b.max)
		}
	}
	if t.NumHeads%t.NumKVHeads != 0 {
		return bad("text_config.num_key_value_heads", "%d does not divide num_attention_heads %d", t.NumKVHeads, t.NumHeads)
	}
	if hd%2 != 0 {
		return bad("text_config.head_dim", "%d is odd; rotary embeddings need an even head_dim", hd)
	}
	if t.RMSNormEps <= 0 || t.RopeTheta <= 0 || v.RopeTheta <= 0 {
		return bad("text_config.rms_norm_eps/rope_theta", "must be > 0")
	}
	if len(t.MRopeSection) != 3 {
		return bad("text_config.rope_parameters.mrope_section", "%v: want 3 sections (temporal, height, width)", t.MRopeSection)
	}
	sum := 0
	for _, x := range t.MRopeSection {
		if x < 0 || x > model.MaxHeadDim {
			return bad("text_config.rope_parameters.mrope_section", "%v has a section outside [0, %d]", t.MRopeSection, model.MaxHeadDim)
		}
		sum += x
	}
	if sum != hd/2 {
		return bad("text_config.rope_parameters.mrope_section", "%v sums to %d; the rotary pairs of head_dim %d are %d", t.MRopeSection, sum, hd, hd/2)
	}
	if a.DModel%a.Heads != 0 {
		return bad("audio_config.encoder_attention_heads", "%d does not divide d_model %d", a.Heads, a.DModel)
	}
	if a.DModel%2 != 0 {
		return bad("audio_config.d_model", "%d is odd; the sinusoidal positions need an even width", a.DModel)
	}
	if a.MaxSourcePositions < a.NWindow {
		return bad("audio_config.max_source_positions", "%d is below n_window %d (a chunk has n_window positions after the convolutions)", a.MaxSourcePositions, a.NWindow)
	}
	if v.HiddenSize%v.NumHeads != 0 || (v.HiddenSize/v.NumHeads)%4 != 0 {
		return bad("vision_config.num_heads", "%d: hidden_size %d / num_heads must be a multiple of 4 (the 2D rotary splits each head in four)", v.NumHeads, v.HiddenSize)
	}
	if v.WindowSize/v.SpatialMergeSize/v.PatchSize < 1 {
		return bad("vision_config.window_size", "%d is below spatial_merge_size × patch_size (%d × %d): no window would hold a merged patch", v.WindowSize, v.SpatialMergeSize, v.PatchSize)
	}
	for _, i := range v.FullAttBlockIndexes {
		if i < 0 || i >= v.Depth {
			return bad("vision_config.fullatt_block_indexes", "%d is not a block of depth %d", i, v.Depth)
		}
	}
	ids := c.Tokens
	for _, id := range []struct {
		name string
		v    int
	}{{"audio_token_index", ids.Audio}, {"image_token_index", ids.Image}, {"video_token_index", ids.Video},
		{"audio_start_token_id", ids.AudioStart}, {"audio_end_token_id", ids.AudioEnd},
		{"vision_start_token_id", ids.VisionStart}} {
		if id.v < 0 || id.v >= t.VocabSize {
			return bad(id.name, "%d is not a token of vocab_size %d", id.v, t.VocabSize)
		}
	}
	return nil
}

// field names a thinker field as it appears in config.json.
func (c Config) field(name string) string {
	if c.Prefix != "" {
		return "thinker_config." + name
	}
	return name
}

// headDim is the decoder's head size: head_dim, or hidden/heads.
func (t TextConfig) headDim() int {
	if t.HeadDim > 0 {
		return t.HeadDim
	}
	return t.HiddenSize / t.NumHeads
}

// Decoder returns the model.Config of the thinker's text decoder: a Qwen2
// decoder (q/k/v biases, no o bias) whose attention honours head_dim.
func (c Config) Decoder() model.Config {
	t := c.Text
	return model.Config{
		ModelType: "qwen2", HiddenSize: t.HiddenSize, IntermediateSize: t.IntermediateSize,
		NumLayers: t.NumLayers, NumHeads: t.NumHeads, NumKVHeads: t.NumKVHeads, HeadDim: t.headDim(),
		HeadDimExplicit: true, RMSNormEps: t.RMSNormEps, RopeTheta: t.RopeTheta, VocabSize: t.VocabSize,
		TieWordEmbeddings: c.TieWordEmbeddings, MaxPositionEmbeddings: t.MaxPositionEmbeddings, HiddenAct: "silu",
	}
}
