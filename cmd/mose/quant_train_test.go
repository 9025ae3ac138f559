package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/stack"
)

// TestQuantizedTrainingVsTorchao: 20 steps of LoRA on an nf4 base (a tiny
// model shaped to fit, frozen projectors, dropout 0, the whole 8-sample set
// as each step's batch) log the losses of the same run in PyTorch — torchao's
// NF4Tensor linears, PEFT LoRA from mose's first checkpoint with lora_B
// zeroed, mose's AdamW, schedule and clipping written in PyTorch
// (scripts/checks/check_quant_training.py) — within 1e-4, and training moves
// the loss, so the comparison can fail.
func TestQuantizedTrainingVsTorchao(t *testing.T) {
	py := quantRefPython(t)
	dir := t.TempDir()
	fit := filepath.Join(dir, "fit")
	if _, err := stack.InitModelDir(fit, stack.InitModel{Preset: "tiny", Seed: 4, KVHeads: 4, Intermediate: 256}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	subset := filepath.Join(dir, "train8.jsonl")
	writeHead(t, e2e.train, subset, n)
	run := filepath.Join(dir, "run")
	code, msg := runMose(t, append([]string{"train"}, recipeArgs(run, "model.path="+fit, "model.quantize=nf4",
		"model.train_projectors=false", "adapters.method=lora", "adapters.targets=[q_proj,v_proj]", "adapters.dropout=0",
		"train.weight_decay=0", fmt.Sprintf("train.batch_size=%d", n), "train.grad_accum=1", "train.max_steps=20",
		"train.save_every=1", "train.keep_last=25", "train.lr=1e-2", "data.train="+subset,
		"data.root="+filepath.Dir(e2e.train), "data.eval=")...)...)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, msg)
	}
	ck1 := filepath.Join(run, "checkpoints", "step-0000001")
	peft := filepath.Join(dir, "peft")
	if code, msg := runMose(t, "export", "--checkpoint", ck1, "--format", "peft", "--out", peft); code != 0 {
		t.Fatalf("export: exit %d: %s", code, msg)
	}
	args := []string{filepath.Join("..", "..", "scripts", "checks", "check_quant_training.py"), "--model", fit, "--peft", peft,
		"--recipe", filepath.Join(ck1, "recipe.yaml"), "--metrics", filepath.Join(run, "metrics.jsonl")}
	for i := range n {
		f := filepath.Join(dir, fmt.Sprintf("sample%d.safetensors", i))
		if code, msg := runMose(t, "dump-logits", "--checkpoint", ck1, "--manifest", subset, "--index", fmt.Sprint(i), "--out", f); code != 0 {
			t.Fatalf("dump-logits %d: exit %d: %s", i, code, msg)
		}
		args = append(args, "--dump", f)
	}
	code, out := runPython(t, py, args...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var r struct {
		Steps int       `json:"steps"`
		Diff  float64   `json:"max_abs_loss_diff"`
		Moved float64   `json:"loss_moved"`
		Mose  []float64 `json:"mose"`
		Ref   []float64 `json:"reference"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("reference: exit %d: %v: %s", code, err, out)
	}
	t.Logf("%d steps: max |loss(mose) - loss(PyTorch + torchao NF4 + PEFT)| %.3g; loss %.4f -> %.4f", r.Steps, r.Diff, r.Ref[0], r.Ref[len(r.Ref)-1])
	if code != 0 || r.Steps != 20 || r.Diff > 1e-4 {
		t.Errorf("exit %d, %d steps, max loss difference %.3g (tolerance 1e-4)\nmose %v\nref  %v", code, r.Steps, r.Diff, r.Mose, r.Ref)
	}
	if r.Moved < 1e-2 {
		t.Errorf("training moved the loss by %.3g only: the comparison proves little", r.Moved)
	}
}

// writeHead copies the first n lines of a manifest.
func writeHead(t *testing.T, src, dst string, n int) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for i := 0; i < n && sc.Scan(); i++ {
		b.WriteString(sc.Text() + "\n")
	}
	if err := os.WriteFile(dst, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
