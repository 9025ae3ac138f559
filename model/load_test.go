package model

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

// tinyConfig is a 2-layer GQA model with a linear and an mlp2 projector.
func tinyConfig() Config {
	return Config{
		ModelType: "llama", HiddenSize: 32, IntermediateSize: 48, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, HeadDim: 8, RMSNormEps: 1e-5, RopeTheta: 10000,
		VocabSize: 50, MaxPositionEmbeddings: 128, HiddenAct: "silu",
		Projectors: []ProjectorConfig{{Name: "frames", Dim: 6, Kind: ProjectorLinear}, {Name: "audio", Dim: 5, Kind: ProjectorMLP2}},
	}
}

func tinyMose() json.RawMessage {
	return json.RawMessage(`{"inputs":[{"name":"frames","modality":"visual","feature_dim":6,"tokens":3,"projector":"linear","placeholder":"<V>"},` +
		`{"name":"audio","modality":"audio","feature_dim":5,"tokens":1,"projector":"mlp2","placeholder":"<A>"}]}`)
}

func writeTiny(t *testing.T, shard int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "m")
	if err := WriteRandom(dir, tinyConfig(), RandomOptions{Seed: 1, Std: 0.2, Mose: tinyMose(), MaxShardSize: shard}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func editConfig(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rewriteWeights rewrites model.safetensors keeping the tensors keep accepts.
func rewriteWeights(t *testing.T, dir string, keep func(name string) bool) {
	t.Helper()
	path := filepath.Join(dir, "model.safetensors")
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, info := range f.Tensors() {
		if !keep(info.Name) {
			continue
		}
		data, err := f.Read(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: data})
	}
	f.Close()
	if err := safetensors.WriteFile(path, ts, nil); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name    string
		shard   int64
		mutate  func(t *testing.T, dir string)
		is      error
		mention []string
	}{
		{"config does not match weights", 0, func(t *testing.T, dir string) {
			editConfig(t, dir, func(m map[string]any) { m["intermediate_size"] = 64 })
		}, ErrWeights, []string{"model.layers.0.mlp.gate_proj.weight", "config wants [64 32]", "has [48 32]"}},
		{"missing tensors listed", 0, func(t *testing.T, dir string) {
			rewriteWeights(t, dir, func(n string) bool { return n != "model.norm.weight" && !strings.Contains(n, "layers.1.mlp.up") })
		}, ErrWeights, []string{"2 problem(s)", "missing model.norm.weight", "missing model.layers.1.mlp.up_proj.weight"}},
		{"missing projector", 0, func(t *testing.T, dir string) {
			rewriteWeights(t, dir, func(n string) bool { return !strings.HasPrefix(n, "projectors.audio.2.") })
		}, ErrWeights, []string{"missing projectors.audio.2.weight"}},
		{"unknown model_type", 0, func(t *testing.T, dir string) {
			editConfig(t, dir, func(m map[string]any) { m["model_type"] = "gpt2" })
		}, ErrConfig, []string{"config.json", "model_type", `"gpt2"`}},
		{"unsupported rope scaling", 0, func(t *testing.T, dir string) {
			editConfig(t, dir, func(m map[string]any) { m["rope_scaling"] = map[string]any{"rope_type": "yarn", "factor": 4} })
		}, ErrConfig, []string{"rope_scaling", `"yarn"`}},
		{"kv heads do not divide heads", 0, func(t *testing.T, dir string) {
			editConfig(t, dir, func(m map[string]any) { m["num_key_value_heads"] = 3 })
		}, ErrConfig, []string{"num_key_value_heads"}},
		{"bad projector kind", 0, func(t *testing.T, dir string) {
			editConfig(t, dir, func(m map[string]any) {
				m["mose"].(map[string]any)["inputs"].([]any)[0].(map[string]any)["projector"] = "qformer"
			})
		}, ErrConfig, []string{"mose.inputs[0].projector"}},
		{"malformed config", 0, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "llama",`), 0o644)
		}, ErrConfig, []string{"config.json"}},
		{"no config", 0, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "config.json"))
		}, ErrConfig, []string{"config.json does not exist"}},
		{"truncated safetensors", 0, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "model.safetensors")
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-100)
		}, safetensors.ErrTruncated, []string{"model.safetensors"}},
		{"lying offsets", 0, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "model.safetensors")
			b, _ := os.ReadFile(p)
			i := strings.Index(string(b), `"data_offsets":[0,`)
			if i < 0 {
				t.Fatal("no offsets found in header")
			}
			copy(b[i:], `"data_offsets":[8,`)
			os.WriteFile(p, b, 0o644)
		}, safetensors.ErrShape, []string{"model.safetensors", "data_offsets [8, 6400]"}},
		{"missing shard", 4000, func(t *testing.T, dir string) {
			shards, _ := filepath.Glob(filepath.Join(dir, "model-*-of-*.safetensors"))
			if len(shards) < 2 {
				t.Fatalf("%d shards written", len(shards))
			}
			os.Remove(shards[1])
		}, safetensors.ErrMissingShard, []string{"model-00002-of-"}},
		{"no weights", 0, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "model.safetensors"))
		}, nil, []string{"model.safetensors"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTiny(t, c.shard)
			c.mutate(t, dir)
			var err error
			if rerr := torch.Run(func() error {
				before := torch.Live()
				m, lerr := Load(dir, Options{})
				if lerr == nil {
					m.Close()
				}
				err = lerr
				if torch.Live() != before {
					t.Errorf("a failed load left %d tensors alive", torch.Live()-before)
				}
				return nil
			}); rerr != nil {
				t.Fatal(rerr)
			}
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error does not wrap %v: %v", c.is, err)
			}
			for _, s := range c.mention {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error does not mention %q: %v", s, err)
				}
			}
		})
	}
}

func TestShardedRandomModelLoads(t *testing.T) {
	dir := writeTiny(t, 4000)
	if _, err := os.Stat(filepath.Join(dir, "model.safetensors.index.json")); err != nil {
		t.Fatalf("no index written: %v", err)
	}
	err := torch.Run(func() error {
		m, err := Load(dir, Options{DType: torch.BFloat16})
		if err != nil {
			return err
		}
		defer m.Close()
		if m.Head != m.EmbedTokens && m.Config.TieWordEmbeddings {
			t.Error("tied head is not the embedding")
		}
		if got := m.Layers[1].Q.Weight.DType(); got != torch.BFloat16 {
			t.Errorf("run dtype %v, want bfloat16", got)
		}
		if got := len(m.Linears()); got != 14 {
			t.Errorf("%d linears, want 14", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
