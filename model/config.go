package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/strictjson"
)

// Sentinel errors of model loading; errors wrap them with the file and field.
var (
	// ErrConfig: config.json is missing, malformed or inconsistent.
	ErrConfig = inputerr.New("bad model config")
	// ErrWeights: a tensor is missing or does not match the config.
	ErrWeights = inputerr.New("weights do not match the config")
)

// Config is the part of a HF LlamaConfig (config.json) mose uses, plus the
// projectors of the "mose" section.
type Config struct {
	ModelType        string       `json:"model_type"`
	HiddenSize       int          `json:"hidden_size"`
	IntermediateSize int          `json:"intermediate_size"`
	NumLayers        int          `json:"num_hidden_layers"`
	NumHeads         int          `json:"num_attention_heads"`
	NumKVHeads       int          `json:"num_key_value_heads"` // 0 in the file means NumHeads
	HeadDim          int          `json:"head_dim"`            // 0 in the file means HiddenSize/NumHeads
	RMSNormEps       float64      `json:"rms_norm_eps"`
	RopeTheta        float64      `json:"rope_theta"`
	RopeScaling      *RopeScaling `json:"rope_scaling"`
	// PartialRotaryFactor, when set, must be 1: transformers' LLaMA reads it
	// for the rotary dim but rotates the whole head, so other values break it.
	PartialRotaryFactor   *float64 `json:"partial_rotary_factor,omitempty"`
	VocabSize             int      `json:"vocab_size"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	AttentionBias         bool     `json:"attention_bias"`
	MLPBias               bool     `json:"mlp_bias"`
	HiddenAct             string   `json:"hidden_act"`

	// Sliding-window attention (see window.go): Mistral's sliding_window,
	// Qwen2's use_sliding_window / sliding_window / max_window_layers.
	SlidingWindow    *int `json:"sliding_window,omitempty"`
	UseSlidingWindow bool `json:"use_sliding_window,omitempty"`
	MaxWindowLayers  *int `json:"max_window_layers,omitempty"`

	// HeadDimExplicit, set by model/omni (never from a file), says the
	// attention reads head_dim even on a qwen2 decoder, as Qwen2.5-Omni's
	// thinker does (transformers' plain Qwen2 ignores it).
	HeadDimExplicit bool `json:"-"`

	// Projectors map each modality input's features into the hidden size, in
	// the order of the "mose" section's inputs. Empty for a plain LLM.
	Projectors []ProjectorConfig `json:"-"`
}

// Bounds on the sizes a config.json may give, checked before anything is
// allocated from them: each is far beyond any released model, so that a
// damaged or hostile config is refused by name instead of exhausting memory
// or overflowing a size computation.
const (
	MaxHidden       = 1 << 16 // hidden_size
	MaxIntermediate = 1 << 20 // intermediate_size
	MaxLayers       = 1024    // num_hidden_layers
	MaxHeads        = 1024    // num_attention_heads, num_key_value_heads
	MaxHeadDim      = 1 << 12 // head_dim
	MaxVocab        = 1 << 22 // vocab_size
	MaxPositions    = 1 << 24 // max_position_embeddings
	MaxFeatureDim   = 1 << 16 // a modality input's feature_dim
	MaxInputs       = 64      // modality inputs
)

// RopeScaling is config.json's rope_scaling block. Supported types: "default",
// "linear" and "llama3".
type RopeScaling struct {
	Type                          string  `json:"rope_type"`
	LegacyType                    string  `json:"type"` // older configs
	Factor                        float64 `json:"factor"`
	LowFreqFactor                 float64 `json:"low_freq_factor"`
	HighFreqFactor                float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings float64 `json:"original_max_position_embeddings"`
}

// Kind is the scaling type, from rope_type or the older type key.
func (r *RopeScaling) Kind() string {
	if r == nil {
		return "default"
	}
	if r.Type != "" {
		return r.Type
	}
	if r.LegacyType != "" {
		return r.LegacyType
	}
	return "default"
}

// ProjectorConfig describes one modality input's projector (from the "mose"
// section's inputs: name, feature_dim, projector).
type ProjectorConfig struct {
	Name string `json:"name"`
	Dim  int    `json:"feature_dim"`
	Kind string `json:"projector"` // "linear" (default) or "mlp2"
}

// Projector kinds.
const (
	ProjectorLinear = "linear"
	ProjectorMLP2   = "mlp2"
)

// LoadConfig reads and validates <dir>/config.json.
func LoadConfig(dir string) (Config, error) {
	b, path, err := ReadConfigJSON(dir, ErrConfig)
	if err != nil {
		return Config{}, err
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ReadConfigJSON reads <dir>/config.json (a regular file of at most
// fsutil.MaxConfigSize bytes) and checks its keys strictly (no duplicates);
// it returns the contents and the path. Errors wrap sentinel.
func ReadConfigJSON(dir string, sentinel error) ([]byte, string, error) {
	path := filepath.Join(dir, "config.json")
	b, err := fsutil.ReadRegularLimit(path, fsutil.MaxConfigSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, path, fmt.Errorf("%w: %s does not exist (is %s a model dir?)", sentinel, path, dir)
		}
		return nil, path, fmt.Errorf("%w: %w", sentinel, err)
	}
	if err := strictjson.CheckKeys(b, path, strictjson.All); err != nil {
		return nil, path, fmt.Errorf("%w: %w", sentinel, err)
	}
	return b, path, nil
}

// ParseConfig parses config.json's contents, fills HF's defaults and validates.
func ParseConfig(b []byte) (Config, error) {
	cfg := Config{RMSNormEps: 1e-6, RopeTheta: 10000, HiddenAct: "silu", MaxPositionEmbeddings: 2048}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var extra struct {
		Mose *struct {
			Inputs []ProjectorConfig `json:"inputs"`
		} `json:"mose"`
	}
	if err := json.Unmarshal(b, &extra); err != nil {
		return Config{}, fmt.Errorf("%w: mose: %v", ErrConfig, err)
	}
	if extra.Mose != nil {
		cfg.Projectors = extra.Mose.Inputs
	}
	if err := cfg.applyRopeParameters(b); err != nil {
		return Config{}, err
	}
	cfg = cfg.WithDefaults()
	return cfg, cfg.Validate()
}

// WithDefaults fills what transformers derives when config.json omits it:
// num_key_value_heads = num_attention_heads, head_dim = hidden/heads, and
// linear projectors.
func (c Config) WithDefaults() Config {
	if c.NumKVHeads == 0 {
		c.NumKVHeads = c.NumHeads
	}
	if c.HeadDim == 0 && c.NumHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	c.Projectors = slices.Clone(c.Projectors)
	for i := range c.Projectors {
		if c.Projectors[i].Kind == "" {
			c.Projectors[i].Kind = ProjectorLinear
		}
	}
	return c
}

// Validate checks that the config describes a model mose can run.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	switch c.ModelType {
	case "llama", "qwen2", "mistral":
	default:
		return bad("model_type", "%q is not supported (want llama, qwen2 or mistral)", c.ModelType)
	}
	for _, f := range []struct {
		name string
		v    int
		max  int
	}{{"hidden_size", c.HiddenSize, MaxHidden}, {"intermediate_size", c.IntermediateSize, MaxIntermediate},
		{"num_hidden_layers", c.NumLayers, MaxLayers}, {"num_attention_heads", c.NumHeads, MaxHeads},
		{"num_key_value_heads", c.NumKVHeads, MaxHeads}, {"head_dim", c.HeadDim, MaxHeadDim}, {"vocab_size", c.VocabSize, MaxVocab}} {
		if f.v <= 0 {
			return bad(f.name, "%d, must be > 0", f.v)
		}
		if f.v > f.max {
			return bad(f.name, "%d is beyond mose's bound %d (no model has that many; a damaged or hostile config?)", f.v, f.max)
		}
	}
	if c.MaxPositionEmbeddings < 0 || c.MaxPositionEmbeddings > MaxPositions {
		return bad("max_position_embeddings", "%d is outside [0, %d]", c.MaxPositionEmbeddings, MaxPositions)
	}
	if len(c.Projectors) > MaxInputs {
		return bad("mose.inputs", "%d inputs, beyond mose's bound %d", len(c.Projectors), MaxInputs)
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return bad("num_key_value_heads", "%d does not divide num_attention_heads %d", c.NumKVHeads, c.NumHeads)
	}
	if c.HeadDim%2 != 0 {
		return bad("head_dim", "%d is odd; rotary embeddings need an even head_dim", c.HeadDim)
	}
	if c.RMSNormEps <= 0 || c.RopeTheta <= 0 {
		return bad("rms_norm_eps/rope_theta", "must be > 0")
	}
	if c.HiddenAct != "silu" {
		return bad("hidden_act", "%q is not supported (want silu)", c.HiddenAct)
	}
	if r := c.RopeScaling; r != nil && r.Type != "" && r.LegacyType != "" && r.Type != r.LegacyType {
		// transformers copies type over rope_type; a config that says both is ambiguous.
		return bad("rope_scaling.type", "%q disagrees with rope_type %q", r.LegacyType, r.Type)
	}
	if c.ModelType == "qwen2" && !c.HeadDimExplicit && (c.HiddenSize%c.NumHeads != 0 || c.HeadDim != c.HiddenSize/c.NumHeads) {
		// Qwen2Attention (transformers 4.46) ignores head_dim; its rotary embedding reads it.
		return bad("head_dim", "%d on a qwen2 model: transformers' Qwen2 always uses hidden_size/num_attention_heads (%d/%d)", c.HeadDim, c.HiddenSize, c.NumHeads)
	}
	if p := c.PartialRotaryFactor; p != nil && *p != 1 {
		return bad("partial_rotary_factor", "%g is not supported (mose rotates the whole head: want 1)", *p)
	}
	if k := c.RopeScaling.Kind(); c.ModelType == "mistral" && k != "default" {
		// MistralRotaryEmbedding in transformers 4.46 takes no rope_scaling at all.
		return bad("rope_scaling", "%q on a mistral model: transformers 4.46 ignores rope_scaling for mistral, so mose refuses it rather than guess (remove it, or set model_type llama)", k)
	}
	switch k := c.RopeScaling.Kind(); k {
	case "default":
	case "linear":
		if c.RopeScaling.Factor <= 0 {
			return bad("rope_scaling.factor", "must be > 0")
		}
	case "llama3":
		r := c.RopeScaling
		if r.Factor <= 0 || r.LowFreqFactor <= 0 || r.HighFreqFactor <= r.LowFreqFactor || r.OriginalMaxPositionEmbeddings <= 0 {
			return bad("rope_scaling", "llama3 needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0")
		}
	default:
		return bad("rope_scaling.rope_type", "%q is not supported (want default, linear or llama3)", k)
	}
	if err := c.validateWindow(); err != nil {
		return err
	}
	for i, p := range c.Projectors {
		f := fmt.Sprintf("mose.inputs[%d]", i)
		if p.Name == "" {
			return bad(f+".name", "missing")
		}
		if p.Dim <= 0 || p.Dim > MaxFeatureDim {
			return bad(f+".feature_dim", "%d, must be in [1, %d]", p.Dim, MaxFeatureDim)
		}
		if p.Kind != ProjectorLinear && p.Kind != ProjectorMLP2 {
			return bad(f+".projector", "%q is not supported (want linear or mlp2)", p.Kind)
		}
	}
	return nil
}

// ropeParameterKeys are the keys of transformers 5's rope_parameters that mose
// reads; any other key is refused by name.
var ropeParameterKeys = []string{"rope_type", "type", "rope_theta", "factor", "low_freq_factor",
	"high_freq_factor", "original_max_position_embeddings", "partial_rotary_factor"}

// applyRopeParameters reads transformers 5's rope_parameters block (which
// replaces rope_theta, rope_scaling and partial_rotary_factor in the config.json
// that transformers 5 writes) into c. A config that also has the older keys must
// agree with it; a key mose does not implement is refused by name.
func (c *Config) applyRopeParameters(b []byte) error {
	var raw struct {
		Params    map[string]json.RawMessage `json:"rope_parameters"`
		RopeTheta json.RawMessage            `json:"rope_theta"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%w: rope_parameters: %v", ErrConfig, err)
	}
	if raw.Params == nil {
		return nil
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	for k := range raw.Params {
		if !slices.Contains(ropeParameterKeys, k) {
			return bad("rope_parameters."+k, "not supported (mose reads %v; the rest changes the rotary embedding in ways it does not implement)", ropeParameterKeys)
		}
	}
	var p struct {
		RopeScaling
		Theta   *float64 `json:"rope_theta"`
		Partial *float64 `json:"partial_rotary_factor"`
	}
	pb, _ := json.Marshal(raw.Params)
	if err := json.Unmarshal(pb, &p); err != nil {
		return bad("rope_parameters", "%v", err)
	}
	if p.Theta != nil {
		if given := len(raw.RopeTheta) > 0 && string(raw.RopeTheta) != "null"; given && c.RopeTheta != *p.Theta {
			return bad("rope_theta", "%g disagrees with rope_parameters.rope_theta %g", c.RopeTheta, *p.Theta)
		}
		c.RopeTheta = *p.Theta
	}
	if p.Partial != nil {
		if c.PartialRotaryFactor != nil && *c.PartialRotaryFactor != *p.Partial {
			return bad("partial_rotary_factor", "%g disagrees with rope_parameters.partial_rotary_factor %g", *c.PartialRotaryFactor, *p.Partial)
		}
		c.PartialRotaryFactor = p.Partial
	}
	scaling := p.RopeScaling
	if c.RopeScaling != nil {
		old := *c.RopeScaling
		if old.Kind() != scaling.Kind() || old.Factor != scaling.Factor || old.LowFreqFactor != scaling.LowFreqFactor ||
			old.HighFreqFactor != scaling.HighFreqFactor || old.OriginalMaxPositionEmbeddings != scaling.OriginalMaxPositionEmbeddings {
			return bad("rope_scaling", "disagrees with rope_parameters (%s vs %s): a config.json should carry one of them", old.Kind(), scaling.Kind())
		}
	}
	c.RopeScaling = &scaling
	return nil
}
