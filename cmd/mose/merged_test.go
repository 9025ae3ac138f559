package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/export"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/model"
)

// A merged export keeps its projectors out of the weight files and their index
// (in model.MergedProjectors, the trained ones when the run trained them), mose
// reads them from there, and transformers loads the dir with an empty load report
// (scripts/checks/check_merged_load.py, skipped without the reference venv). Both
// base layouts: init-model's single file with projectors inside, and an attached
// sharded base whose index lists the projectors' own file.
func TestMergedExportLayout(t *testing.T) {
	if e2e.err != nil {
		t.Fatal(e2e.err)
	}
	att := filepath.Join(t.TempDir(), "attached")
	if code, msg := runMose(t, append([]string{"attach", "--model", plainModel(t, 1<<20), "--out", att, "--seed", "3"}, attachInputs...)...); code != 0 {
		t.Fatalf("attach: exit %d: %s", code, msg)
	}
	var dirs []string
	for _, c := range []struct{ name, model string }{{"single-file", e2e.model}, {"attached-sharded", att}} {
		fx := &testfix.Fixture{Model: c.model, Train: e2e.train, Eval: e2e.eval}
		_, ck := fx.Adapted(t, "model.path="+c.model, "adapters.method=lora", "model.train_projectors=true")
		merged := filepath.Join(t.TempDir(), c.name)
		if code, msg := runMose(t, "export", "--checkpoint", ck, "--format", "merged", "--out", merged); code != 0 {
			t.Fatalf("%s: merged export: exit %d: %s", c.name, code, msg)
		}
		weights, err := safetensors.OpenDir(merged)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range weights.Names() {
			if strings.HasPrefix(n, "projectors.") {
				t.Errorf("%s: %s is in the weight files", c.name, n)
			}
		}
		weights.Close()
		if idx, err := os.ReadFile(filepath.Join(merged, "model.safetensors.index.json")); err == nil && bytes.Contains(idx, []byte("projectors.")) {
			t.Errorf("%s: the index lists projectors", c.name)
		}
		proj, err := safetensors.Open(filepath.Join(merged, model.MergedProjectors))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		adapter, err := safetensors.Open(filepath.Join(ck, "adapter.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		names := proj.Names()
		if len(names) == 0 {
			t.Fatalf("%s: %s is empty", c.name, model.MergedProjectors)
		}
		for _, n := range names {
			got, _ := proj.Read(n)
			want, err := adapter.Read(n)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %s in %s is not the trained projector (%v)", c.name, n, model.MergedProjectors, err)
			}
		}
		proj.Close()
		adapter.Close()
		if code, msg := runMose(t, "model-info", "--model", merged); code != 0 {
			t.Fatalf("%s: model-info on the merged dir: exit %d: %s", c.name, code, msg)
		}
		dirs = append(dirs, merged)
	}
	py := testfix.RefPython(t)
	code, msg := runPython(t, py, append([]string{"../../scripts/checks/check_merged_load.py"}, dirs...)...)
	t.Logf("check_merged_load.py:\n%s", msg)
	if code != 0 {
		t.Fatalf("transformers does not load a merged export cleanly (exit %d)", code)
	}
	// The check can fail: the old layout (projectors in the weight file) gives unexpected keys.
	code, msg = runPython(t, py, "../../scripts/checks/check_merged_load.py", e2e.model)
	if code != 1 || !strings.Contains(msg, "unexpected_keys") {
		t.Fatalf("a dir with projectors in its weight file passes the check: exit %d\n%s", code, msg)
	}
}

// Exporting MoSE to PEFT format says in one line that PEFT alone gets only the
// omni expert; a LoRA export does not.
func TestExportPEFTOnlyNote(t *testing.T) {
	if e2e.err != nil {
		t.Fatal(e2e.err)
	}
	for _, c := range []struct {
		method string
		note   bool
	}{{"mose", true}, {"lora", false}} {
		fx := &testfix.Fixture{Model: e2e.model, Train: e2e.train, Eval: e2e.eval}
		_, ck := fx.Adapted(t, "model.path="+e2e.model, "adapters.method="+c.method)
		out := filepath.Join(t.TempDir(), "export")
		code, msg := runMose(t, "export", "--checkpoint", ck, "--format", "peft", "--out", out)
		if code != 0 {
			t.Fatalf("%s: export: exit %d: %s", c.method, code, msg)
		}
		if strings.Contains(msg, export.PEFTOnlyNote) != c.note {
			t.Errorf("%s: the note is printed: %v, want %v:\n%s", c.method, !c.note, c.note, msg)
		}
		if _, err := os.Stat(filepath.Join(out, export.ReadmeFile)); err != nil {
			t.Errorf("%s: %v", c.method, err)
		}
	}
}
