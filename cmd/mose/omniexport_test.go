package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/infer"
	"github.com/mose-llm/mose/internal/testfix"
)

// The exports of a LoRA run on omni-tiny (q, v and down projections of the
// decoder), checked by scripts/checks/check_omni_export.py against the
// training checkpoint's own logits (mose dump-logits): PEFT 0.21's
// PeftModel.from_pretrained on transformers' Qwen2_5OmniThinkerForConditionalGeneration
// makes LoRA layers on the decoder's targets only (not on the towers' q_proj,
// v_proj, down_proj) and matches within 1e-4; the merged export loads in
// transformers and matches too. Broken exports fail the check: target_modules
// as a plain list (the towers wrapped), a doubled lora_alpha, zeroed lora_B.
// Skips without the reference venv.
func TestOmniExports(t *testing.T) {
	py := testfix.RefPython(t)
	if e2e.err != nil {
		t.Fatal(e2e.err)
	}
	fx := newOmniRun(t, 4) // omni-tiny of std 0.2, four clips drawn in Go
	dir, model, train := t.TempDir(), fx.model, fx.manifest
	out := filepath.Join(dir, "run")
	args := []string{"train", "--recipe", "omni-tiny-mose"}
	for _, s := range []string{"model.path=" + model, "model.create=", "data.train=" + train, "data.synth=", "run.output_dir=" + out,
		"run.threads=1", "train.batch_size=2", "train.max_steps=6", "train.lr=1e-2", "adapters.method=lora",
		"adapters.targets=[q_proj,v_proj,down_proj]", "train.log_every=3"} {
		args = append(args, "--set", s)
	}
	if code, msg := runMose(t, args...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, msg)
	}
	ck := filepath.Join(out, "checkpoints", "step-0000006")
	peft, merged, dump := filepath.Join(dir, "peft"), filepath.Join(dir, "merged"), filepath.Join(dir, "dump.safetensors")
	for _, a := range [][]string{{"export", "--checkpoint", ck, "--format", "peft", "--out", peft},
		{"export", "--checkpoint", ck, "--format", "merged", "--out", merged},
		{"dump-logits", "--checkpoint", ck, "--out", dump}} {
		if code, msg := runMose(t, a...); code != 0 {
			t.Fatalf("%v: exit %d: %s", a, code, msg)
		}
	}
	// What does not run on a thinker yet is refused by name (exit 2).
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--checkpoint", ck, "--format", "merged", "--approximate", "--calibration", train, "--out", filepath.Join(dir, "m2")}, "--approximate"},
	} {
		if code, msg := runMose(t, c.args...); code != 2 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: exit %d, want 2 naming %s: %s", c.args[0], code, c.want, msg)
		}
	}
	// Eval and predict run on the checkpoint, its PEFT export and its merged
	// export (a thinker model dir) alike: the same scores.
	var scores [][]infer.LabelScore
	for i, src := range []string{ck, peft, merged} {
		out := filepath.Join(dir, fmt.Sprintf("p%d.jsonl", i))
		args := []string{"predict", "--checkpoint", src, "--manifest", train, "--no-generate", "--out", out}
		if src != ck {
			args = append(args, "--recipe", filepath.Join(ck, "recipe.yaml"))
		}
		if code, msg := runMose(t, args...); code != 0 {
			t.Fatalf("predict on %s: exit %d: %s", src, code, msg)
		}
		var all []infer.LabelScore
		for _, p := range readPredictions(t, out) {
			all = append(all, p.Scores...)
		}
		scores = append(scores, all)
	}
	for i := 1; i < len(scores); i++ {
		for k := range scores[0] {
			if d := math.Abs(scores[i][k].LogLikelihood - scores[0][k].LogLikelihood); d > 1e-3 {
				t.Fatalf("predict on the %s export: score %d is %v, on the checkpoint %v", []string{"", "PEFT", "merged"}[i], k, scores[i][k].LogLikelihood, scores[0][k].LogLikelihood)
			}
		}
	}
	if code, msg := runMose(t, "eval", "--checkpoint", ck, "--set", "data.eval="+train, "--out", filepath.Join(dir, "ev")); code != 0 {
		t.Fatalf("eval: exit %d: %s", code, msg)
	}
	check := func(args ...string) (int, string) {
		return runPython(t, py, append([]string{"../../scripts/checks/check_omni_export.py", "--dump", dump}, args...)...)
	}
	code, msg := check("--peft", peft, "--merged", merged)
	t.Logf("good exports:\n%s", msg)
	if code != 0 || !strings.Contains(msg, "OK") {
		t.Fatalf("the good exports fail the check (exit %d)", code)
	}
	for _, b := range []struct {
		name string
		edit func(dir string)
	}{
		{"target_modules as a plain list", func(dir string) {
			editConfig(t, dir, func(c map[string]any) { c["target_modules"] = []string{"q_proj", "v_proj", "down_proj"} })
		}},
		{"doubled lora_alpha", func(dir string) {
			editConfig(t, dir, func(c map[string]any) { c["lora_alpha"] = 2 * c["lora_alpha"].(float64) })
		}},
		{"zero lora_B", func(dir string) { zeroTensors(t, filepath.Join(dir, "adapter_model.safetensors"), "lora_B") }},
	} {
		t.Run(strings.ReplaceAll(b.name, " ", "_"), func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "export")
			if err := os.CopyFS(bad, os.DirFS(peft)); err != nil {
				t.Fatal(err)
			}
			b.edit(bad)
			code, msg := check("--peft", bad)
			if code != 1 || !strings.Contains(msg, "FAIL") {
				t.Fatalf("a broken export (%s) passes the check: exit %d\n%s", b.name, code, msg)
			}
			t.Logf("%s: %s", b.name, lastLine(msg))
		})
	}
}
