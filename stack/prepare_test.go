package stack

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/recipes"
)

// data.synth fills only a directory it creates, and SynthDir says when the
// data is synthetic.
func TestEnsureDataOwnsItsPath(t *testing.T) {
	root := t.TempDir()
	mine := filepath.Join(root, "mine")
	if err := os.MkdirAll(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(mine, "train.jsonl")
	if err := os.WriteFile(own, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ train, want string }{
		{filepath.Join(mine, "trian.jsonl"), "trian.jsonl"},           // a typo in one's own data dir
		{filepath.Join(mine, "typo", "data.jsonl"), "not data.jsonl"}, // synth writes train.jsonl only
		{filepath.Join(mine, "train.jsonl.bak", "x"), "x"},
	} {
		created, err := EnsureData(c.train, "tiny", 8, 1)
		if created || !errors.Is(err, recipes.ErrRecipe) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "data.synth") {
			t.Errorf("EnsureData(%s) = %v, %v; want a refusal naming %q and data.synth", c.train, created, err, c.want)
		}
	}
	if created, err := EnsureData(own, "tiny", 8, 1); created || err != nil {
		t.Errorf("existing data.train: %v, %v", created, err)
	}
	if SynthDir(own) != "" {
		t.Error("one's own data reported as synthetic")
	}
	gen := filepath.Join(root, "synth", "train.jsonl")
	if created, err := EnsureData(gen, "tiny", 8, 1); !created || err != nil {
		t.Fatalf("EnsureData into a new dir: %v, %v", created, err)
	}
	if SynthDir(gen) != filepath.Dir(gen) {
		t.Error("generated data not reported as synthetic")
	}
	entries, _ := os.ReadDir(mine)
	if len(entries) != 1 {
		t.Errorf("the user's directory changed: %d entries", len(entries))
	}
}

// model.create fills only a directory it creates: an existing model.path
// without config.json (an empty dir, an unfinished download) is refused and
// left as it was.
func TestEnsureModelOwnsItsPath(t *testing.T) {
	root := t.TempDir()
	empty := filepath.Join(root, "empty")
	partial := filepath.Join(root, "partial")
	for _, d := range []string{empty, partial} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(partial, "model.safetensors.part"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{empty, partial} {
		created, err := EnsureModel(d, "tiny", 1)
		if created || !errors.Is(err, recipes.ErrRecipe) || !strings.Contains(err.Error(), "model.create") || !strings.Contains(err.Error(), d) {
			t.Errorf("EnsureModel(%s) = %v, %v; want a refusal naming the path and model.create", d, created, err)
		}
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("the empty dir was filled: %d entries", len(entries))
	}
	if entries, _ := os.ReadDir(partial); len(entries) != 1 {
		t.Errorf("the partial dir changed: %d entries", len(entries))
	}
	if _, err := EnsureModel(filepath.Join(root, "none"), "", 1); !errors.Is(err, recipes.ErrRecipe) {
		t.Errorf("no model and no model.create: %v", err)
	}
	fresh := filepath.Join(root, "fresh")
	if created, err := EnsureModel(fresh, "tiny", 1); !created || err != nil {
		t.Fatalf("EnsureModel into a new dir: %v, %v", created, err)
	}
	if created, err := EnsureModel(fresh, "tiny", 1); created || err != nil {
		t.Errorf("EnsureModel on the made model: %v, %v", created, err)
	}
}
