package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/testfix"
)

// scripts/checks/check_peft_export.py compares PEFT on an export with the training
// checkpoint's own logits: it passes on a good export (PEFT's unrelated
// deprecation notices do not fail it) and fails on each broken one (flipped
// use_rslora, doubled lora_alpha, zeroed lora_B, zeroed trained projectors; and,
// with the logits unchanged, an unknown LoraConfig field and an adapter tensor of
// a module that is not a target, which only PEFT's warnings reveal). Skips
// without the reference venv.
func TestCheckPEFTExportScript(t *testing.T) {
	py := testfix.RefPython(t)
	if e2e.err != nil {
		t.Fatal(e2e.err)
	}
	out := filepath.Join(t.TempDir(), "run")
	if code, msg := runMose(t, append([]string{"train"}, recipeArgs(out, "adapters.method=lora", "model.train_projectors=true",
		"train.max_steps=6", "train.lr=1e-2")...)...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, msg)
	}
	cks, _ := filepath.Glob(filepath.Join(out, "checkpoints", "step-*"))
	if len(cks) == 0 {
		t.Fatal("no checkpoint")
	}
	ck := cks[len(cks)-1]
	exp := filepath.Join(t.TempDir(), "export")
	if code, msg := runMose(t, "export", "--checkpoint", ck, "--format", "peft", "--out", exp); code != 0 {
		t.Fatalf("export: exit %d: %s", code, msg)
	}
	check := func(dir string) (int, string) {
		return runPython(t, py, "../../scripts/checks/check_peft_export.py", dir, "--checkpoint", ck, "--model", e2e.model, "--mose", e2e.bin)
	}
	code, msg := check(exp)
	t.Logf("good export:\n%s", msg)
	if code != 0 || !strings.Contains(msg, "OK") {
		t.Fatalf("the good export fails the check (exit %d)", code)
	}
	broken := []struct {
		name string
		edit func(dir string)
	}{
		{"flipped use_rslora", func(dir string) {
			editConfig(t, dir, func(c map[string]any) { c["use_rslora"] = !c["use_rslora"].(bool) })
		}},
		{"doubled lora_alpha", func(dir string) {
			editConfig(t, dir, func(c map[string]any) { c["lora_alpha"] = 2 * c["lora_alpha"].(float64) })
		}},
		{"zero lora_B", func(dir string) { zeroTensors(t, filepath.Join(dir, "adapter_model.safetensors"), "lora_B") }},
		{"zero trained projectors", func(dir string) { zeroTensors(t, filepath.Join(dir, "mose_adapter.safetensors"), "projectors.") }},
		{"unknown LoraConfig field", func(dir string) {
			editConfig(t, dir, func(c map[string]any) { c["mose_unknown_field"] = 1 })
		}},
		{"tensor of a module that is not a target", func(dir string) {
			copyTensor(t, filepath.Join(dir, "adapter_model.safetensors"), "q_proj.lora_A", "k_proj.lora_A")
		}},
	}
	for _, b := range broken {
		t.Run(strings.ReplaceAll(b.name, " ", "_"), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "export")
			if err := os.CopyFS(dir, os.DirFS(exp)); err != nil {
				t.Fatal(err)
			}
			b.edit(dir)
			code, msg := check(dir)
			if code != 1 || !strings.Contains(msg, "FAIL") {
				t.Fatalf("a broken export (%s) passes the check: exit %d\n%s", b.name, code, msg)
			}
			t.Logf("%s: %s", b.name, lastLine(msg))
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func editConfig(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "adapter_config.json")
	var c map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	b, _ = json.MarshalIndent(c, "", "  ")
	os.WriteFile(path, b, 0o644)
}

// zeroTensors rewrites a safetensors file with the tensors whose name contains
// part set to zero.
func zeroTensors(t *testing.T, path, part string) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	n := 0
	for _, info := range f.Tensors() {
		b, _ := f.Read(info.Name)
		if strings.Contains(info.Name, part) {
			b = make([]byte, len(b))
			n++
		}
		ts = append(ts, safetensors.Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: b})
	}
	f.Close()
	if n == 0 {
		t.Fatalf("%s has no %s tensors", path, part)
	}
	if err := safetensors.WriteFile(path, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

// copyTensor adds to a safetensors file a copy of its first tensor whose name
// contains part, named with part replaced by as.
func copyTensor(t *testing.T, path, part, as string) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	var extra *safetensors.Tensor
	for _, info := range f.Tensors() {
		b, _ := f.Read(info.Name)
		ts = append(ts, safetensors.Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: b})
		if extra == nil && strings.Contains(info.Name, part) {
			extra = &safetensors.Tensor{Name: strings.Replace(info.Name, part, as, 1), DType: info.DType, Shape: info.Shape, Data: b}
		}
	}
	f.Close()
	if extra == nil {
		t.Fatalf("%s has no %s tensor", path, part)
	}
	if err := safetensors.WriteFile(path, append(ts, *extra), map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}
