package model

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/internal/torch"
)

// The fixtures under testdata/quant come from transformers with every decoder
// linear's weight replaced by torchao 0.18's dequantized weight
// (scripts/fixtures/make_quant_fixtures.py, testdata/quant/README.md).

// quantLogits loads dir quantized as k in dt and returns the logits of the
// fixture's ids next to the named reference logits.
func quantLogits(t *testing.T, dir, expected, key string, k quant.Kind, dt torch.DType) (got, want []float32) {
	t.Helper()
	ids, want, shape := readExpectedFile(t, filepath.Dir(expected), filepath.Base(expected), key)
	err := torch.Run(func() error {
		m, err := Load(dir, Options{DType: dt, Quantize: k})
		if err != nil {
			return err
		}
		defer m.Close()
		s := torch.NewScope()
		defer s.Close()
		in := &Inputs{IDs: s.FromInt64(ids, shape[0], shape[1])}
		lg := m.Logits(s, m.Forward(s, in, false), nil)
		if dt != torch.Float32 {
			lg = s.To(lg, torch.Float32)
		}
		if err := s.Err(); err != nil {
			return err
		}
		got, err = lg.Float32s()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d logits, want %d", len(got), len(want))
	}
	return got, want
}

func maxDiff(a, b []float32) float64 {
	var worst float64
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i]-b[i])))
	}
	return worst
}

// TestQuantizedParity: logits of nf4 and int8 models equal transformers'
// with every decoder linear dequantized by torchao, within 1e-4 in float32
// (within the bf16 tolerances of TestParityBFloat16 in bfloat16); the
// quantization error itself (against the unquantized reference) is logged
// and must be far larger, so the comparison can fail.
func TestQuantizedParity(t *testing.T) {
	for _, c := range []struct {
		model, name string
		k           quant.Kind
		dt          torch.DType
	}{
		{"quant/llama-nf4", "llama-nf4", quant.NF4, torch.Float32},
		{"quant/llama-nf4", "llama-nf4", quant.Int8, torch.Float32},
		{"llama-gqa", "llama-gqa", quant.Int8, torch.Float32},
		{"quant/llama-nf4", "llama-nf4", quant.NF4, torch.BFloat16},
		{"quant/llama-nf4", "llama-nf4", quant.Int8, torch.BFloat16},
		{"llama-gqa", "llama-gqa", quant.Int8, torch.BFloat16},
	} {
		tag := ""
		if c.dt == torch.BFloat16 {
			tag = "_bf16"
		}
		t.Run(c.name+"/"+string(c.k)+tag, func(t *testing.T) {
			dir := filepath.Join("testdata", c.model)
			exp := filepath.Join("testdata", "quant", c.name+".expected.safetensors")
			got, want := quantLogits(t, dir, exp, "logits_"+string(c.k)+tag, c.k, c.dt)
			_, unq, _ := readExpectedFile(t, filepath.Join("testdata", "quant"), c.name+".expected.safetensors", "logits_unquantized"+tag)
			d, qerr := maxDiff(got, want), maxDiff(want, unq)
			t.Logf("max |mose %s - transformers with torchao-dequantized weights| = %.3g; quantization error (vs unquantized) %.3g", c.k, d, qerr)
			tol := 1e-4
			if c.dt == torch.BFloat16 {
				tol = bf16AbsTolerance
			}
			if d > tol {
				t.Errorf("max abs logit difference %.3g > %g", d, tol)
			}
			if c.dt == torch.Float32 && qerr < 100*tol {
				t.Errorf("quantization error %.3g too small for the check to tell quantized from unquantized", qerr)
			}
		})
	}
}

// TestQuantizeRefusesLayout: nf4 on a model whose linears do not fit
// (llama-gqa's 64-wide ones) is refused before loading, naming a tensor and
// the rule; int8 fits any 2-D weight.
func TestQuantizeRefusesLayout(t *testing.T) {
	err := torch.Run(func() error {
		m, err := Load(filepath.Join("testdata", "llama-gqa"), Options{Quantize: quant.NF4})
		if err == nil {
			m.Close()
		}
		return err
	})
	if !errors.Is(err, quant.ErrLayout) || !errors.Is(err, ErrWeights) || !strings.Contains(err.Error(), "model.layers.0.self_attn.q_proj.weight") ||
		!strings.Contains(err.Error(), "64 × 256") {
		t.Fatalf("nf4 on llama-gqa: %v", err)
	}
	cfg, err := LoadConfig(filepath.Join("testdata", "llama-gqa"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.CheckQuantize(quant.Int8); err != nil {
		t.Errorf("int8: %v", err)
	}
}

func TestIsQuantized(t *testing.T) {
	for name, want := range map[string]bool{
		"model.layers.3.self_attn.q_proj.weight": true, "model.layers.0.mlp.down_proj.weight": true,
		"model.layers.0.self_attn.q_proj.bias": false, "model.embed_tokens.weight": false, "lm_head.weight": false,
		"model.layers.0.input_layernorm.weight": false, "projectors.hubert.weight": false,
	} {
		if IsQuantized(name) != want {
			t.Errorf("IsQuantized(%s) = %v", name, !want)
		}
	}
}

// TestCheckQuantizeShapes: which known shapes nf4 takes (LLaMA-2-7B,
// Qwen2.5-7B, the small preset) and which it refuses by name (SmolLM2's
// 576-wide weights, the tiny preset's 64-row k/v projections); int8 takes
// them all.
func TestCheckQuantizeShapes(t *testing.T) {
	for _, c := range []struct {
		name    string
		cfg     Config
		nf4     bool
		mention string
	}{
		{"llama-2-7b", Config{HiddenSize: 4096, IntermediateSize: 11008, NumLayers: 2, NumHeads: 32, NumKVHeads: 32, HeadDim: 128, VocabSize: 32000}, true, ""},
		{"qwen2.5-7b", Config{ModelType: "qwen2", HiddenSize: 3584, IntermediateSize: 18944, NumLayers: 2, NumHeads: 28, NumKVHeads: 4, HeadDim: 128, VocabSize: 152064}, true, ""},
		{"small preset", Config{HiddenSize: 512, IntermediateSize: 1376, NumLayers: 2, NumHeads: 8, NumKVHeads: 4, HeadDim: 64, VocabSize: 1000}, true, ""},
		{"smollm2-135m", Config{HiddenSize: 576, IntermediateSize: 1536, NumLayers: 30, NumHeads: 9, NumKVHeads: 3, HeadDim: 64, VocabSize: 49152, TieWordEmbeddings: true},
			false, "model.layers.0.self_attn.q_proj.weight [576 576]"},
		{"tiny preset", Config{HiddenSize: 128, IntermediateSize: 344, NumLayers: 4, NumHeads: 4, NumKVHeads: 2, HeadDim: 32, VocabSize: 1000},
			false, "model.layers.0.self_attn.k_proj.weight [64 128]"},
	} {
		err := c.cfg.CheckQuantize(quant.NF4)
		if (err == nil) != c.nf4 {
			t.Errorf("%s: nf4: %v", c.name, err)
		}
		if err != nil && (!strings.Contains(err.Error(), c.mention) || !errors.Is(err, quant.ErrLayout)) {
			t.Errorf("%s: the refusal does not name %q: %v", c.name, c.mention, err)
		}
		if err := c.cfg.CheckQuantize(quant.Int8); err != nil {
			t.Errorf("%s: int8: %v", c.name, err)
		}
	}
}
