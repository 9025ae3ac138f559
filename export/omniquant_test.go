package export

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/trainer"
)

// fullOmniDir rewrites the fixture's thinker-only omni-tiny as a full
// Qwen2.5-Omni directory: config.json with the thinker under thinker_config,
// every tensor under thinker., the tokenizer beside.
func fullOmniDir(t *testing.T) string {
	t.Helper()
	src, _ := fixture.Omni(t)
	dir := filepath.Join(t.TempDir(), "omni-full")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var th map[string]any
	if err := json.Unmarshal(b, &th); err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(map[string]any{"architectures": []string{"Qwen2_5OmniForConditionalGeneration"}, "model_type": "qwen2_5_omni",
		"enable_audio_output": false, "thinker_config": th})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644) != nil || os.WriteFile(filepath.Join(dir, "tokenizer.json"), tok, 0o644) != nil {
		t.Fatal("writing the full model dir")
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
		ts = append(ts, safetensors.Tensor{Name: "thinker." + info.Name, DType: info.DType, Shape: info.Shape, Data: data})
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMergedQuantizedThinker: a LoRA trained on a Qwen2.5-Omni thinker whose
// decoder linears are int8 (a full model's directory: the tensors under
// thinker.) merges into the base with every quantized linear written
// dequantized — k_proj, not a target, holds exactly its dequantized weight,
// not the stored one — and the merge report's fidelity (the merged
// thinker's decoder vs the quantized one with its adapters) is within 1e-4.
func TestMergedQuantizedThinker(t *testing.T) {
	full := fullOmniDir(t)
	cfg := fixture.OmniRecipe(t, "model.path="+full, "model.quantize=int8", "adapters.method=lora", "train.max_steps=3",
		"train.warmup_steps=0", "train.lr=1e-2")
	res, err := trainer.Run(context.Background(), cfg, trainer.Options{Log: testfix.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "merged")
	ex, err := Export(context.Background(), Options{Checkpoint: res.Checkpoint, Format: FormatMerged, Out: out, Log: testfix.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	q := ex.Report.QuantizedFidelity
	if ex.Report.QuantizedBase != "int8" || q == nil || q.MaxAbsLogitDiff > 1e-4 || q.Tokens == 0 {
		t.Fatalf("merge report: base %q, fidelity %+v", ex.Report.QuantizedBase, q)
	}
	err = torch.Run(func() error {
		merged, err := omni.Load(out, model.Options{})
		if err != nil {
			return err
		}
		defer merged.Close()
		quantized, err := omni.Load(full, model.Options{Quantize: "int8"})
		if err != nil {
			return err
		}
		defer quantized.Close()
		base, err := omni.Load(full, model.Options{})
		if err != nil {
			return err
		}
		defer base.Close()
		s := torch.NewScope()
		defer s.Close()
		k := merged.Decoder.Layers[0].K.Weight
		dq := s.Max(s.Abs(s.Sub(k, quantized.Decoder.Layers[0].K.Quant.Dequantize(s))))
		db := s.Max(s.Abs(s.Sub(k, base.Decoder.Layers[0].K.Weight)))
		if err := s.Err(); err != nil {
			return err
		}
		vq, _ := dq.Item()
		vb, _ := db.Item()
		t.Logf("merged k_proj vs dequantized %.3g, vs the stored weight %.3g; fidelity %+v", vq, vb, *q)
		if vq != 0 || vb < 1e-5 {
			t.Errorf("k_proj was not written dequantized (%.3g from it, %.3g from the stored weight)", vq, vb)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
