package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// eval and predict take a merged export dir as --checkpoint: a merged
// LoRA export (exact) scores the eval set as its checkpoint does, and a dir
// that is none of checkpoint, PEFT export or model is refused naming all
// three.
func TestEvalMergedExport(t *testing.T) {
	if testing.Short() {
		t.Skip("trains, exports and evaluates")
	}
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	sets := []string{"adapters.method=lora", "model.train_projectors=true", "train.max_steps=3", "train.save_every=3"}
	if code, msg := runMose(t, append([]string{"train"}, recipeArgs(run, sets...)...)...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, msg)
	}
	ck := filepath.Join(run, "checkpoints", "step-0000003")
	merged := filepath.Join(dir, "merged")
	if code, msg := runMose(t, "export", "--checkpoint", ck, "--format", "merged", "--out", merged); code != 0 {
		t.Fatalf("export: exit %d: %s", code, msg)
	}
	recipe := filepath.Join(ck, "recipe.yaml")
	evalOf := func(target string) map[string]any {
		t.Helper()
		out := filepath.Join(dir, "eval-"+filepath.Base(target))
		if code, msg := runMose(t, "eval", "--checkpoint", target, "--recipe", recipe, "--out", out); code != 0 {
			t.Fatalf("eval %s: exit %d: %s", target, code, msg)
		}
		b, err := os.ReadFile(filepath.Join(out, "eval.json"))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v["subsets"].(map[string]any)["all"].(map[string]any)
	}
	a, b := evalOf(ck), evalOf(merged)
	if a["accuracy"] != b["accuracy"] || a["n"] != b["n"] {
		t.Errorf("accuracy %v (checkpoint) vs %v (merged), n %v vs %v", a["accuracy"], b["accuracy"], a["n"], b["n"])
	}
	la, lb := a["loss"].(float64), b["loss"].(float64)
	t.Logf("eval loss: checkpoint %.7f, merged export %.7f", la, lb)
	if math.Abs(la-lb) > 1e-4 {
		t.Errorf("eval loss %v (checkpoint) vs %v (merged): the merged export is not the checkpoint's model", la, lb)
	}
	if code, msg := runMose(t, "predict", "--checkpoint", merged, "--recipe", recipe, "--manifest", e2e.eval, "--no-generate"); code != 0 {
		t.Errorf("predict on the merged export: exit %d: %s", code, msg)
	}
	empty := filepath.Join(dir, "empty")
	os.MkdirAll(empty, 0o755)
	code, msg := runMose(t, "eval", "--checkpoint", empty, "--recipe", recipe)
	if code != 2 || !strings.Contains(msg, "merged export") || !strings.Contains(msg, "adapter.safetensors") {
		t.Errorf("eval on an empty dir: exit %d, want 2 naming what it looks for: %s", code, msg)
	}
}
