package omni

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
)

// testdata/omni-quant comes from scripts/fixtures/make_quant_fixtures.py
// (--only omni): a tiny thinker whose decoder linears fit NF4's layout, and
// per case transformers' logits with the decoder linears (not the towers')
// replaced by torchao 0.18's dequantized weights ("<case>.logits_nf4",
// "<case>.logits_int8") next to the unquantized ones ("<case>.logits").

// TestQuantizedThinkerLogits: a thinker loaded with its decoder linears
// stored nf4 or int8 gives transformers' logits with torchao-dequantized
// linears within 1e-4 (fp32) on text, image, audio-in-video and a mixed
// batch; the quantization error itself (against the unquantized logits) is
// logged and must be far larger, so the comparison can fail (against the
// unquantized logits it would: 3.0 to 4.9 for nf4, 0.18 to 0.38 for int8).
func TestQuantizedThinkerLogits(t *testing.T) {
	dir := filepath.Join("testdata", "omni-quant")
	fx := openFixture(t, "omni-quant")
	for _, k := range []quant.Kind{quant.NF4, quant.Int8} {
		th := loadThinkerWith(t, dir, model.Options{DType: torch.Float32, Quantize: k})
		n := 0
		for _, l := range th.Decoder.Linears() {
			if l.Quant != nil {
				n++
			}
		}
		if want := 7 * th.Config.Text.NumLayers; n != want {
			t.Fatalf("%s: %d decoder linears quantized, want %d", k, n, want)
		}
		for _, c := range fx.cases() {
			t.Run(fmt.Sprintf("%s/%s", k, c), func(t *testing.T) {
				d := logitErrorVs(t, th, fx, c, "logits_"+k.String())
				qerr := logitErrorVs(t, th, fx, c, "logits")
				t.Logf("max |mose %s - transformers with torchao-dequantized linears| = %.3g; vs unquantized %.3g", k, d, qerr)
				if d > 1e-4 {
					t.Errorf("max abs logit difference %.3g > 1e-4", d)
				}
				if qerr < 1e-2 {
					t.Errorf("quantization error %.3g too small for the check to tell quantized from unquantized", qerr)
				}
			})
		}
	}
}

// TestQuantizedThinkerRefusesLayout: nf4 on a thinker whose decoder linears
// do not fit (omni-a's 32-wide ones) is refused before loading, naming a
// tensor and the rule.
func TestQuantizedThinkerRefusesLayout(t *testing.T) {
	err := torch.Run(func() error {
		th, err := Load(filepath.Join("testdata", "omni-a"), model.Options{Quantize: quant.NF4})
		if err == nil {
			th.Close()
		}
		return err
	})
	if !errors.Is(err, quant.ErrLayout) || !strings.Contains(err.Error(), "model.layers.0.self_attn.q_proj.weight") {
		t.Fatalf("nf4 on omni-a: %v", err)
	}
}
