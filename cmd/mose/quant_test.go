package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/stack"
)

// TestQuantizeBadInput: an unknown model.quantize, nf4 on a model whose
// weights do not fit its layout (the tiny preset), a malformed or unknown
// --dump-quantized, and a resume with another quantization each exit 2
// naming the key, flag or tensor; --allow-recipe-change resumes anyway.
func TestQuantizeBadInput(t *testing.T) {
	out := t.TempDir()
	cases := []struct {
		name     string
		args     []string
		mentions []string
	}{
		{"nf3", append([]string{"validate"}, recipeArgs(out, "model.quantize=nf3")...), []string{"model.quantize", "nf3"}},
		{"nf4 on tiny (validate)", append([]string{"validate"}, recipeArgs(out, "model.quantize=nf4")...),
			[]string{"model.quantize nf4", "model.layers.0.self_attn.k_proj.weight", "64 × 256"}},
		{"nf4 on tiny (model-info)", []string{"model-info", "--model", e2e.model, "--quantize", "nf4"}, []string{"k_proj.weight", "64 × 256"}},
		{"--quantize nf3", []string{"model-info", "--model", e2e.model, "--quantize", "nf3"}, []string{"--quantize", "nf3"}},
		{"dump without =", []string{"model-info", "--model", e2e.model, "--quantize", "int8", "--dump-quantized", "x"}, []string{"TENSOR=FILE"}},
		{"dump unquantized", []string{"model-info", "--model", e2e.model, "--dump-quantized", "a=b"}, []string{"--quantize"}},
		{"dump unknown tensor", []string{"model-info", "--model", e2e.model, "--quantize", "int8", "--dump-quantized",
			"model.embed_tokens.weight=" + filepath.Join(out, "d.safetensors")}, []string{"model.embed_tokens.weight"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, msg := runMose(t, c.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, msg)
			}
			for _, m := range c.mentions {
				if !strings.Contains(msg, m) {
					t.Errorf("the message lacks %q: %s", m, msg)
				}
			}
		})
	}
	run := filepath.Join(out, "run")
	if code, msg := runMose(t, append([]string{"train"}, recipeArgs(run, "train.max_steps=2", "model.quantize=int8")...)...); code != 0 {
		t.Fatalf("int8 training: exit %d: %s", code, msg)
	}
	code, msg := runMose(t, append(append([]string{"train"}, recipeArgs(run, "train.max_steps=3")...), "--resume", "auto")...)
	if code != 2 || !strings.Contains(msg, "model.quantize") {
		t.Fatalf("resume of an int8 run unquantized: exit %d: %s", code, msg)
	}
	code, msg = runMose(t, append(append([]string{"train"}, recipeArgs(run, "train.max_steps=3")...), "--resume", "auto", "--allow-recipe-change")...)
	if code != 0 {
		t.Fatalf("--allow-recipe-change: exit %d: %s", code, msg)
	}
}

// quantRefPython is the reference python (testfix.RefPython) checked for
// torchao 0.18 (scripts/setup/requirements-ref.txt pins it); the test skips
// without one.
func quantRefPython(t *testing.T) string {
	t.Helper()
	py := testfix.RefPython(t)
	cmd := exec.Command(py, "-c", "import torchao, transformers; assert torchao.__version__.startswith('0.18.0'), torchao.__version__")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("no torchao 0.18.0 in %s: %v %s", py, err, out)
	}
	return py
}

