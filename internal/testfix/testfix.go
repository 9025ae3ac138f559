// Package testfix makes the small fixture the packages above stack test
// against: a random `tiny` model and a synthetic CA-MER-like dataset in a
// temporary directory, and fast recipes over them. It is for tests only.
package testfix

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/omnisynth"
	"github.com/mose-llm/mose/data/synth"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/refenv"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// Fixture is a tiny random model and a small synthetic dataset.
type Fixture struct {
	Dir, Model, Train, Eval string
	// Err is why the fixture could not be made (Main): every test that
	// asks it for a recipe fails with it.
	Err error

	omni omniFixture
}

// New makes the fixture in a new temporary directory (remove it with
// Close): the `tiny` preset at seed 3, 192 training and 36 eval samples.
func New() (*Fixture, error) {
	dir, err := os.MkdirTemp("", "mose-test-")
	if err != nil {
		return nil, err
	}
	f := &Fixture{Dir: dir, Model: filepath.Join(dir, "model"),
		Train: filepath.Join(dir, "data", "train.jsonl"), Eval: filepath.Join(dir, "data", "eval.jsonl")}
	if _, err := stack.InitModelDir(f.Model, stack.InitModel{Preset: "tiny", Seed: 3}); err != nil {
		f.Close()
		return nil, err
	}
	p, _ := synth.LookupPreset("tiny")
	cfg := synth.DefaultConfig(p)
	cfg.Train, cfg.Eval = 192, 36
	if _, err := synth.Generate(filepath.Join(dir, "data"), cfg, false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Main runs a package's tests with a fixture in *f, for TestMain: it makes
// the fixture, runs the tests and removes it. TestMain returns after it, and
// the testing package exits with the tests' code.
func Main(m *testing.M, f **Fixture) {
	fx, err := New()
	if err != nil {
		fx = &Fixture{Err: fmt.Errorf("testfix: making the fixture: %w", err)}
	}
	*f = fx
	defer fx.Close()
	m.Run()
}

// Close removes the fixture's directory.
func (f *Fixture) Close() {
	if f.Dir != "" {
		os.RemoveAll(f.Dir)
	}
}

// Recipe is a fast demo-tiny recipe over the fixture writing into a fresh
// temporary dir, with sets (key=value) applied last.
func (f *Fixture) Recipe(t testing.TB, sets ...string) *recipes.Config {
	t.Helper()
	if f.Err != nil {
		t.Fatal(f.Err)
	}
	base := []string{
		"model.path=" + f.Model, "data.train=" + f.Train, "data.eval=" + f.Eval,
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

// QuietLog is a logger that discards everything.
func QuietLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(nopWriter{})
	return l
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// Adapted writes a checkpoint of the recipe's adapters (and trained
// projectors) filled with seeded random values of scale 0.05, as a
// training run would leave them but without training: what inference tests
// need, below the trainer. It returns the recipe (sets applied) and the
// checkpoint directory, which is validated like any other.
func (f *Fixture) Adapted(t testing.TB, sets ...string) (*recipes.Config, string) {
	t.Helper()
	cfg := f.Recipe(t, sets...)
	recipe, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "checkpoints")
	var dir string
	err = torch.Run(func() error {
		c, err := stack.Build(cfg, stack.NoData)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := torch.ManualSeed(cfg.Run.Seed + 12345); err != nil {
			return err
		}
		s := torch.NewScope()
		defer s.Close()
		var adapter []checkpoint.Named
		err = torch.NoGrad(func() error {
			for _, p := range c.Params {
				r := s.MulScalar(s.Randn(p.T.Shape(), torch.Float32, c.Dev), 0.05)
				if err := s.Err(); err != nil {
					return err
				}
				if err := p.T.CopyFrom(s.To(r, p.T.DType())); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, n := range c.Set.Export(s) {
			adapter = append(adapter, checkpoint.Named{Name: n.Name, T: n.T})
		}
		for _, p := range c.Params {
			if stack.IsProjector(p.Name) {
				adapter = append(adapter, checkpoint.Named{Name: p.Name, T: s.Detach(p.T)})
			}
		}
		st := checkpoint.State{RNG: checkpoint.RNGState{Seed: cfg.Run.Seed, Scheme: checkpoint.RNGScheme},
			Sampler: data.SamplerState{Seed: uint64(cfg.Run.Seed)}, ModalityWeights: [2]float64{1, 1},
			Lineage: "testfix", RecipeHash: checkpoint.Hash(recipe)}
		dir, _, err = checkpoint.Write(root, st, recipe, func(tmp string) error {
			meta := map[string]string{"format": "pt"}
			if err := checkpoint.WriteTensors(s, filepath.Join(tmp, checkpoint.AdapterFile), adapter, meta); err != nil {
				return err
			}
			return checkpoint.WriteTensors(s, filepath.Join(tmp, checkpoint.OptimizerFile), nil, meta)
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

// Seal completes a hand-made checkpoint dir (recipe.yaml and
// adapter.safetensors written) as mose would: an optimizer file (empty if
// missing) and a valid, checksummed trainer_state.json at step.
func Seal(t *testing.T, ck string, step int, weights [2]float64) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(ck, checkpoint.OptimizerFile)); err != nil {
		if err := safetensors.WriteFile(filepath.Join(ck, checkpoint.OptimizerFile), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	recipe, err := os.ReadFile(filepath.Join(ck, checkpoint.RecipeFile))
	if err != nil {
		t.Fatal(err)
	}
	sums, err := checkpoint.FileSums(ck)
	if err != nil {
		t.Fatal(err)
	}
	st := checkpoint.State{Step: step, OptimizerSteps: step, Sampler: data.SamplerState{Seed: 1, Cursor: step}, RNG: checkpoint.RNGState{Seed: 1, Scheme: checkpoint.RNGScheme},
		ModalityWeights: weights, Lineage: "hand-made", RecipeHash: checkpoint.Hash(recipe), Version: "test",
		Time: "2026-01-01T00:00:00Z", Files: sums}
	if err := checkpoint.WriteState(ck, st); err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.Read(ck); err != nil {
		t.Fatalf("sealed checkpoint fails validation: %v", err)
	}
}

// Reseal edits the state and writes it back with a valid checksum (and the
// files' checksums recomputed), so that only the range checks can catch it.
func Reseal(t *testing.T, dir string, fn func(st *checkpoint.State)) {
	t.Helper()
	var st checkpoint.State
	b, _ := os.ReadFile(filepath.Join(dir, checkpoint.StateFile))
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	sums, err := checkpoint.FileSums(dir)
	if err != nil {
		t.Fatal(err)
	}
	st.Files = sums
	fn(&st)
	if err := checkpoint.WriteState(dir, st); err != nil {
		t.Fatal(err)
	}
}

// RefPython returns the Python reference environment's interpreter
// (transformers, PEFT, tokenizers, safetensors, gguf, TensorBoard on torch
// 2.11, CPU; scripts/setup/pyenv.sh builds it and `make test` runs that):
// $MOSE_REF_PYTHON when set, else the venv in mose's cache. Without either the
// test is skipped, naming why (the package index could not be reached, or the
// command that builds it). It is internal/refenv.Python, for the packages that
// import testfix.
func RefPython(t testing.TB) string {
	t.Helper()
	return refenv.Python(t)
}

// omniFixture is the fixture's Qwen2.5-Omni part, made on first use.
type omniFixture struct {
	once         sync.Once
	model, train string
	err          error
}

// Omni returns a random omni-tiny thinker (seed 3, with its tokenizer) and a
// synthetic omni manifest of 8 one-second clips drawn in Go (no FFmpeg: the
// same bytes on every machine), made once under the fixture's directory.
func (f *Fixture) Omni(t testing.TB) (model, train string) {
	t.Helper()
	if f.Err != nil {
		t.Fatal(f.Err)
	}
	o := &f.omni
	o.once.Do(func() {
		o.model = filepath.Join(f.Dir, "omni-model")
		if o.err = stack.InitOmniModelDir(o.model, "omni-tiny", 3); o.err != nil {
			return
		}
		tok, err := tokenizer.Parse(omniproc.TinyTokenizerJSON)
		if err != nil {
			o.err = err
			return
		}
		var res omnisynth.Result
		res, o.err = omnisynth.Generate(context.Background(), filepath.Join(f.Dir, "omni-data"), tok,
			omnisynth.Config{Samples: 8, Seed: 5, Seconds: 1, NoFFmpeg: true})
		o.train = res.Train
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.model, o.train
}

// OmniRecipe is a fast omni-tiny-mose recipe over the fixture's omni part,
// writing into a fresh temporary dir, with sets (key=value) applied last.
func (f *Fixture) OmniRecipe(t testing.TB, sets ...string) *recipes.Config {
	t.Helper()
	model, train := f.Omni(t)
	base := []string{
		"model.path=" + model, "model.create=", "data.train=" + train, "data.synth=",
		"data.cache_dir=" + filepath.Join(f.Dir, "datacache"), // the fixture's own, shared by its runs
		"run.output_dir=" + filepath.Join(t.TempDir(), "run"), "run.threads=1",
		"train.batch_size=2", "train.max_steps=8", "train.log_every=1", "train.save_every=0", "train.warmup_steps=2",
		"train.lr=5e-3", "adapters.dropout=0.1", "adapters.gate.noise=0.1",
	}
	cfg, err := recipes.Load("omni-tiny-mose", append(base, sets...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
