package recipes

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestYAMLRoundTrip(t *testing.T) {
	cleanEnv(t)
	configs := map[string]*Config{}
	for _, name := range Presets() {
		configs[name] = mustLoad(t, name)
	}
	// Every kind of value, including empty and unusual ones.
	configs["custom"] = mustLoad(t, "demo-tiny",
		"run.name=007", "run.device=cuda:3", "model.create=", "eval.ar.layers=[2,5]", "train.betas=[0.5,0.25]",
		"train.lr=1.2345678901234567e-5", "train.min_lr=0", "data.synth_seed=18446744073709551615",
		"adapters.targets=[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]", "data.root=feat dir/#x: y")
	for name, c := range configs {
		t.Run(name, func(t *testing.T) {
			b, err := c.YAML()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range Keys() { // every key is written
				leaf := k[strings.LastIndex(k, ".")+1:]
				if !regexp.MustCompile(`(?m)^\s*` + leaf + `:`).Match(b) {
					t.Errorf("YAML lacks %s", k)
				}
			}
			back := mustLoad(t, writeRecipe(t, t.TempDir(), "saved.yaml", string(b)))
			if b2, _ := back.YAML(); string(b2) != string(b) {
				t.Errorf("round trip changed the recipe:\n%s\nvs\n%s", b, b2)
			}
			if d := diffKeys(c, back); len(d) != 0 {
				t.Errorf("round trip changed %v", d)
			}
			parsed, err := Parse(b, "elsewhere/recipe.yaml")
			if err != nil || len(diffKeys(c, parsed)) != 0 {
				t.Errorf("Parse of the saved recipe: %v %v", err, diffKeys(c, parsed))
			}
			if back.Hash() != c.Hash() {
				t.Errorf("hash changed in the round trip")
			}
		})
	}
}

func TestHash(t *testing.T) {
	cleanEnv(t)
	a, b := mustLoad(t, "demo-tiny"), mustLoad(t, "demo-tiny")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(a.Hash()) {
		t.Fatalf("hash %q is not a hex sha256", a.Hash())
	}
	if a.Hash() != b.Hash() || a.Hash() != a.Hash() {
		t.Error("the same recipe hashes differently")
	}
	for _, set := range []string{"train.log_every=11", "train.lr=0.001", "eval.ar.enabled=true", "train.betas=[0.9,0.99]"} {
		if mustLoad(t, "demo-tiny", set).Hash() == a.Hash() {
			t.Errorf("--set %s did not change the hash", set)
		}
	}
}

// diffKeys lists the keys whose values differ.
func diffKeys(a, b *Config) []string {
	var out []string
	for _, k := range Keys() {
		va, _ := a.Lookup(k)
		vb, _ := b.Lookup(k)
		if !reflect.DeepEqual(va, vb) {
			out = append(out, k)
		}
	}
	return out
}

func TestExactnessDiff(t *testing.T) {
	tests := []struct {
		name string
		old  []string // --set applied to the old recipe
		new  []string // --set applied to the new one
		want []string
	}{
		{"identical", nil, nil, nil},
		{"bookkeeping only", nil, []string{"train.log_every=1", "train.save_every=7", "train.eval_every=0",
			"train.keep_last=9", "train.keep_best_by=", "run.output_dir=/elsewhere", "data.workers=8",
			"data.eval=", "eval.mode=generate", "eval.ar.enabled=true", "run.threads=1", "train.max_nonfinite=2",
			"train.activation_checkpointing=true"}, nil},
		{"batch and accumulation", nil, []string{"train.batch_size=8", "train.grad_accum=2"},
			[]string{"train.batch_size", "train.grad_accum"}},
		{"optimizer", nil, []string{"train.lr=0.001", "train.betas=[0.9,0.99]", "train.eps=1e-6",
			"train.weight_decay=0.1", "train.max_grad_norm=0", "train.min_lr=0", "train.warmup_steps=0", "train.schedule=linear"},
			[]string{"train.lr", "train.schedule", "train.warmup_steps", "train.min_lr", "train.weight_decay", "train.betas", "train.eps", "train.max_grad_norm"}},
		{"adapters and loss", nil, []string{"adapters.rank=4", "adapters.gate.noise=0.1", "adapters.experts.omni=0", "loss.z_loss=0"},
			[]string{"adapters.rank", "adapters.experts.omni", "adapters.gate.noise", "loss.z_loss"}},
		{"model, data and seed", nil, []string{"run.seed=2", "model.path=/other", "model.dtype=bfloat16",
			"model.train_projectors=false", "data.train=/t.jsonl", "data.max_len=64", "data.root=/f"},
			[]string{"run.seed", "model.path", "model.dtype", "model.train_projectors", "data.train", "data.root", "data.max_len"}},
		{"longer cosine horizon", nil, []string{"train.max_steps=600"}, []string{"train.max_steps"}},
		{"epochs unused while max_steps is set", nil, []string{"train.epochs=5"}, nil},
		{"epochs horizon", []string{"train.max_steps=0"}, []string{"train.max_steps=0", "train.epochs=3"}, []string{"train.epochs"}},
		{"steps to epochs", nil, []string{"train.max_steps=0"}, []string{"train.max_steps"}},
		{"constant schedule has no horizon", []string{"train.schedule=constant"}, []string{"train.schedule=constant", "train.max_steps=900"}, nil},
		{"constant to cosine", []string{"train.schedule=constant"}, []string{"train.max_steps=900"}, []string{"train.max_steps", "train.schedule"}},
	}
	// nil is an all-zero Config: every set exact key differs.
	if d := ExactnessDiff(nil, validConfig()); !slices.Contains(d, "train.lr") || !slices.Contains(d, "train.epochs") {
		t.Errorf("ExactnessDiff(nil, c) = %v", d)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			old, cur := mustLoad(t, "demo-tiny", tt.old...), mustLoad(t, "demo-tiny", tt.new...)
			got := ExactnessDiff(old, cur)
			if !slices.Equal(got, tt.want) {
				t.Errorf("ExactnessDiff = %v, want %v", got, tt.want)
			}
		})
	}
}
