package recipes

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestPresets(t *testing.T) {
	want := []string{"demo-tiny", "emotion-llama-lora", "emotion-llama-mose", "omni-tiny-media", "omni-tiny-mose", "qwen2.5-omni-mose", "qwen2.5-omni-qlora"}
	if got := Presets(); !slices.Equal(got, want) {
		t.Fatalf("Presets() = %v, want %v", got, want)
	}
	// The embedded copies are the files in this directory.
	for _, name := range want {
		disk, err := os.ReadFile(name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		emb, _ := presetFS.ReadFile(name + ".yaml")
		if string(disk) != string(emb) {
			t.Errorf("%s: embedded copy differs", name)
		}
	}
}

// Every shipped recipe loads strictly (no unknown keys, right types) and
// validates, both from its file and as a preset.
func TestShippedRecipesLoad(t *testing.T) {
	cleanEnv(t)
	for _, name := range Presets() {
		t.Run(name, func(t *testing.T) {
			fromFile := mustLoad(t, name+".yaml") // the test runs in recipes/
			if err := fromFile.Validate(); err != nil {
				t.Fatal(err)
			}
			fromPreset := mustLoad(t, name)
			if !reflect.DeepEqual(fromFile, fromPreset) {
				t.Errorf("file and preset differ: %v", diffKeys(fromFile, fromPreset))
			}
			if fromFile.Run.Name != name || filepath.Base(fromFile.Run.OutputDir) != name {
				t.Errorf("run.name %q, output_dir %q", fromFile.Run.Name, fromFile.Run.OutputDir)
			}
			for _, k := range []string{"adapters.method", "adapters.targets", "train.lr", "train.schedule", "data.eval", "train.keep_best_by"} {
				if !presetSets(t, name, k) {
					t.Errorf("%s does not set %s explicitly", name, k)
				}
			}
		})
	}
}

// presetSets reports whether a shipped recipe names key itself.
func presetSets(t *testing.T, name, key string) bool {
	data, _ := presetFS.ReadFile(name + ".yaml")
	var ps problems
	fv, err := decodeFile(data, name, &ps)
	if err != nil || len(ps) > 0 {
		t.Fatalf("%s: %v %v", name, err, ps.err())
	}
	_, ok := fv.values[key]
	return ok
}

func TestDemoTiny(t *testing.T) {
	cleanEnv(t)
	c := mustLoad(t, "demo-tiny")
	wd, _ := os.Getwd()
	checks := map[string]any{
		"model.path": filepath.Join(wd, "runs/models/tiny"), "model.create": "tiny", "model.train_projectors": true,
		"data.train": filepath.Join(wd, "runs/data/synth-tiny/train.jsonl"), "data.synth": "tiny",
		"data.eval":       filepath.Join(wd, "runs/data/synth-tiny/eval.jsonl"),
		"adapters.method": "mose", "adapters.targets": []string{"q_proj", "v_proj"},
		"adapters.experts.visual": 3, "adapters.experts.nonvisual": 3, "adapters.experts.omni": 1,
		"run.device": "cpu", "run.threads": 2, "train.keep_best_by": "all.accuracy",
	}
	for k, want := range checks {
		if got, _ := c.Lookup(k); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", k, got, want)
		}
	}
}

// The two Emotion-LLaMA recipes differ only in their method (and name).
func TestEmotionLLaMARecipesMatch(t *testing.T) {
	cleanEnv(t)
	mose, lora := mustLoad(t, "emotion-llama-mose"), mustLoad(t, "emotion-llama-lora")
	if mose.Adapters.Method != "mose" || lora.Adapters.Method != "lora" {
		t.Fatalf("methods %q, %q", mose.Adapters.Method, lora.Adapters.Method)
	}
	if d := diffKeys(mose, lora); !slices.Equal(d, []string{"run.name", "run.output_dir", "adapters.method"}) {
		t.Errorf("the recipes differ in %v", d)
	}
	for k, want := range map[string]any{"run.device": "cuda", "model.dtype": "bfloat16", "train.lr": 1e-5,
		"train.min_lr": 1e-6, "train.weight_decay": 0.05, "train.betas": []float64{0.9, 0.999},
		"adapters.rank": 64, "adapters.alpha": 16.0, "model.train_projectors": true} {
		if got, _ := mose.Lookup(k); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", k, got, want)
		}
	}
	if mose.Train.WarmupSteps == 0 || mose.Train.Schedule != "cosine" {
		t.Error("want a warmup and a cosine schedule")
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		arg, wantPath, wantStart string
	}{
		{"demo-tiny", "embedded:demo-tiny.yaml", "# demo-tiny"},
		{"demo-tiny.yaml", "embedded:demo-tiny.yaml", "# demo-tiny"},
		{"emotion-llama-lora", "embedded:emotion-llama-lora.yaml", "# emotion-llama-lora"},
	}
	for _, tt := range tests {
		path, data, err := Resolve(tt.arg)
		if err != nil || path != tt.wantPath || !strings.HasPrefix(string(data), tt.wantStart) {
			t.Errorf("Resolve(%q) = %q, %.20q, %v", tt.arg, path, data, err)
		}
	}
	// A path that exists wins over a preset of the same name.
	writeRecipe(t, dir, "demo-tiny", "# local\n"+minimal)
	if path, data, err := Resolve("demo-tiny"); err != nil || path != "demo-tiny" || !strings.HasPrefix(string(data), "# local") {
		t.Errorf("local file did not win: %q %v", path, err)
	}
	os.Mkdir("sub", 0o755)
	p := writeRecipe(t, dir, "sub/x.yml", minimal)
	if path, _, err := Resolve(p); err != nil || path != p {
		t.Errorf("Resolve(%q) = %q, %v", p, path, err)
	}
	// Presets are found by bare name only, not under a missing directory.
	if _, _, err := Resolve("missing/demo-tiny.yaml"); !isRecipeErr(err) {
		t.Errorf("Resolve of a missing path: %v", err)
	}
	if _, _, err := Resolve("sub"); !isRecipeErr(err) {
		t.Errorf("Resolve of a directory: %v", err)
	}
	// run.name of a preset and of a .yml file.
	cleanEnv(t)
	if c := mustLoad(t, "emotion-llama-mose.yaml"); c.Run.Name != "emotion-llama-mose" {
		t.Errorf("preset name %q", c.Run.Name)
	}
	if c := mustLoad(t, p); c.Run.Name != "x" {
		t.Errorf("name %q", c.Run.Name)
	}
}

// Errors in an embedded preset name it.
func TestPresetErrorsNameThePreset(t *testing.T) {
	cleanEnv(t)
	t.Chdir(t.TempDir())
	_, err := Load("demo-tiny", []string{"train.lr=-1"})
	if err == nil || !strings.Contains(err.Error(), "--set train.lr=-1: train.lr") {
		t.Errorf("error %v", err)
	}
	_, err = Load("demo-tiny", []string{"data.eval="})
	if err == nil || !regexp.MustCompile(`^embedded:demo-tiny\.yaml:\d+: train\.keep_best_by: needs data\.eval`).MatchString(err.Error()) {
		t.Errorf("error %v", err)
	}
}

// The README's table documents every key.
func TestREADMEListsEveryKey(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(readme), "| `"+k+"` |") {
			t.Errorf("README.md has no row for %s", k)
		}
	}
}