// TestQuantizedVsReference: model-info's logits of quantized models equal
// transformers' with every decoder linear replaced by torchao's dequantized
// weight within 1e-4, and --dump-quantized's parts equal torchao's bit for
// bit: the small preset (nf4, int8), a tiny model shaped to fit nf4, and the
// real SmolLM2 (int8; nf4 is refused) when it is in the cache.
func TestQuantizedVsReference(t *testing.T) {
	py := quantRefPython(t)
	dir := t.TempDir()
	small, fit := filepath.Join(dir, "small"), filepath.Join(dir, "fit")
	if _, err := stack.InitModelDir(small, stack.InitModel{Preset: "small", Seed: 3, Std: 0.05}); err != nil {
		t.Fatal(err)
	}
	if _, err := stack.InitModelDir(fit, stack.InitModel{Preset: "tiny", Seed: 4, Std: 0.05, Heads: 4, KVHeads: 4, Intermediate: 256}); err != nil {
		t.Fatal(err)
	}
	type ref struct {
		Diff  float64           `json:"max_abs_logit_diff"`
		QErr  float64           `json:"quantization_error"`
		Parts map[string]string `json:"parts"`
	}
	cases := []struct{ name, model, kind, tensor string }{
		{"small/nf4", small, "nf4", "model.layers.1.self_attn.k_proj.weight"},
		{"small/int8", small, "int8", "model.layers.7.mlp.down_proj.weight"},
		{"fit/nf4", fit, "nf4", "model.layers.0.mlp.gate_proj.weight"},
	}
	if smol := smolLM2CacheDir(); smol != "" {
		cases = append(cases, struct{ name, model, kind, tensor string }{"smollm2/int8", smol, "int8", "model.layers.29.self_attn.o_proj.weight"})
		if code, msg := runMose(t, "model-info", "--model", smol, "--quantize", "nf4"); code != 2 || !strings.Contains(msg, "576") {
			t.Errorf("nf4 on SmolLM2: exit %d: %s", code, msg)
		}
	} else {
		t.Log("SmolLM2 not in the cache (scripts/fixtures/fetch_smollm2.py): its int8 case is not run")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logits, dump := filepath.Join(dir, c.name+".logits"), filepath.Join(dir, c.name+".dump")
			code, msg := runMose(t, "model-info", "--model", c.model, "--quantize", c.kind, "--text", "The person in the video says: hello there.",
				"--logits-out", logits, "--dump-quantized", c.tensor+"="+dump)
			if code != 0 {
				t.Fatalf("model-info: exit %d: %s", code, msg)
			}
			code, out := runPython(t, py, filepath.Join("..", "..", "scripts", "fixtures", "make_quant_fixtures.py"), "check",
				"--model", c.model, "--quantize", c.kind, "--logits", logits, "--dump", dump, "--tensor", c.tensor)
			if code != 0 {
				t.Fatalf("reference: exit %d: %s", code, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var r ref
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
				t.Fatalf("reference output: %v: %s", err, out)
			}
			t.Logf("max |logit - reference| %.3g; quantization error (reference vs unquantized) %.3g; parts %v", r.Diff, r.QErr, r.Parts)
			if r.Diff > 1e-4 {
				t.Errorf("max abs logit difference %.3g > 1e-4", r.Diff)
			}
			if r.QErr < 1e-2 {
				t.Errorf("quantization error %.3g: the check cannot tell quantized from unquantized", r.QErr)
			}
			if len(r.Parts) == 0 {
				t.Error("no parts compared")
			}
			for k, v := range r.Parts {
				if v != "equal" {
					t.Errorf("%s: %s", k, v)
				}
			}
		})
	}
}

// smolLM2CacheDir is the converted SmolLM2 dir (MOSE_SMOLLM2_DIR or the
// cache), or "" when it is not there.
func smolLM2CacheDir() string {
	d := os.Getenv("MOSE_SMOLLM2_DIR")
	if d == "" {
		cache := os.Getenv("MOSE_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "mose")
		}
		d = filepath.Join(cache, "models", "smollm2-135m")
	}
	if _, err := os.Stat(filepath.Join(d, "config.json")); err != nil {
		return ""
	}
	return d
}

// TestQuantizedLoRAVsPEFT: a LoRA trained 20 steps on an nf4 base (a tiny
// model shaped to fit), exported as PEFT, gives through `model-info
// --quantize nf4 --adapter` the logits of transformers + PEFT on the base
// with every decoder linear replaced by torchao's dequantized weight, within
// 1e-4; the trained adapter moves those logits, so the check can fail.
func TestQuantizedLoRAVsPEFT(t *testing.T) {
	py := quantRefPython(t)
	dir := t.TempDir()
	fit := filepath.Join(dir, "fit")
	if _, err := stack.InitModelDir(fit, stack.InitModel{Preset: "tiny", Seed: 4, KVHeads: 4, Intermediate: 256}); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	code, msg := runMose(t, append([]string{"train"}, recipeArgs(run, "model.path="+fit, "model.quantize=nf4", "adapters.method=lora",
		"adapters.targets=[q_proj,v_proj,down_proj]", "train.max_steps=20", "train.lr=1e-2")...)...)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, msg)
	}
	peft := filepath.Join(dir, "peft")
	ck := filepath.Join(run, "checkpoints", "step-0000020")
	if code, msg := runMose(t, "export", "--checkpoint", ck, "--format", "peft", "--out", peft); code != 0 {
		t.Fatalf("export: exit %d: %s", code, msg)
	}
	logits := filepath.Join(dir, "logits.safetensors")
	if code, msg := runMose(t, "model-info", "--model", fit, "--quantize", "nf4", "--adapter", peft,
		"--text", "The person in the video says: hello there.", "--logits-out", logits); code != 0 {
		t.Fatalf("model-info: exit %d: %s", code, msg)
	}
	code, out := runPython(t, py, filepath.Join("..", "..", "scripts", "fixtures", "make_quant_fixtures.py"), "check",
		"--model", fit, "--quantize", "nf4", "--logits", logits, "--adapter", peft)
	if code != 0 {
		t.Fatalf("reference: exit %d: %s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var r struct {
		Diff   float64 `json:"max_abs_logit_diff"`
		Effect float64 `json:"adapter_effect"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("reference output: %v: %s", err, out)
	}
	t.Logf("max |mose - transformers+PEFT on the torchao-dequantized base| %.3g; the adapter moves logits by %.3g", r.Diff, r.Effect)
	if r.Diff > 1e-4 {
		t.Errorf("max abs logit difference %.3g > 1e-4", r.Diff)
	}
	if r.Effect < 1e-3 {
		t.Errorf("the trained adapter barely moves the logits (%.3g): the check proves nothing", r.Effect)
	}
}
