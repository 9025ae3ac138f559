package omni

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/inputerr"
)

// fixtureConfig returns omni-a's config.json as a generic map.
func fixtureConfig(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "omni-a", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sub(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m = m[k].(map[string]any)
	}
	return m
}

// wrapFull makes a full Qwen2.5-Omni config.json around a thinker config.
func wrapFull(th map[string]any) map[string]any {
	return map[string]any{
		"architectures": []string{"Qwen2_5OmniModel"}, "model_type": "qwen2_5_omni", "enable_audio_output": true,
		"thinker_config": th, "talker_config": map[string]any{"model_type": "qwen2_5_omni_talker", "anything": 1},
		"token2wav_config": map[string]any{"dit_config": map[string]any{"depth": 22}}, "torch_dtype": "bfloat16",
	}
}

func parse(t *testing.T, m map[string]any) (Config, error) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return ParseConfig(b)
}

// The fixture config parses to the values transformers saved, and the
// same thinker inside a full config gives the same config under "thinker.".
func TestParseConfig(t *testing.T) {
	cfg, err := parse(t, fixtureConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	want := TextConfig{VocabSize: 160, HiddenSize: 32, IntermediateSize: 48, NumLayers: 2, NumHeads: 4, NumKVHeads: 2,
		RMSNormEps: 1e-6, RopeTheta: 10000, MRopeSection: []int{1, 1, 2}, MaxPositionEmbeddings: 1024}
	if got := cfg.Text; !slices.Equal(got.MRopeSection, want.MRopeSection) || got.VocabSize != want.VocabSize ||
		got.HiddenSize != want.HiddenSize || got.NumKVHeads != want.NumKVHeads || got.RopeTheta != want.RopeTheta ||
		got.RMSNormEps != want.RMSNormEps || got.MaxPositionEmbeddings != want.MaxPositionEmbeddings {
		t.Errorf("text config %+v, want %+v", got, want)
	}
	if cfg.Prefix != "" || cfg.TieWordEmbeddings || cfg.Tokens.Audio != 150 || cfg.Tokens.VisionStart != 155 ||
		cfg.Audio.NWindow != 4 || cfg.Vision.WindowSize != 16 || !slices.Equal(cfg.Vision.FullAttBlockIndexes, []int{1}) {
		t.Errorf("config %+v", cfg)
	}
	full, err := parse(t, wrapFull(fixtureConfig(t)))
	if err != nil {
		t.Fatal(err)
	}
	if full.Prefix != "thinker." {
		t.Errorf("full model prefix %q", full.Prefix)
	}
	full.Prefix = ""
	if a, b := jsonOf(t, full), jsonOf(t, cfg); a != b {
		t.Errorf("full config differs:\n%s\n%s", a, b)
	}
}

func jsonOf(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The released checkpoints' config.json (transformers 4.5x) spells the
// rotary settings rope_scaling + rope_theta, and dumps PretrainedConfig's
// generic keys into every sub-config: both read as transformers 5 reads them.
func TestParseLegacyConfig(t *testing.T) {
	m := fixtureConfig(t)
	text := sub(m, "text_config")
	delete(text, "rope_parameters")
	text["rope_scaling"] = map[string]any{"mrope_section": []int{2, 1, 1}, "rope_type": "default", "type": "default"}
	text["rope_theta"] = 1e6
	for _, k := range []string{"text_config", "audio_config", "vision_config"} {
		s := sub(m, k)
		s["pruned_heads"] = map[string]any{}
		s["num_beams"], s["do_sample"], s["id2label"], s["_attn_implementation_autoset"] = 1, false, map[string]any{"0": "L"}, true
	}
	sub(m, "vision_config")["embed_dim"] = 1280 // Qwen2-VL's name, not read by transformers 5
	sub(m, "vision_config")["in_chans"] = 3
	sub(m, "vision_config")["spatial_patch_size"] = 4
	sub(m, "vision_config")["tokens_per_second"] = 25
	delete(sub(m, "vision_config"), "rope_parameters")
	m["init_std"], m["ignore_index"], m["user_token_id"] = 0.02, -100, 872
	cfg, err := parse(t, m)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Text.MRopeSection, []int{2, 1, 1}) || cfg.Text.RopeTheta != 1e6 || cfg.Vision.HiddenSize != 16 {
		t.Errorf("legacy config read as %+v / %+v", cfg.Text, cfg.Vision)
	}
}

// Every unsupported or unknown field that could change the math is refused
// by name, and every size is bounded before anything is allocated.
func TestConfigRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(m map[string]any) map[string]any
		field string
	}{
		{"unknown text field", func(m map[string]any) map[string]any {
			sub(m, "text_config")["attn_logit_softcapping"] = 30.0
			return m
		}, "text_config.attn_logit_softcapping"},
		{"unknown thinker field", func(m map[string]any) map[string]any { m["vision_scale"] = 2; return m }, "vision_scale"},
		{"unknown field in a full model's thinker", func(m map[string]any) map[string]any {
			m["x_factor"] = 1
			return wrapFull(m)
		}, "thinker_config.x_factor"},
		{"unknown top-level field of a full model", func(m map[string]any) map[string]any {
			f := wrapFull(m)
			f["speech_rate"] = 1
			return f
		}, "speech_rate"},
		{"full model without thinker", func(m map[string]any) map[string]any {
			f := wrapFull(m)
			delete(f, "thinker_config")
			return f
		}, "thinker_config"},
		{"wrong thinker model_type", func(m map[string]any) map[string]any {
			m["model_type"] = "qwen2_vl"
			return wrapFull(m)
		}, "thinker_config.model_type"},
		{"not an omni model", func(m map[string]any) map[string]any { m["model_type"] = "llama"; return m }, "model_type"},
		{"yarn rope", func(m map[string]any) map[string]any {
			sub(m, "text_config", "rope_parameters")["rope_type"] = "yarn"
			return m
		}, "rope_parameters.rope_type"},
		{"unknown rope field", func(m map[string]any) map[string]any {
			sub(m, "text_config", "rope_parameters")["factor"] = 4.0
			return m
		}, "rope_parameters.factor"},
		{"mrope_section sum", func(m map[string]any) map[string]any {
			sub(m, "text_config", "rope_parameters")["mrope_section"] = []int{1, 1, 1}
			return m
		}, "mrope_section"},
		{"mrope_section length", func(m map[string]any) map[string]any {
			sub(m, "text_config", "rope_parameters")["mrope_section"] = []int{2, 2}
			return m
		}, "mrope_section"},
		{"sliding window", func(m map[string]any) map[string]any {
			sub(m, "text_config")["use_sliding_window"] = true
			return m
		}, "use_sliding_window"},
		{"sliding layer type", func(m map[string]any) map[string]any {
			sub(m, "text_config")["layer_types"] = []string{"full_attention", "sliding_attention"}
			return m
		}, "layer_types"},
		{"attention dropout", func(m map[string]any) map[string]any {
			sub(m, "text_config")["attention_dropout"] = 0.1
			return m
		}, "text_config.attention_dropout"},
		{"partial rotary", func(m map[string]any) map[string]any {
			sub(m, "text_config")["partial_rotary_factor"] = 0.5
			return m
		}, "partial_rotary_factor"},
		{"gelu decoder", func(m map[string]any) map[string]any {
			sub(m, "text_config")["hidden_act"] = "gelu"
			return m
		}, "text_config.hidden_act"},
		{"relu audio", func(m map[string]any) map[string]any {
			sub(m, "audio_config")["activation_function"] = "relu"
			return m
		}, "audio_config.activation_function"},
		{"audio dropout", func(m map[string]any) map[string]any {
			sub(m, "audio_config")["dropout"] = 0.1
			return m
		}, "audio_config.dropout"},
		{"scaled audio embedding", func(m map[string]any) map[string]any {
			sub(m, "audio_config")["scale_embedding"] = true
			return m
		}, "scale_embedding"},
		{"pruned heads", func(m map[string]any) map[string]any {
			sub(m, "text_config")["pruned_heads"] = map[string]any{"0": []int{1}}
			return m
		}, "text_config.pruned_heads"},
		{"aliases disagree", func(m map[string]any) map[string]any {
			sub(m, "audio_config")["hidden_size"] = 32
			return m
		}, "audio_config.hidden_size"},
		{"vision rope type", func(m map[string]any) map[string]any {
			sub(m, "vision_config", "rope_parameters")["rope_type"] = "dynamic"
			return m
		}, "vision_config.rope_parameters.rope_type"},
		{"no vision_start_token_id", func(m map[string]any) map[string]any {
			delete(m, "vision_start_token_id")
			return m
		}, "vision_start_token_id"},
		{"token id beyond the vocabulary", func(m map[string]any) map[string]any { m["image_token_index"] = 160; return m }, "image_token_index"},
		{"missing audio config", func(m map[string]any) map[string]any { delete(m, "audio_config"); return m }, "audio_config"},
		{"huge vocabulary", func(m map[string]any) map[string]any {
			sub(m, "text_config")["vocab_size"] = 1 << 40
			return m
		}, "text_config.vocab_size"},
		{"negative layers", func(m map[string]any) map[string]any {
			sub(m, "text_config")["num_hidden_layers"] = -2
			return m
		}, "text_config.num_hidden_layers"},
		{"huge audio width", func(m map[string]any) map[string]any {
			sub(m, "audio_config")["d_model"] = 1 << 30
			return m
		}, "audio_config.d_model"},
		{"huge vision depth", func(m map[string]any) map[string]any {
			sub(m, "vision_config")["depth"] = 100000
			return m
		}, "vision_config.depth"},
		{"fractional size", func(m map[string]any) map[string]any {
			sub(m, "text_config")["hidden_size"] = 32.5
			return m
		}, "text_config.hidden_size"},
		{"size as a string", func(m map[string]any) map[string]any {
			sub(m, "audio_config")["n_window"] = "4"
			return m
		}, "audio_config.n_window"},
		{"full attention block out of range", func(m map[string]any) map[string]any {
			sub(m, "vision_config")["fullatt_block_indexes"] = []int{2}
			return m
		}, "fullatt_block_indexes"},
		{"window below n_window", func(m map[string]any) map[string]any {
			sub(m, "audio_config")["max_source_positions"] = 3
			return m
		}, "max_source_positions"},
		{"kv heads", func(m map[string]any) map[string]any {
			sub(m, "text_config")["num_key_value_heads"] = 3
			return m
		}, "num_key_value_heads"},
		{"vision head split", func(m map[string]any) map[string]any {
			sub(m, "vision_config")["num_heads"] = 8
			return m
		}, "vision_config.num_heads"},
		{"window below a merged patch", func(m map[string]any) map[string]any {
			sub(m, "vision_config")["window_size"] = 7
			return m
		}, "vision_config.window_size"},
		{"huge time scale", func(m map[string]any) map[string]any { m["position_id_per_seconds"] = 1 << 20; return m }, "position_id_per_seconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.edit(fixtureConfig(t)))
			if !errors.Is(err, ErrConfig) || !errors.Is(err, inputerr.ErrInput) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

// A repeated key is refused by LoadConfig, naming it.
func TestLoadConfigDuplicateKey(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("testdata", "omni-a", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), `"seconds_per_chunk": 2,`, `"seconds_per_chunk": 2, "seconds_per_chunk": 3,`, 1))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(dir); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "seconds_per_chunk") {
		t.Fatalf("err = %v", err)
	}
	if _, err := LoadConfig(t.TempDir()); !errors.Is(err, ErrConfig) {
		t.Fatalf("missing config.json: err = %v", err)
	}
}
