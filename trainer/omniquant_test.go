package trainer

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/model/omni"
)

// nf4OmniModel writes omni-tiny with a decoder whose linears fit NF4's
// layout (hidden 128, 2 heads of 64, 2 KV heads, MLP 256: every linear a
// multiple of 64 × 256 elements) and omni-tiny's tokenizer, so that the
// fixture's omni data fits it.
func nf4OmniModel(t *testing.T) string {
	t.Helper()
	c := omni.Presets["omni-tiny"]
	c.Text.HiddenSize, c.Text.IntermediateSize, c.Text.NumHeads, c.Text.NumKVHeads = 128, 256, 2, 2
	c.Text.MRopeSection = []int{16, 8, 8}
	c.Audio.OutputDim, c.Vision.OutHiddenSize = 128, 128
	dir := filepath.Join(t.TempDir(), "omni-nf4")
	if err := omni.WriteRandom(dir, c, 3, 0.02, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), omniproc.TinyTokenizerJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// MoSE on a thinker whose decoder linears are stored quantized (nf4 on a
// model that fits its layout, int8 on omni-tiny): N steps straight, and k
// steps + interrupt + resume to N, give the same adapters bit for bit and
// the same loss at every step, with activation checkpointing on; and the
// losses are not the unquantized base's (the linears are quantized).
func TestOmniQuantizedExactResume(t *testing.T) {
	nf4 := nf4OmniModel(t)
	for _, c := range []struct{ name, model, q string }{{"nf4", nf4, "nf4"}, {"int8", "", "int8"}} {
		t.Run(c.name, func(t *testing.T) {
			base := []string{"adapters.modality_weights=contribution", "train.grad_accum=2", "train.max_steps=6"}
			if c.model != "" {
				base = append(base, "model.path="+c.model)
			}
			sets := append(base[:len(base):len(base)], "model.quantize="+c.q)
			straight := fixture.OmniRecipe(t, append(sets, "train.activation_checkpointing=true")...)
			res, err := Run(context.Background(), straight, Options{Log: testfix.QuietLog()})
			if err != nil {
				t.Fatal(err)
			}
			want, wantLoss := adapterValues(t, res.Checkpoint), lossTrace(t, straight.Run.OutputDir)
			plain := fixture.OmniRecipe(t, append(base, "model.quantize=none", "train.max_steps=2")...)
			if _, err := Run(context.Background(), plain, Options{Log: testfix.QuietLog()}); err != nil {
				t.Fatal(err)
			}
			if l := lossTrace(t, plain.Run.OutputDir); l[1] == wantLoss[1] {
				t.Errorf("step 1's loss %v equals the unquantized base's", l[1])
			}
			omniResume(t, sets, [2]bool{true, true}, want, wantLoss)
		})
	}
}
