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
