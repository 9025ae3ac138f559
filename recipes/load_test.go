package recipes

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// One key (train.lr) set at every combination of the four levels.
func TestPrecedence(t *testing.T) {
	const (
		def  = 1e-4 // Defaults()
		file = 1e-3
		env  = 2e-4
		set  = 3e-4
	)
	tests := []struct {
		name          string
		inFile, inEnv bool
		sets          []string
		want          float64
	}{
		{"default only", false, false, nil, def},
		{"file beats default", true, false, nil, file},
		{"env beats default", false, true, nil, env},
		{"env beats file", true, true, nil, env},
		{"set beats file", true, false, []string{"train.lr=3e-4"}, set},
		{"set beats env and file", true, true, []string{"train.lr=3e-4"}, set},
		{"last set wins", true, true, []string{"train.lr=1", "train.lr=3e-4"}, set},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			body := minimal
			if tt.inFile {
				body += "train:\n  lr: 1.0e-3\n  min_lr: 0\n"
			}
			if tt.inEnv {
				t.Setenv("MOSE_TRAIN_LR", "2e-4")
			}
			c := mustLoad(t, writeRecipe(t, t.TempDir(), "r.yaml", body), tt.sets...)
			if c.Train.LR != tt.want {
				t.Errorf("train.lr = %v, want %v", c.Train.LR, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cleanEnv(t)
	c := mustLoad(t, writeRecipe(t, t.TempDir(), "my-run.yaml", minimal))
	d := Defaults()
	// Everything but the required and derived keys equals Defaults().
	d.Model.Path, d.Data.Train = c.Model.Path, c.Data.Train
	d.Run.Name, d.Run.OutputDir, d.Eval.BatchSize = "my-run", c.Run.OutputDir, d.Train.BatchSize
	if !reflect.DeepEqual(*c, d) {
		t.Errorf("loaded %+v\nwant    %+v", *c, d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Defaults plus the required keys do not validate: %v", err)
	}
}

// Every key has a distinct variable, and keys with underscores map as
// documented.
func TestEnvNames(t *testing.T) {
	seen := map[string]string{}
	for _, k := range keyTable {
		if other, dup := seen[k.env]; dup {
			t.Errorf("%s and %s share %s", k.key, other, k.env)
		}
		seen[k.env] = k.key
		if !isRecipeEnv(k.env) {
			t.Errorf("%s is not in the recipe namespace", k.env)
		}
	}
	for key, env := range map[string]string{
		"train.max_steps": "MOSE_TRAIN_MAX_STEPS", "train.lr": "MOSE_TRAIN_LR",
		"adapters.gate.top_k": "MOSE_ADAPTERS_GATE_TOP_K", "eval.ar.tau_value": "MOSE_EVAL_AR_TAU_VALUE",
		"model.train_projectors": "MOSE_MODEL_TRAIN_PROJECTORS", "nope": "",
	} {
		if got := EnvVar(key); got != env {
			t.Errorf("EnvVar(%s) = %q, want %q", key, got, env)
		}
	}
	if len(Keys()) != len(keyTable) || Keys()[0] != "run.name" {
		t.Errorf("Keys() = %v", Keys())
	}
}

// Values from the environment and --set, in every supported spelling.
func TestEnvAndSetValues(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		sets []string
		key  string
		want any
	}{
		{"set list", nil, []string{"train.betas=[0.9,0.95]"}, "train.betas", []float64{0.9, 0.95}},
		{"set comma list", nil, []string{"train.betas=0.8, 0.9"}, "train.betas", []float64{0.8, 0.9}},
		{"set string list", nil, []string{"adapters.targets=[q_proj,k_proj]"}, "adapters.targets", []string{"q_proj", "k_proj"}},
		{"env comma list", map[string]string{"MOSE_ADAPTERS_TARGETS": "q_proj,o_proj"}, nil, "adapters.targets", []string{"q_proj", "o_proj"}},
		{"env int with underscores in key", map[string]string{"MOSE_TRAIN_MAX_STEPS": "42"}, nil, "train.max_steps", 42},
		{"env bool", map[string]string{"MOSE_MODEL_TRAIN_PROJECTORS": "true"}, nil, "model.train_projectors", true},
		{"env int64", map[string]string{"MOSE_RUN_SEED": "7"}, nil, "run.seed", int64(7)},
		{"env uint64", map[string]string{"MOSE_DATA_SYNTH_SEED": "18446744073709551615"}, nil, "data.synth_seed", uint64(1<<64 - 1)},
		{"set string as written", nil, []string{"run.name=001"}, "run.name", "001"},
		{"set quoted string", nil, []string{`run.device="cuda:1"`}, "run.device", "cuda:1"},
		{"set device with colon", nil, []string{"run.device=cuda:0"}, "run.device", "cuda:0"},
		{"set integral float as int", nil, []string{"train.max_steps=1e3"}, "train.max_steps", 1000},
		{"set nested", nil, []string{"adapters.experts.visual=4"}, "adapters.experts.visual", 4},
		{"empty env clears a string", map[string]string{"MOSE_DATA_EVAL": ""}, nil, "data.eval", ""},
		{"set empty list overrides the file", nil, []string{"eval.ar.layers=[]"}, "eval.ar.layers", []int(nil)},
		{"set beats env", map[string]string{"MOSE_TRAIN_EPOCHS": "3"}, []string{"train.epochs=4"}, "train.epochs", 4},
		{"non-recipe MOSE_ vars are ignored", map[string]string{"MOSE_CACHE": "/x", "MOSE_DEVICE": "cpu", "MOSE_BENCH_MODEL": "y"}, nil, "train.epochs", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			body := minimal + "  eval: d/eval.jsonl\neval:\n  ar:\n    layers: [2, 5]\n"
			c := mustLoad(t, writeRecipe(t, t.TempDir(), "r.yaml", body), tt.sets...)
			got, ok := c.Lookup(tt.key)
			if !ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.key, got, tt.want)
			}
		})
	}
}

