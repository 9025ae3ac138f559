package export

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/stack"
)

// TestMergedQuantized: a LoRA trained on an int8 base merges into the base
// dequantized to its stored dtype (every quantized linear, adapted or not),
// so the merged model gives the quantized model's logits with its adapters
// (fp32, 1e-5) and not the unquantized base's; the report and the stamp
// record the quantization, and a PEFT export only notes it.
func TestMergedQuantized(t *testing.T) {
	cfg, ck := trained(t, "adapters.method=lora", "model.quantize=int8")
	out := filepath.Join(t.TempDir(), "merged")
	res, err := Export(context.Background(), Options{Checkpoint: ck, Format: FormatMerged, Out: out, Log: testfix.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	q := res.Report.QuantizedFidelity
	if res.Report.QuantizedBase != "int8" || q == nil || q.MaxAbsLogitDiff > 1e-4 || q.Tokens == 0 {
		t.Fatalf("merge report: base %q, fidelity %+v", res.Report.QuantizedBase, q)
	}
	t.Logf("merged vs quantized + adapters: %+v", *q)
	var st Stamp
	if b, err := os.ReadFile(filepath.Join(out, exportStampFile)); err != nil || json.Unmarshal(b, &st) != nil || st.BaseQuantization != "int8" {
		t.Errorf("stamp: %+v %v", st, err)
	}
	err = torch.Run(func() error {
		c, err := stack.Build(cfg, stack.NoData)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.LoadAdapters(filepath.Join(ck, checkpoint.AdapterFile)); err != nil {
			return err
		}
		merged, err := model.Load(out, model.Options{})
		if err != nil {
			return err
		}
		defer merged.Close()
		base, err := model.Load(cfg.Model.Path, model.Options{})
		if err != nil {
			return err
		}
		defer base.Close()
		s := torch.NewScope()
		defer s.Close()
		// k_proj is not a target: merged holds its dequantized weight.
		k := c.Model.Layers[0].K.Quant.Dequantize(s)
		dk := s.Max(s.Abs(s.Sub(merged.Layers[0].K.Weight, k)))
		dBase := s.Max(s.Abs(s.Sub(merged.Layers[0].K.Weight, base.Layers[0].K.Weight)))
		bt := stack.Tensors(s, firstBatch(t, c), torch.CPU)
		want := c.Model.Logits(s, c.Model.Forward(s, bt.In, false), bt.Pos)
		got := merged.Logits(s, merged.Forward(s, bt.In, false), bt.Pos)
		d := s.Max(s.Abs(s.Sub(got, want)))
		if err := s.Err(); err != nil {
			return err
		}
		vk, _ := dk.Item()
		vb, _ := dBase.Item()
		vd, _ := d.Item()
		t.Logf("merged k_proj vs dequantized %.3g, vs the unquantized base %.3g; logits vs quantized + adapters %.3g", vk, vb, vd)
		if vk != 0 || vb < 1e-4 {
			t.Errorf("a non-target quantized linear was not written dequantized (%.3g from it, %.3g from the base)", vk, vb)
		}
		if vd > 1e-5 || math.IsNaN(vd) {
			t.Errorf("merged logits differ from the quantized adapted model's by %.3g", vd)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	peft := filepath.Join(t.TempDir(), "peft")
	if _, err := Export(context.Background(), Options{Checkpoint: ck, Format: FormatPEFT, Out: peft, Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(peft, exportStampFile)); err != nil || json.Unmarshal(b, &st) != nil || st.BaseQuantization != "int8" {
		t.Errorf("PEFT stamp: %+v %v", st, err)
	}
}
