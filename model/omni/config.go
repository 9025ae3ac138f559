package omni

import (
	"encoding/json"
	"fmt"

	"github.com/mose-llm/mose/model"
)

// Sentinel errors: the model package's, so that callers test one class.
var (
	// ErrConfig: config.json is missing, malformed, unsupported or inconsistent.
	ErrConfig = model.ErrConfig
	// ErrWeights: a tensor is missing, extra or does not match the config.
	ErrWeights = model.ErrWeights
)

// Config is a Qwen2.5-Omni thinker's configuration: the thinker_config of a
// full Qwen2.5-Omni config.json, or the top level of a thinker-only save.
type Config struct {
	Text   TextConfig
	Audio  AudioConfig
	Vision VisionConfig
	Tokens TokenIDs

	PositionIDPerSeconds int  // position_id_per_seconds: TMRoPE time positions per second (25)
	SecondsPerChunk      int  // seconds_per_chunk: audio/video interleaving chunk (2)
	TieWordEmbeddings    bool // the thinker-level flag: lm_head shares embed_tokens

	// Prefix is "thinker." when the directory holds the full model (thinker,
	// talker and token2wav), "" for a thinker-only save.
	Prefix string
}

// TokenIDs are the special tokens the thinker's layout is made of.
type TokenIDs struct {
	Audio, Image, Video    int   // <|AUDIO|>, <|IMAGE|>, <|VIDEO|>: one per encoder output
	AudioStart, AudioEnd   int   // <|audio_bos|>, <|audio_eos|>
	VisionStart, VisionEnd int   // <|vision_bos|>, <|vision_eos|>
	BOS, EOS, Pad          []int // bos/eos/pad_token_id (a list where config.json gives one)
}

// TextConfig is the thinker's decoder (Qwen2 with q/k/v biases, GQA, TMRoPE).
type TextConfig struct {
	VocabSize, HiddenSize, IntermediateSize int
	NumLayers, NumHeads, NumKVHeads         int
	HeadDim                                 int // head_dim, or hidden_size/num_attention_heads
	RMSNormEps, RopeTheta                   float64
	MRopeSection                            []int // rotary pairs per axis (t, h, w); sums to HeadDim/2
	MaxPositionEmbeddings                   int
}

// AudioConfig is the audio tower (a Whisper-like encoder).
type AudioConfig struct {
	NumMelBins, Layers, Heads, FFNDim, DModel int
	NWindow, OutputDim, MaxSourcePositions    int
}

// VisionConfig is the vision tower (Qwen2.5-VL's windowed ViT).
type VisionConfig struct {
	Depth, HiddenSize, IntermediateSize, NumHeads int
	InChannels, PatchSize, SpatialMergeSize       int
	TemporalPatchSize, WindowSize, OutHiddenSize  int
	FullAttBlockIndexes                           []int
	RopeTheta                                     float64
}

// Bounds on the tower sizes a config may give, far beyond the released
// models (the decoder's are model's), checked before anything is allocated.
const (
	MaxMelBins      = 1024
	MaxTowerLayers  = 256
	MaxTowerWidth   = 1 << 15
	MaxPatch        = 64
	MaxWindow       = 1 << 14
	MaxSourceFrames = 1 << 20
	MaxChannels     = 16
	MaxTimeScale    = 10000
)

