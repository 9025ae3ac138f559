package recipes

import (
	"strings"
	"testing"
)

// Bad recipes: each error must wrap ErrRecipe and name the key and where the
// bad value came from ("r.yaml:LINE", "env NAME", "--set k=v", or the recipe
// path for a missing key).
func TestBadRecipes(t *testing.T) {
	tests := []struct {
		name string
		body string // recipe file; minimal if empty
		env  map[string]string
		sets []string
		want []string // substrings of the error
	}{
		{name: "unknown top-level key", body: minimal + "trainer:\n  lr: 1\n",
			want: []string{"r.yaml:5:", "trainer", "unknown key", "did you mean train?"}},
		{name: "unknown nested key", body: minimal + "train:\n  lrr: 0.1\n",
			want: []string{"r.yaml:6:", "train.lrr", "unknown key", "did you mean train.lr?"}},
		{name: "keys are case-sensitive", body: minimal + "Train:\n  lr: 0.1\n",
			want: []string{"r.yaml:5:", "Train", "unknown key"}},
		{name: "unknown --set key", sets: []string{"train.lrr=1"},
			want: []string{"--set train.lrr=1", "train.lrr", "unknown key"}},
		{name: "unknown env key", env: map[string]string{"MOSE_TRAIN_LRR": "1"},
			want: []string{"env MOSE_TRAIN_LRR", "names no recipe key", "MOSE_TRAIN_LR?"}},
		{name: "wrong type in file", body: minimal + "train:\n  lr: fast\n",
			want: []string{"r.yaml:6:", "train.lr", `expected a number, got "fast"`}},
		{name: "quoted number", body: minimal + "train:\n  lr: \"1e-3\"\n",
			want: []string{"r.yaml:6:", "train.lr", `expected a number, got "1e-3"`}},
		{name: "float for an integer", body: minimal + "train:\n  max_steps: 3.5\n",
			want: []string{"r.yaml:6:", "train.max_steps", "expected an integer"}},
		{name: "string for a bool", body: "model:\n  path: m\n  train_projectors: yes\ndata:\n  train: t\n",
			want: []string{"r.yaml:3:", "model.train_projectors", "expected true or false"}},
		{name: "number for a string", body: minimal + "run:\n  name: 2024\n",
			want: []string{"r.yaml:6:", "run.name", "expected a string", "quote it"}},
		{name: "scalar for a list", body: minimal + "adapters:\n  targets: q_proj\n",
			want: []string{"r.yaml:6:", "adapters.targets", "expected a list of strings"}},
		{name: "scalar for a section", body: minimal + "train: 5\n",
			want: []string{"r.yaml:5:", "train", "is a section"}},
		{name: "duplicate key", body: minimal + "train:\n  lr: 0.1\n  lr: 0.2\n",
			want: []string{"r.yaml:7:", "train.lr", "duplicate key (first at line 6)"}},
		{name: "wrong type via --set", sets: []string{"train.max_steps=many"},
			want: []string{"--set train.max_steps=many", "train.max_steps", "expected an integer"}},
		{name: "wrong type via env", env: map[string]string{"MOSE_TRAIN_BATCH_SIZE": "big"},
			want: []string{"env MOSE_TRAIN_BATCH_SIZE", "train.batch_size", "expected an integer"}},
		{name: "--set of a section", sets: []string{"train=1"},
			want: []string{"--set train=1", "train", "is a section"}},
		{name: "--set without =", sets: []string{"train.lr"},
			want: []string{"--set train.lr", "expected key=value"}},
		{name: "negative lr in file", body: minimal + "train:\n  lr: -1.0e-4\n",
			want: []string{"r.yaml:6:", "train.lr", "must be > 0"}},
		{name: "negative lr via env", env: map[string]string{"MOSE_TRAIN_LR": "-1"},
			want: []string{"env MOSE_TRAIN_LR", "train.lr", "must be > 0"}},
		{name: "infinite lr", body: minimal + "train:\n  lr: .inf\n",
			want: []string{"r.yaml:6:", "train.lr", "finite"}},
		{name: "min_lr above lr via --set", sets: []string{"train.min_lr=0.1"},
			want: []string{"--set train.min_lr=0.1", "train.min_lr", "must be <= train.lr"}},
		{name: "bad schedule", body: minimal + "train:\n  schedule: step\n",
			want: []string{"r.yaml:6:", "train.schedule", "cosine, constant, linear"}},
		{name: "bad method", body: minimal + "adapters:\n  method: moe\n",
			want: []string{"r.yaml:6:", "adapters.method", `got "moe"`}},
		{name: "unknown target module", body: minimal + "adapters:\n  targets: [q_proj, qkv_proj]\n",
			want: []string{"r.yaml:6:", "adapters.targets", `unknown module "qkv_proj"`}},
		{name: "duplicate target", sets: []string{"adapters.targets=[v_proj,v_proj]"},
			want: []string{"--set adapters.targets=[v_proj,v_proj]", "adapters.targets", "listed twice"}},
		{name: "top_k larger than experts", body: minimal + "adapters:\n  experts: {visual: 2, nonvisual: 4}\n  gate:\n    top_k: 3\n",
			want: []string{"r.yaml:8:", "adapters.gate.top_k", "must be <= 2"}},
		{name: "bad keep_best_by", body: minimal + "  eval: e.jsonl\ntrain:\n  keep_best_by: all.acc\n",
			want: []string{"r.yaml:7:", "train.keep_best_by", `"all.acc"`}},
		{name: "keep_best_by without data.eval", sets: []string{"train.keep_best_by=consistent.uar"},
			want: []string{"--set train.keep_best_by=consistent.uar", "train.keep_best_by", "needs data.eval"}},
		{name: "missing model.path", body: "data:\n  train: t.jsonl\n",
			want: []string{"r.yaml: model.path: is required"}},
		{name: "missing data.train", body: "model:\n  path: m\n",
			want: []string{"r.yaml: data.train: is required"}},
		{name: "bad device", body: minimal + "run:\n  device: gpu\n",
			want: []string{"r.yaml:6:", "run.device", "cpu, cuda or cuda:N"}},
		{name: "bad eval layers", sets: []string{"eval.ar.layers=[5,2]"},
			want: []string{"--set eval.ar.layers=[5,2]", "eval.ar.layers"}},
		{name: "malformed YAML", body: "model:\n  path: m\ntrain:\n  lr: [1,\n",
			want: []string{"r.yaml:4:", "malformed YAML"}},
		{name: "tab indentation", body: "model:\n\tpath: m\n",
			want: []string{"r.yaml:2:", "malformed YAML"}},
		{name: "not a mapping", body: "- model\n- data\n",
			want: []string{"r.yaml:1:", "a recipe is a mapping"}},
		{name: "two documents", body: minimal + "---\ntrain: {}\n",
			want: []string{"r.yaml", "more than one YAML document"}},
		{name: "empty file", body: "\n",
			want: []string{"r.yaml is empty"}},
		{name: "only comments", body: "# nothing yet\n",
			want: []string{"r.yaml is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			body := tt.body
			if body == "" {
				body = minimal
			}
			_, err := Load(writeRecipe(t, t.TempDir(), "r.yaml", body), tt.sets)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !isRecipeErr(err) {
				t.Errorf("error does not wrap ErrRecipe: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestMissingRecipe(t *testing.T) {
	for _, name := range []string{"", "no-such-preset", "dir/missing.yaml"} {
		_, err := Load(name, nil)
		if err == nil || !isRecipeErr(err) {
			t.Errorf("Load(%q) = %v, want ErrRecipe", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "demo-tiny") {
			t.Errorf("Load(%q): error does not list the presets: %v", name, err)
		}
	}
}
