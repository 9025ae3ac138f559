package omni

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
)

// rewrite copies omni-a into a new dir: config.json through cfg (nil keeps
// it), every tensor through edit (renamed, converted, or dropped when edit
// returns false), plus the extra tensors.
func rewrite(t *testing.T, cfg func(map[string]any) map[string]any, edit func(*safetensors.Tensor) bool, extra ...safetensors.Tensor) string {
	t.Helper()
	src := filepath.Join("testdata", "omni-a")
	dir := t.TempDir()
	m := fixtureConfig(t)
	if cfg != nil {
		m = cfg(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, info := range f.Tensors() {
		data, err := f.Read(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		x := safetensors.Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: data}
		if edit == nil || edit(&x) {
			ts = append(ts, x)
		}
	}
	ts = append(ts, extra...)
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nanTensor is a float tensor full of NaN: loading it would poison the model.
func nanTensor(name string) safetensors.Tensor {
	v := []float32{float32(math.NaN()), float32(math.NaN())}
	return safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: []int64{2}, Data: safetensors.Float32sToBytes(v)}
}

// A full Qwen2.5-Omni directory (transformers' full config.json, and
// thinker.* beside talker.* and token2wav.*) loads the thinker alone and gives the thinker-only save's
// logits bit for bit.
func TestLoadFullModel(t *testing.T) {
	fullConfig := func(map[string]any) map[string]any { // the full config.json transformers writes
		b, err := os.ReadFile(filepath.Join("testdata", "omni-a", "full-config.json"))
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	dir := rewrite(t, fullConfig, func(x *safetensors.Tensor) bool { x.Name = "thinker." + x.Name; return true },
		nanTensor("talker.model.layers.0.mlp.up_proj.weight"),
		safetensors.Tensor{Name: "token2wav.code_embed.weight", DType: safetensors.I64, Shape: []int64{1}, Data: make([]byte, 8)})
	full := loadThinker(t, dir, torch.Float32)
	if full.Config.Prefix != "thinker." {
		t.Fatalf("prefix %q", full.Config.Prefix)
	}
	plain := loadThinker(t, filepath.Join("testdata", "omni-a"), torch.Float32)
	fx := openFixture(t, "omni-a")
	a, b := logitsOf(t, full, fx, "multi"), logitsOf(t, plain, fx, "multi")
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d and %d logits", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("logit %d: full model %v, thinker-only %v", i, a[i], b[i])
		}
	}
	if n := len(full.Audio) + len(full.Vision); n != len(full.Config.Audio.tensors())+len(full.Config.Vision.tensors()) {
		t.Errorf("%d tower tensors loaded", n)
	}
}

func logitsOf(t *testing.T, th *Thinker, fx *fixture, c string) []float32 {
	t.Helper()
	var out []float32
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		emb := fx.embeds(s, th, c)
		l := th.Logits(s, fx.inputs(c), emb)
		if err := s.Err(); err != nil {
			return err
		}
		var err error
		out, err = l.Float32s()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Bad checkpoints are refused before anything is loaded, every problem named.
func TestLoadRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   func(map[string]any) map[string]any
		edit  func(*safetensors.Tensor) bool
		extra []safetensors.Tensor
		want  []string
	}{
		{"missing decoder and tower tensors", nil, func(x *safetensors.Tensor) bool {
			return x.Name != "model.layers.1.self_attn.q_proj.bias" && x.Name != "visual.merger.mlp.2.weight"
		}, nil, []string{"missing model.layers.1.self_attn.q_proj.bias", "missing visual.merger.mlp.2.weight"}},
		{"wrong shape", nil, func(x *safetensors.Tensor) bool {
			if x.Name == "audio_tower.conv1.weight" {
				x.Shape = []int64{x.Shape[0], x.Shape[2], x.Shape[1]}
			}
			return true
		}, nil, []string{"audio_tower.conv1.weight: config wants [16 16 3]"}},
		{"integer weight", nil, func(x *safetensors.Tensor) bool {
			if x.Name == "model.norm.weight" {
				x.DType = safetensors.I32
			}
			return true
		}, nil, []string{"model.norm.weight: dtype I32"}},
		{"unknown thinker tensor", nil, nil, []safetensors.Tensor{nanTensor("model.layers.0.self_attn.q_norm.weight")},
			[]string{"model.layers.0.self_attn.q_norm.weight", "not a tensor of this config's thinker"}},
		{"talker tensor in a thinker-only save", nil, nil, []safetensors.Tensor{nanTensor("talker.x")}, []string{"talker.x"}},
		{"full model with an unprefixed tensor", wrapFull, func(x *safetensors.Tensor) bool {
			if x.Name != "lm_head.weight" {
				x.Name = "thinker." + x.Name
			}
			return true
		}, nil, []string{"lm_head.weight (in", `not under "thinker."`, "missing thinker.lm_head.weight"}},
		{"config with one layer more", func(m map[string]any) map[string]any {
			sub(m, "text_config")["num_hidden_layers"] = 3
			sub(m, "text_config")["layer_types"] = []string{"full_attention", "full_attention", "full_attention"}
			return m
		}, nil, nil, []string{"missing model.layers.2.mlp.up_proj.weight"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := rewrite(t, tc.cfg, tc.edit, tc.extra...)
			err := torch.Run(func() error {
				th, err := Load(dir, model.Options{})
				if err == nil {
					th.Close()
				}
				return err
			})
			if !errors.Is(err, ErrWeights) {
				t.Fatalf("err = %v, want ErrWeights", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// bf16 weights load as bf16 (decoder and towers), and the bf16 thinker's
// logits stay near the fp32 reference.
func TestLoadBFloat16(t *testing.T) {
	dir := rewrite(t, nil, func(x *safetensors.Tensor) bool {
		v, err := safetensors.BytesToFloat32s(x.Data)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 2*len(v))
		if err := safetensors.EncodeFloat32s(out, v, safetensors.BF16); err != nil {
			t.Fatal(err)
		}
		x.DType, x.Data = safetensors.BF16, out
		return true
	})
	th := loadThinker(t, dir, torch.BFloat16)
	for name, w := range map[string]*torch.Tensor{"embed_tokens": th.Decoder.EmbedTokens, "q_proj": th.Decoder.Layers[0].Q.Weight,
		"conv1": th.Audio["conv1.weight"], "patch_embed": th.Vision["patch_embed.proj.weight"]} {
		if w.DType() != torch.BFloat16 {
			t.Errorf("%s is %v, want bfloat16", name, w.DType())
		}
	}
	fx := openFixture(t, "omni-a")
	got, want := logitsOf(t, th, fx, "audio_in_video"), fx.float32s("audio_in_video.logits")
	worst := maxAbs(got, want)
	t.Logf("bf16 max |logit - transformers fp32| = %.3g", worst)
	if !(worst < 0.25) {
		t.Errorf("bf16 logits differ from fp32 by %.3g", worst)
	}
}
