package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/synth"
)

// fieldTok is a whitespace tokenizer standing in for tokenizer.json.
type fieldTok struct{}

func (fieldTok) Encode(s string) ([]int32, error) { return make([]int32, len(strings.Fields(s))), nil }
func (fieldTok) Decode([]int32) string            { return "" }

func writeModelDir(t *testing.T, spec data.Spec) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(map[string]any{"hidden_size": 64, "mose": spec})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestValidateData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "synth")
	if _, code := runDataCmd(t, "synth-data", "--out", dir, "--samples", "27"); code != 0 {
		t.Fatal("synth-data failed")
	}
	p, _ := synth.LookupPreset("tiny")
	model := writeModelDir(t, p.Spec())
	manifest := filepath.Join(dir, "train.jsonl")

	out, code := runDataCmd(t, "validate-data", "--manifest", manifest, "--model", model)
	if code != 0 || !strings.Contains(out, "27 parsed, 27 valid; problems: 0") || !strings.Contains(out, "not computed") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, sub := range synth.Subsets {
		if !strings.Contains(out, sub) {
			t.Errorf("no row for %s:\n%s", sub, out)
		}
	}

	// With a tokenizer present, lengths are reported.
	old := loadTokenizer
	defer func() { loadTokenizer = old }()
	loadTokenizer = func(string) (data.Tokenizer, error) { return fieldTok{}, nil }
	if err := os.WriteFile(filepath.Join(model, "tokenizer.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runDataCmd(t, "validate-data", "--manifest", manifest, "--model", model)
	if code != 0 || !strings.Contains(out, "token lengths (with feature slots): min") {
		t.Fatalf("exit %d:\n%s", code, out)
	}

	// A broken feature file is a problem: listed, exit 2.
	if err := os.WriteFile(filepath.Join(dir, "features", "audio", "train-00004.npy"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = runDataCmd(t, "validate-data", "--manifest", manifest, "--model", model)
	if code != 2 || !strings.Contains(out, `train.jsonl:5: sample "train-00004": features/audio/train-00004.npy: malformed npy`) {
		t.Fatalf("exit %d:\n%s", code, out)
	}

	// A model without a "mose" section, or no flags: exit 2.
	if err := os.WriteFile(filepath.Join(model, "config.json"), []byte(`{"hidden_size": 64}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, code := runDataCmd(t, "validate-data", "--manifest", manifest, "--model", model); code != 2 {
		t.Fatalf("no mose section: exit %d", code)
	}
	if _, code := runDataCmd(t, "validate-data"); code != 2 {
		t.Fatalf("no flags: exit %d", code)
	}
}
