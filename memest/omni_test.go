package memest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// On a Qwen2.5-Omni thinker the estimate counts the built stack's trainable
// parameters, the thinker's frozen weights (towers included) and a towers'
// forward; the peak is the static memory plus the larger of the towers'
// forward and the decoder's activations.
func TestOmniEstimate(t *testing.T) {
	cfg := fixture.OmniRecipe(t, "adapters.targets=[q_proj,v_proj,down_proj]")
	err := torch.Run(func() error {
		c, err := stack.Build(cfg, stack.AllData)
		if err != nil {
			return err
		}
		defer c.Close()
		var b strings.Builder
		if err := memoryEstimate(c, &b, nil); err != nil {
			return err
		}
		t.Logf("\n%s", b.String())
		sh := Shape{Model: c.Model.Config}
		sh.T, sh.Answer = batchShape(c.Train)
		est, err := Compute(cfg, sh)
		if err != nil {
			return err
		}
		if err := omniTowers(&est, cfg, *c.OmniConfig, omniTowerShape(c.Train, *c.OmniConfig)); err != nil {
			return err
		}
		var want int64
		for _, p := range c.Params {
			want += p.T.Numel()
		}
		if est.Params != want {
			t.Errorf("estimate counts %d trainable parameters, the stack has %d", est.Params, want)
		}
		if w := 4 * c.OmniConfig.ParamCount(); est.Weights != w {
			t.Errorf("frozen weights %d bytes, the thinker has %d", est.Weights, w)
		}
		ts := est.TowerShape
		if ts.Visual != 140 || ts.Audio != 25 || est.Towers <= 0 || est.Loader <= 0 {
			t.Errorf("towers: %+v, %d bytes, loader %d", ts, est.Towers, est.Loader)
		}
		for _, ck := range []bool{false, true} {
			if got, want := est.Total(ck), est.Static()+max(est.Towers, est.Activations(ck)); got != want {
				t.Errorf("total %d, want %d", got, want)
			}
		}
		if !strings.Contains(b.String(), "towers' forward") {
			t.Error("the report does not show the towers' forward")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// validate --memory-only reads a thinker's config.json alone (here
// omni-small's, with no weights), and the estimate grows with the sequence.
func TestOmniFromConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "omni-small")
	os.MkdirAll(dir, 0o755)
	b, err := omni.Presets["omni-small"].MarshalConfig(0.02, "float32")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	var prev string
	for _, T := range []string{"512", "2048"} {
		cfg := fixture.OmniRecipe(t, "model.path="+dir, "data.max_len="+T, "train.batch_size=1")
		out, err := FromConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("\n%s", out)
		if !strings.Contains(out, "Qwen2.5-Omni thinker") || !strings.Contains(out, "of which the towers") || out == prev {
			t.Errorf("report:\n%s", out)
		}
		prev = out
	}
}

// model.quantize on a thinker: the estimate counts its decoder linears as
// stored (the towers, embeddings and head in the run dtype) and the
// dequantization scratch; a thinker whose linears do not fit nf4's layout
// (omni-tiny, 64 wide) is refused by key, naming a tensor.
func TestOmniQuantizedEstimate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "omni-small")
	os.MkdirAll(dir, 0o755)
	oc := omni.Presets["omni-small"]
	b, err := oc.MarshalConfig(0.02, "float32")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	est := map[string]Estimate{}
	for _, q := range []string{"none", "int8", "nf4"} {
		cfg := fixture.OmniRecipe(t, "model.path="+dir, "data.max_len=512", "train.batch_size=1", "model.quantize="+q)
		sh := Shape{Model: oc.Decoder(), T: 512, Answer: defaultAnswerTokens}
		e, err := Compute(cfg, sh)
		if err == nil {
			err = omniTowers(&e, cfg, oc, towerShape{Visual: 512, FramePatches: maxFramePatches})
		}
		if err != nil {
			t.Fatal(err)
		}
		est[q] = e
		out, err := FromConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if (q != "none") != strings.Contains(out, "decoder linears "+q) {
			t.Errorf("%s: report:\n%s", q, out)
		}
	}
	es := int64(4) // the recipe's float32
	saved := map[string]int64{}
	for _, ts := range oc.Decoder().Tensors() {
		if !model.IsQuantized(ts.Name) {
			continue
		}
		n := ts.Shape[0] * ts.Shape[1]
		saved["int8"] += n*es - quant.StoredBytes(quant.Int8, n, ts.Shape[0], es)
		saved["nf4"] += n*es - quant.StoredBytes(quant.NF4, n, ts.Shape[0], es)
	}
	for _, q := range []string{"int8", "nf4"} {
		if got := est["none"].Weights - est[q].Weights; got != saved[q] || saved[q] <= 0 {
			t.Errorf("%s saves %d bytes of frozen weights, the decoder linears as stored save %d", q, got, saved[q])
		}
		if est[q].TowerWeights != est["none"].TowerWeights || est[q].Dequant <= 0 {
			t.Errorf("%s: towers %d (unquantized %d), dequantization scratch %d", q, est[q].TowerWeights, est["none"].TowerWeights, est[q].Dequant)
		}
	}
	tiny, _ := fixture.Omni(t)
	_, err = FromConfig(fixture.OmniRecipe(t, "model.path="+tiny, "model.quantize=nf4"))
	if !errors.Is(err, recipes.ErrRecipe) || !strings.Contains(err.Error(), "model.quantize nf4") ||
		!strings.Contains(err.Error(), "model.layers.0.self_attn.k_proj.weight") {
		t.Errorf("nf4 on omni-tiny: %v", err)
	}
	err = Preflight(fixture.OmniRecipe(t, "model.quantize=nf4"), PreflightValidate)
	if !errors.Is(err, recipes.ErrRecipe) || !strings.Contains(err.Error(), "model.layers.0.self_attn.q_proj.weight") {
		t.Errorf("validate, nf4 on omni-tiny: %v", err)
	}
	if err := Preflight(fixture.OmniRecipe(t, "model.quantize=int8"), PreflightValidate); err != nil {
		t.Errorf("validate, int8 on omni-tiny: %v", err)
	}
}

