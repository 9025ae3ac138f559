package trainer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/data/synth"
	"github.com/mose-llm/mose/recipes"
)

// fixture is a tiny random model and a small synthetic dataset shared by the
// package's tests (made once in TestMain).
var fixture struct{ model, train, eval string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mose-trainer-test-")
	if err != nil {
		panic(err)
	}
	fixture.model = filepath.Join(dir, "model")
	if _, err := InitModelDir(fixture.model, InitModel{Preset: "tiny", Seed: 3}); err != nil {
		panic(err)
	}
	p, _ := synth.LookupPreset("tiny")
	cfg := synth.DefaultConfig(p)
	cfg.Train, cfg.Eval = 192, 36
	if _, err := synth.Generate(filepath.Join(dir, "data"), cfg, false); err != nil {
		panic(err)
	}
	fixture.train = filepath.Join(dir, "data", "train.jsonl")
	fixture.eval = filepath.Join(dir, "data", "eval.jsonl")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testRecipe is a fast recipe over the fixture writing into a fresh dir.
func testRecipe(t testing.TB, sets ...string) *recipes.Config {
	t.Helper()
	base := []string{
		"model.path=" + fixture.model, "data.train=" + fixture.train, "data.eval=" + fixture.eval,
		"run.output_dir=" + filepath.Join(t.TempDir(), "run"), "run.threads=1",
		"train.batch_size=8", "train.max_steps=12", "train.log_every=1", "train.eval_every=0",
		"train.save_every=0", "train.warmup_steps=2", "train.lr=2e-3", "train.keep_best_by=",
		"adapters.dropout=0.1", "adapters.gate.noise=0.1",
	}
	cfg, err := recipes.Load("demo-tiny", append(base, sets...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func quietLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(nopWriter{})
	return l
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