// Relative paths are relative to the working directory, not to the recipe.
func TestRelativePathsFollowWorkingDir(t *testing.T) {
	cleanEnv(t)
	recipeDir, work := t.TempDir(), t.TempDir()
	path := writeRecipe(t, recipeDir, "exp.yaml", minimal+"  eval: /abs/eval.jsonl\n  root: feats/../features\n")
	t.Chdir(work)
	wd, err := os.Getwd() // resolves symlinks the way filepath.Abs will see them
	if err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, path)
	for key, want := range map[string]string{
		"model.path":     filepath.Join(wd, "m"),
		"data.train":     filepath.Join(wd, "d/train.jsonl"),
		"data.eval":      "/abs/eval.jsonl",
		"data.root":      filepath.Join(wd, "features"),
		"run.output_dir": filepath.Join(wd, "runs", "exp"),
		"run.name":       "exp",
	} {
		if got, _ := c.Lookup(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	// Derived keys follow the final name.
	c = mustLoad(t, path, "run.name=other")
	if c.Run.OutputDir != filepath.Join(wd, "runs", "other") {
		t.Errorf("output_dir = %q, want runs/other", c.Run.OutputDir)
	}
	c = mustLoad(t, path, "run.output_dir=out", "train.batch_size=5")
	if c.Run.OutputDir != filepath.Join(wd, "out") || c.Eval.BatchSize != 5 {
		t.Errorf("output_dir = %q, eval.batch_size = %d", c.Run.OutputDir, c.Eval.BatchSize)
	}
}

// Parse ignores the environment: a saved recipe reads back as written.
func TestParseIgnoresEnv(t *testing.T) {
	cleanEnv(t)
	t.Setenv("MOSE_TRAIN_LR", "0.5")
	t.Setenv("MOSE_TRAIN_NOPE", "1")
	c, err := Parse([]byte(minimal), "saved/recipe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Train.LR != Defaults().Train.LR || c.Run.Name != "recipe" {
		t.Errorf("lr %v name %q: the environment leaked into Parse", c.Train.LR, c.Run.Name)
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	cleanEnv(t)
	body := "model:\n  path: 5\ntrain:\n  lr: -1\n  schedule: step\n  bogus: 1\n"
	_, err := Load(writeRecipe(t, t.TempDir(), "r.yaml", body), []string{"adapters.rank=0"})
	var keys []string
	for _, ke := range keyErrors(err) {
		keys = append(keys, ke.Key)
	}
	slices.Sort(keys)
	// model.path has a type error and is not reported again as missing.
	want := []string{"adapters.rank", "data.train", "model.path", "train.bogus", "train.lr", "train.schedule"}
	if !slices.Equal(keys, want) {
		t.Errorf("problems %v, want %v\n%v", keys, want, err)
	}
}