// The config-only copies of Qwen2.5-Omni-3B's and -7B's thinker
// (scripts/fixtures/make_omni_configs.py) load, have the sizes their README
// states, fit nf4's layout, and give an estimate for qwen2.5-omni-qlora.
func TestOmniRealConfigs(t *testing.T) {
	for _, c := range []struct {
		dir                   string
		hidden, layers, vocab int
	}{{"qwen2.5-omni-3b-config", 2048, 36, 151936}, {"qwen2.5-omni-7b-config", 3584, 28, 152064}} {
		dir := filepath.Join("testdata", c.dir)
		oc, err := omni.LoadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		tc := oc.Text
		if tc.HiddenSize != c.hidden || tc.NumLayers != c.layers || tc.VocabSize != c.vocab || oc.Vision.HiddenSize != 1280 ||
			oc.Vision.OutHiddenSize != c.hidden || oc.Audio.OutputDim != c.hidden {
			t.Errorf("%s: text %+v, vision %d → %d, audio → %d", c.dir, tc, oc.Vision.HiddenSize, oc.Vision.OutHiddenSize, oc.Audio.OutputDim)
		}
		if err := oc.Decoder().CheckQuantize(quant.NF4); err != nil {
			t.Errorf("%s: nf4: %v", c.dir, err)
		}
		cfg, err := recipes.Load("qwen2.5-omni-qlora", []string{"model.path=" + dir, "run.device=cpu"})
		if err != nil {
			t.Fatal(err)
		}
		out, err := FromConfig(cfg)
		if err != nil || !strings.Contains(out, "decoder linears nf4") {
			t.Errorf("%s: %v\n%s", c.dir, err, out)
		}
	}
}
