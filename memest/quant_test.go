package memest

import (
	"errors"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
)

// TestQuantizePreflight: nf4 on the test model (the tiny preset, 64-row k/v
// projections) is refused before loading, naming the key, a tensor and the
// rule; int8 passes.
func TestQuantizePreflight(t *testing.T) {
	err := Preflight(fixture.Recipe(t, "model.quantize=nf4"), PreflightValidate)
	if !errors.Is(err, recipes.ErrRecipe) || !errors.Is(err, quant.ErrLayout) {
		t.Fatalf("nf4 on the tiny model: %v", err)
	}
	for _, want := range []string{"model.quantize nf4", "k_proj.weight", "64 × 256"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal lacks %q: %v", want, err)
		}
	}
	if err := Preflight(fixture.Recipe(t, "model.quantize=int8"), PreflightValidate); err != nil {
		t.Errorf("int8: %v", err)
	}
}

// TestQuantizeEstimate: quantized linears are counted as stored (nf4 ≈ 4.13
// bits, int8 8 bits + a float32 scale per row), the rest of the weights in
// the run dtype, and the largest linear dequantized is added to the backward
// working set (the autograd function keeps the quantized parts, not the
// dequantized weight, so nothing is added per layer).
func TestQuantizeEstimate(t *testing.T) {
	cfg, err := recipes.Load("emotion-llama-mose", []string{"model.path=testdata/emotion-llama-7b-config",
		"run.device=cpu", "data.train=testdata/none.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	mc, err := model.LoadConfig(cfg.Model.Path)
	if err != nil {
		t.Fatal(err)
	}
	sh := Shape{Model: mc, T: 1024, Answer: 8, Tokens: make([]int, len(mc.Projectors))}
	est := map[string]Estimate{}
	for _, q := range []string{"none", "int8", "nf4"} {
		c := *cfg
		c.Model.Quantize = q
		if est[q], err = Compute(&c, sh); err != nil {
			t.Fatal(err)
		}
	}
	var linears, other int64 // elements
	for _, ts := range mc.Tensors() {
		n := int64(1)
		for _, d := range ts.Shape {
			n *= d
		}
		switch {
		case model.IsQuantized(ts.Name):
			linears += n
		case !(cfg.Model.TrainProjectors && strings.HasPrefix(ts.Name, "projectors.")):
			other += n // trained projectors are float32 parameters
		}
	}
	es := int64(2) // the recipe's bfloat16
	rows := int64(0)
	for _, ts := range mc.Tensors() {
		if model.IsQuantized(ts.Name) {
			rows += ts.Shape[0]
		}
	}
	if got, want := est["none"].Weights, (linears+other)*es; got != want {
		t.Errorf("none: weights %d, want %d", got, want)
	}
	if got, want := est["int8"].Weights, linears+4*rows+other*es; got != want {
		t.Errorf("int8: weights %d, want %d", got, want)
	}
	nf4Linears := est["nf4"].Weights - other*es
	if bits := float64(nf4Linears) * 8 / float64(linears); bits < 4.12 || bits > 4.15 {
		t.Errorf("nf4: %.3f bits a weight", bits)
	}
	n := int64(mc.IntermediateSize) * int64(mc.HiddenSize) // the largest linear
	for q, largest := range map[string]int64{"nf4": n*es + 2*n, "int8": n * (es + 4)} {
		if est[q].Dequant != largest || est[q].LayerBack != est["none"].LayerBack || est[q].Layer != est["none"].Layer ||
			est[q].Static() != est[q].Weights+largest+est[q].Adapters+est[q].Grads+est[q].Optimizer+est[q].Runtime {
			t.Errorf("%s: dequantization buffers %d (layer %d, backward %d), want %d counted with the static memory", q, est[q].Dequant,
				est[q].Layer, est[q].LayerBack, largest)
		}
		if est[q].Total(false) >= est["none"].Total(false) || est[q].Total(true) >= est["none"].Total(true) {
			t.Errorf("%s does not lower the estimate", q)
		}
	}
	if est["none"].Dequant != 0 {
		t.Errorf("none: dequantization scratch %d", est["none"].Dequant)
	}
	t.Logf("7B with checkpointing: none %.2f GiB, int8 %.2f GiB, nf4 %.2f GiB", gibf(est["none"].Total(true)), gibf(est["int8"].Total(true)), gibf(est["nf4"].Total(true)))
}

func gibf(b int64) float64 { return float64(b) / (1 << 30) }
