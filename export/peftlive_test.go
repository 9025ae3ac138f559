package export

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mose-llm/mose/internal/testfix"
)

// The reference venv's PEFT (0.21.2) writes an adapter of every LoraConfig
// variant of the fixture script for a tiny model, with its own logits, and
// mose imports each within the fixtures' tolerance: the committed sets'
// check, live, against whatever PEFT the venv has. About 15 s of Python;
// skipped with -short or without the venv.
func TestPEFTImportLive(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the live PEFT check runs the fixture script (about 15 s)")
	}
	py := testfix.RefPython(t)
	out := filepath.Join(t.TempDir(), "live")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "../scripts/fixtures/make_peft_import_fixtures.py", "--out", out)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make_peft_import_fixtures.py --out: %v\n%s", err, msg)
	}
	variants := peftVariants(t, out)
	if len(variants) < 21 {
		t.Fatalf("the script wrote %d variants, want at least 21", len(variants))
	}
	names := make([]string, 0, len(variants))
	for v := range variants {
		names = append(names, v)
	}
	slices.Sort(names)
	for _, v := range names {
		t.Run(v, func(t *testing.T) {
			runPEFTImportCase(t, out, peftImportCase{name: v, variant: v, golden: "logits_" + v})
		})
	}
}