// LoadConfig reads and validates <dir>/config.json: a full Qwen2.5-Omni
// config (model_type qwen2_5_omni; only its thinker_config is read) or a
// thinker-only one (qwen2_5_omni_thinker).
func LoadConfig(dir string) (Config, error) {
	b, path, err := model.ReadConfigJSON(dir, ErrConfig)
	if err != nil {
		return Config{}, err
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// IsOmni reports whether config.json's contents describe a Qwen2.5-Omni
// model (full or thinker-only), by model_type alone.
func IsOmni(b []byte) bool {
	top, err := newSection("", b)
	if err != nil {
		return false
	}
	var mt string
	top.str("model_type", &mt)
	return mt == "qwen2_5_omni" || mt == "qwen2_5_omni_thinker"
}

// ParseConfig parses config.json's contents, fills transformers' defaults
// and validates.
func ParseConfig(b []byte) (Config, error) {
	top, err := newSection("", b)
	if err != nil {
		return Config{}, err
	}
	var mt string
	top.str("model_type", &mt)
	var th *section
	var cfg Config
	switch mt {
	case "qwen2_5_omni":
		// The talker and token2wav produce speech; mose never reads them.
		top.inert("talker_config", "token2wav_config", "enable_audio_output", "enable_talker")
		top.inert("mose") // mose's own section (labels, answer), read by data.ReadOmniSpec
		top.generic()
		if th = top.sub("thinker_config"); th == nil && top.err == nil {
			top.fail("thinker_config", "missing")
		}
		if err := top.done(); err != nil {
			return Config{}, err
		}
		cfg.Prefix = "thinker."
		var tmt string
		th.str("model_type", &tmt)
		if tmt != "" && tmt != "qwen2_5_omni_thinker" {
			th.fail("model_type", "%q, want qwen2_5_omni_thinker", tmt)
		}
	case "qwen2_5_omni_thinker":
		th = top
		th.inert("mose") // mose's own section (labels, answer), read by data.ReadOmniSpec
	default:
		return Config{}, fmt.Errorf("%w: model_type: %q is not a Qwen2.5-Omni model (want qwen2_5_omni or qwen2_5_omni_thinker)", ErrConfig, mt)
	}
	if err := cfg.parseThinker(th); err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// parseThinker reads the thinker section with transformers' defaults.
func (c *Config) parseThinker(th *section) error {
	th.generic()
	th.inert("user_token_id", "vision_token_id", "ignore_index")
	t := &c.Tokens
	t.Audio, t.Image, t.Video = 151646, 151655, 151656
	t.AudioStart, t.AudioEnd = 151647, 151648
	th.alias("audio_token_index", "audio_token_id", &t.Audio)
	th.alias("image_token_index", "image_token_id", &t.Image)
	th.alias("video_token_index", "video_token_id", &t.Video)
	th.int("audio_start_token_id", &t.AudioStart)
	th.int("audio_end_token_id", &t.AudioEnd)
	// transformers' class has no default for these two: get_rope_index
	// reads vision_start_token_id, so a config without it cannot place images.
	if !th.int("vision_start_token_id", &t.VisionStart) && th.err == nil {
		th.fail("vision_start_token_id", "missing")
	}
	t.VisionEnd = -1
	th.int("vision_end_token_id", &t.VisionEnd)
	t.BOS, t.EOS, t.Pad = th.idList("bos_token_id"), th.idList("eos_token_id"), th.idList("pad_token_id")
	c.PositionIDPerSeconds, c.SecondsPerChunk = 25, 2
	th.int("position_id_per_seconds", &c.PositionIDPerSeconds)
	th.int("seconds_per_chunk", &c.SecondsPerChunk)
	th.bool("tie_word_embeddings", &c.TieWordEmbeddings)
	text, audio, vision := th.sub("text_config"), th.sub("audio_config"), th.sub("vision_config")
	if err := th.done(); err != nil {
		return err
	}
	for _, p := range []struct {
		s    *section
		name string
		f    func(*section)
	}{{text, "text_config", c.parseText}, {audio, "audio_config", c.parseAudio}, {vision, "vision_config", c.parseVision}} {
		if p.s == nil {
			// transformers would build the 7B's tower from the class
			// defaults; a config without it is more likely a mistake.
			return fmt.Errorf("%w: %s: missing", ErrConfig, th.key(p.name))
		}
		p.f(p.s)
		if err := p.s.done(); err != nil {
			return err
		}
	}
	return nil
}

// idList reads a token id or a list of them (marking the key read).
func (s *section) idList(k string) []int {
	if !s.has(k) {
		s.used[k] = true
		return nil
	}
	var one int
	if v, _ := s.get(k); len(v) > 0 && v[0] == '[' {
		var l []int
		s.ints(k, &l)
		return l
	}
	s.int(k, &one)
	return []int{one}
}

// parseText reads text_config (Qwen2_5OmniTextConfig's defaults).
func (c *Config) parseText(s *section) {
	s.generic()
	t := &c.Text
	*t = TextConfig{VocabSize: 152064, HiddenSize: 3584, IntermediateSize: 18944, NumLayers: 28,
		NumHeads: 28, NumKVHeads: 4, RMSNormEps: 1e-6, RopeTheta: 1e6, MaxPositionEmbeddings: 32768}
	var mt string
	if s.str("model_type", &mt) {
		s.oneOf("model_type", mt, "qwen2_5_omni_text")
	}
	s.int("vocab_size", &t.VocabSize)
	s.int("hidden_size", &t.HiddenSize)
	s.int("intermediate_size", &t.IntermediateSize)
	s.int("num_hidden_layers", &t.NumLayers)
	s.int("num_attention_heads", &t.NumHeads)
	s.int("num_key_value_heads", &t.NumKVHeads)
	s.int("head_dim", &t.HeadDim)
	s.int("max_position_embeddings", &t.MaxPositionEmbeddings)
	s.float("rms_norm_eps", &t.RMSNormEps)
	var act string
	if s.str("hidden_act", &act) {
		s.oneOf("hidden_act", act, "silu")
	}
	s.wantFloat("attention_dropout", 0, "mose's attention has no dropout: want 0")
	s.wantFloat("partial_rotary_factor", 1, "the thinker rotates the whole head: want 1")
	// The text config's own tie_word_embeddings is not the one transformers
	// ties by (the thinker-level flag is).
	s.inert("tie_word_embeddings", "max_window_layers")
	var sw bool
	if s.bool("use_sliding_window", &sw) && sw {
		s.fail("use_sliding_window", "true is not supported (transformers' eager/SDPA and flash paths window different layers)")
	}
	s.inert("sliding_window") // read by transformers only with use_sliding_window
	var lt []string
	if v, ok := s.get("layer_types"); ok {
		if err := jsonStrings(v, &lt); err != nil {
			s.fail("layer_types", "want a list of strings")
		}
		for _, x := range lt {
			if x != "full_attention" {
				s.fail("layer_types", "%q is not supported (want full_attention in every layer)", x)
				break
			}
		}
	}
	c.parseTextRope(s)
}

// parseTextRope reads the rotary settings: rope_parameters (transformers
// 5) or rope_scaling + rope_theta (older saves, as the released
// checkpoints). Like transformers, rope_scaling wins over rope_parameters,
// and a rope_theta inside the dict over the one beside it.
func (c *Config) parseTextRope(s *section) {
	t := &c.Text
	s.float("rope_theta", &t.RopeTheta)
	rp := s.sub("rope_scaling")
	if rp != nil {
		s.used["rope_parameters"] = true
	} else {
		rp = s.sub("rope_parameters")
	}
	t.MRopeSection = []int{16, 24, 24} // Qwen2_5OmniRotaryEmbedding's default
	if rp == nil {
		return
	}
	kind := ""
	rp.str("rope_type", &kind)
	var legacy string
	if rp.str("type", &legacy) && kind == "" {
		kind = legacy
	}
	if kind != "" {
		rp.oneOf("rope_type", kind, "default")
	}
	rp.float("rope_theta", &t.RopeTheta)
	rp.ints("mrope_section", &t.MRopeSection)
	rp.wantFloat("partial_rotary_factor", 1, "the thinker rotates the whole head: want 1")
	if err := rp.done(); err != nil && s.err == nil {
		s.err = err
	}
}

// parseAudio reads audio_config (Qwen2_5OmniAudioEncoderConfig's defaults).
func (c *Config) parseAudio(s *section) {
	s.generic()
	a := &c.Audio
	*a = AudioConfig{NumMelBins: 128, Layers: 32, Heads: 20, FFNDim: 5120, DModel: 1280,
		NWindow: 100, OutputDim: 3584, MaxSourcePositions: 1500}
	var mt string
	if s.str("model_type", &mt) {
		s.oneOf("model_type", mt, "qwen2_5_omni_audio_encoder")
	}
	s.int("num_mel_bins", &a.NumMelBins)
	s.alias("encoder_layers", "num_hidden_layers", &a.Layers)
	s.alias("encoder_attention_heads", "num_attention_heads", &a.Heads)
	s.alias("encoder_ffn_dim", "intermediate_size", &a.FFNDim)
	s.alias("d_model", "hidden_size", &a.DModel)
	s.int("n_window", &a.NWindow)
	s.int("output_dim", &a.OutputDim)
	s.int("max_source_positions", &a.MaxSourcePositions)
	var act string
	if s.str("activation_function", &act) {
		s.oneOf("activation_function", act, "gelu")
	}
	for _, k := range []string{"dropout", "attention_dropout", "activation_dropout", "encoder_layerdrop"} {
		s.wantFloat(k, 0, "the frozen tower runs without dropout: want 0")
	}
	var scale bool
	if s.bool("scale_embedding", &scale) && scale {
		s.fail("scale_embedding", "true is not supported (want false)")
	}
}

// parseVision reads vision_config (Qwen2_5OmniVisionEncoderConfig's defaults).
func (c *Config) parseVision(s *section) {
	s.generic()
	v := &c.Vision
	*v = VisionConfig{Depth: 32, HiddenSize: 3584, IntermediateSize: 3420, NumHeads: 16, InChannels: 3,
		PatchSize: 14, SpatialMergeSize: 2, TemporalPatchSize: 2, WindowSize: 112, OutHiddenSize: 3584,
		FullAttBlockIndexes: []int{7, 15, 23, 31}, RopeTheta: 10000}
	var mt string
	if s.str("model_type", &mt) {
		s.oneOf("model_type", mt, "qwen2_5_omni_vision_encoder")
	}
	s.alias("depth", "num_hidden_layers", &v.Depth)
	s.int("hidden_size", &v.HiddenSize)
	s.int("intermediate_size", &v.IntermediateSize)
	s.alias("num_heads", "num_attention_heads", &v.NumHeads)
	s.int("in_channels", &v.InChannels)
	s.int("patch_size", &v.PatchSize)
	s.int("spatial_merge_size", &v.SpatialMergeSize)
	s.int("temporal_patch_size", &v.TemporalPatchSize)
	s.int("window_size", &v.WindowSize)
	s.int("out_hidden_size", &v.OutHiddenSize)
	s.ints("fullatt_block_indexes", &v.FullAttBlockIndexes)
	// Older saves carry Qwen2-VL's names beside the ones transformers reads
	// (embed_dim, in_chans, spatial_patch_size); transformers 5 does not read
	// them, nor tokens_per_second (the thinker's position_id_per_seconds
	// sets the time positions), so neither does mose.
	s.inert("embed_dim", "in_chans", "spatial_patch_size", "tokens_per_second")
	var act string
	if s.str("hidden_act", &act) {
		s.oneOf("hidden_act", act, "silu")
	}
	s.float("rope_theta", &v.RopeTheta)
	if rp := s.sub("rope_parameters"); rp != nil {
		kind := ""
		if rp.str("rope_type", &kind) {
			rp.oneOf("rope_type", kind, "axial", "default")
		}
		rp.float("rope_theta", &v.RopeTheta)
		if err := rp.done(); err != nil && s.err == nil {
			s.err = err
		}
	}
}

func jsonStrings(b []byte, dst *[]string) error { return json.Unmarshal(b, dst) }
