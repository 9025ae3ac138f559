package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/mose-llm/mose/data/npy"
	"github.com/mose-llm/mose/internal/safetensors"
)

// st is the model's weights file of e.
func st(e *env) string { return filepath.Join(e.model, "model.safetensors") }

// header edits the JSON header of a safetensors file in place (same length).
func header(e *env, path string, f func(h string) string) {
	e.edit(path, func(b []byte) []byte {
		n := binary.LittleEndian.Uint64(b[:8])
		h := f(string(b[8 : 8+n]))
		out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		out = append(out, h...)
		return append(out, b[8+n:]...)
	})
}

func ramp(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i%7) / 7
	}
	return v
}

// ddpEnv is a bad-input case of the launcher environment: train under vars,
// which must be refused naming mention.
func ddpEnv(name string, vars []string, mention ...string) badCase {
	return badCase{"ddp env", name, func(e *env) []string {
		e.environ = vars
		return e.trainArgs(e.out())
	}, mention, 0}
}

// badInputCases is the matrix (see TestBadInputMatrix).
func badInputCases() []badCase {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	train := func(e *env, sets ...string) []string { return e.trainArgs(e.out(), sets...) }
	return []badCase{
		// safetensors (the frozen model's weights)
		{"safetensors", "truncated", func(e *env) []string {
			e.ownModel()
			e.edit(st(e), func(b []byte) []byte { return b[:len(b)-100] })
			return train(e)
		}, []string{"model.safetensors", "truncated"}, 0},
		{"safetensors", "header length huge", func(e *env) []string {
			e.ownModel()
			e.edit(st(e), func(b []byte) []byte { binary.LittleEndian.PutUint64(b, 1<<40); return b })
			return train(e)
		}, []string{"model.safetensors", "header"}, 0},
		{"safetensors", "header not JSON", func(e *env) []string {
			e.ownModel()
			header(e, st(e), func(h string) string { return "[" + h[1:] })
			return train(e)
		}, []string{"model.safetensors", "header"}, 0},
		{"safetensors", "unknown dtype", func(e *env) []string {
			e.ownModel()
			header(e, st(e), func(h string) string { return strings.Replace(h, `"F32"`, `"Q8"`, 1) })
			return train(e)
		}, []string{"model.safetensors", "Q8"}, 0},
		{"safetensors", "shape vs byte length", func(e *env) []string {
			e.ownModel()
			header(e, st(e), func(h string) string { return strings.Replace(h, `"shape":[128]`, `"shape":[127]`, 1) })
			return train(e)
		}, []string{"model.safetensors", "shape"}, 0},
		{"safetensors", "missing tensor", func(e *env) []string {
			e.ownModel()
			e.tensors(st(e), func(ts []safetensors.Tensor) []safetensors.Tensor {
				for i := range ts {
					if ts[i].Name == "model.norm.weight" {
						return append(ts[:i], ts[i+1:]...)
					}
				}
				return ts
			})
			return train(e)
		}, []string{"model.norm.weight"}, 0},
		{"safetensors", "NaN frozen weight (train)", func(e *env) []string {
			e.ownModel()
			e.poison(st(e), "layers.1.mlp.down_proj", nan)
			return train(e)
		}, []string{"model.layers.1.mlp.down_proj.weight", "NaN"}, 0},
		{"safetensors", "Inf frozen weight (validate)", func(e *env) []string {
			e.ownModel()
			e.poison(st(e), "embed_tokens", inf)
			return e.validateArgs()
		}, []string{"model.embed_tokens.weight", "non-finite"}, 0},
		{"safetensors", "NaN frozen weight (eval)", func(e *env) []string {
			e.ownModel()
			e.poison(st(e), "layers.0.self_attn.k_proj", nan)
			return e.evalArgs(e.ownRun())
		}, []string{"k_proj", "NaN"}, 0},
		{"safetensors", "weights file is a FIFO", func(e *env) []string {
			e.ownModel()
			e.fifo(st(e))
			return train(e)
		}, []string{"model.safetensors", "named pipe"}, 0},
		{"safetensors", "weights file is a directory", func(e *env) []string {
			e.ownModel()
			os.Remove(st(e))
			os.Mkdir(st(e), 0o755)
			return train(e)
		}, []string{"model.safetensors"}, 0},
		{"safetensors", "no weights", func(e *env) []string {
			e.ownModel()
			os.Remove(st(e))
			return train(e)
		}, []string{"model.safetensors"}, 0},

		// config.json
		{"config", "not JSON", func(e *env) []string {
			e.ownModel()
			e.replace(filepath.Join(e.model, "config.json"), "{", "{,")
			return train(e)
		}, []string{"config.json"}, 0},
		{"config", "repeated key", func(e *env) []string {
			e.ownModel()
			e.replace(filepath.Join(e.model, "config.json"), `"hidden_size": 128,`, `"hidden_size": 128, "hidden_size": 64,`)
			return train(e)
		}, []string{"config.json", "hidden_size", "duplicate key"}, 0},
		{"config", "repeated key in the mose section", func(e *env) []string {
			e.ownModel()
			e.replace(filepath.Join(e.model, "config.json"), `"tokens": 32`, `"tokens": 32, "tokens": 16`)
			return train(e)
		}, []string{"config.json", "tokens", "duplicate key"}, 0},
		{"config", "wrong type", func(e *env) []string {
			e.ownModel()
			e.replace(filepath.Join(e.model, "config.json"), `"num_hidden_layers": 4`, `"num_hidden_layers": "four"`)
			return train(e)
		}, []string{"config.json", "num_hidden_layers"}, 0},
		{"config", "heads do not divide hidden", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { m["num_attention_heads"] = 3.0; delete(m, "head_dim") })
			return train(e)
		}, []string{"config.json", "num_attention_heads"}, 0},
		{"config", "weights do not match", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { m["intermediate_size"] = 256.0 })
			return train(e)
		}, []string{"mlp.gate_proj.weight", "config wants"}, 0},
		{"config", "vocab_size below the tokenizer's", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { m["vocab_size"] = 300.0 })
			return train(e)
		}, []string{"tokenizer.json", "vocab_size 300"}, 0},
		{"config", "samples longer than max_position_embeddings", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { m["max_position_embeddings"] = 16.0 })
			return train(e)
		}, []string{"train.jsonl", "max_position_embeddings 16"}, 0},
		{"config", "config.json is a FIFO", func(e *env) []string {
			e.ownModel()
			e.fifo(filepath.Join(e.model, "config.json"))
			return train(e)
		}, []string{"config.json", "named pipe"}, 0},
		{"config", "no mose section labels", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { delete(m["mose"].(map[string]any), "labels") })
			return train(e)
		}, []string{"config.json", "labels"}, 0},
		// absurd sizes: refused by name before anything is sized from them
		{"config", "absurd num_hidden_layers (memory estimate)", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { m["num_hidden_layers"] = 1e12 })
			return append(e.validateArgs(), "--memory-only")
		}, []string{"config.json", "num_hidden_layers", "bound"}, 0},
		{"config", "absurd num_hidden_layers (train)", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { m["num_hidden_layers"] = 1e12 })
			return train(e)
		}, []string{"config.json", "num_hidden_layers"}, 0},
		{"config", "absurd hidden_size", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { m["hidden_size"] = 1e12; m["head_dim"] = 32.0 })
			return append(e.validateArgs(), "--memory-only")
		}, []string{"config.json", "hidden_size"}, 0},
		{"config", "absurd vocab_size", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { m["vocab_size"] = 2147483647.0 })
			return train(e)
		}, []string{"config.json", "vocab_size"}, 0},
		{"config", "absurd feature_dim", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) {
				m["mose"].(map[string]any)["inputs"].([]any)[0].(map[string]any)["feature_dim"] = 1e12
			})
			return train(e)
		}, []string{"config.json", "feature_dim"}, 0},
		{"config", "absurd tokens", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) {
				m["mose"].(map[string]any)["inputs"].([]any)[0].(map[string]any)["tokens"] = 2147483647.0
			})
			return train(e)
		}, []string{"config.json", "tokens"}, 0},
		{"cli", "--nproc 1000", func(e *env) []string {
			return append(train(e), "--nproc", "1000")
		}, []string{"--nproc"}, 0},
		{"cli", "global batch beyond the data (--nproc)", func(e *env) []string {
			return append(train(e, "train.batch_size=100"), "--nproc", "2") // 200 > the 160 samples
		}, []string{"train.batch_size", "--nproc"}, 0},
		{"cli", "attach: absurd input dim", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { delete(m, "mose") })
			return []string{"attach", "--model", e.model, "--out", e.out(), "--input", "name=x,modality=visual,dim=1000000000000"}
		}, []string{"dim"}, 0},
		{"cli", "attach: input dim 2^31-1", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { delete(m, "mose") })
			return []string{"attach", "--model", e.model, "--out", e.out(), "--input", "name=x,modality=visual,dim=2147483647"}
		}, []string{"feature_dim"}, 0},
		{"config", "unknown rope_scaling", func(e *env) []string {
			e.ownModel()
			e.editJSON(filepath.Join(e.model, "config.json"), func(m map[string]any) { m["rope_scaling"] = map[string]any{"rope_type": "yarn-x", "factor": 2.0} })
			return train(e)
		}, []string{"config.json", "rope"}, 0},

		// tokenizer
		{"tokenizer", "not JSON", func(e *env) []string {
			e.ownModel()
			e.edit(filepath.Join(e.model, "tokenizer.json"), func(b []byte) []byte { return b[:len(b)/2] })
			return train(e)
		}, []string{"tokenizer.json"}, 0},
		{"tokenizer", "repeated top-level key", func(e *env) []string {
			e.ownModel()
			e.replace(filepath.Join(e.model, "tokenizer.json"), `"decoder":`, `"decoder": null, "decoder":`)
			return train(e)
		}, []string{"tokenizer.json", "decoder", "duplicate key"}, 0},
		{"tokenizer", "FIFO", func(e *env) []string {
			e.ownModel()
			e.fifo(filepath.Join(e.model, "tokenizer.json"))
			return train(e)
		}, []string{"tokenizer.json", "named pipe"}, 0},
		{"tokenizer", "missing", func(e *env) []string {
			e.ownModel()
			os.Remove(filepath.Join(e.model, "tokenizer.json"))
			return train(e)
		}, []string{"tokenizer.json"}, 0},
		{"tokenizer", "neither pad nor EOS token", func(e *env) []string {
			e.ownModel()
			e.edit(filepath.Join(e.model, "tokenizer.json"), func(b []byte) []byte {
				return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte(`"<pad>"`), []byte(`"<blank>"`)), []byte(`"</s>"`), []byte(`"<end>"`))
			})
			return train(e)
		}, []string{"tokenizer.json", "neither a pad nor an EOS"}, 0},
		{"tokenizer", "unsupported model type", func(e *env) []string {
			e.ownModel()
			e.replace(filepath.Join(e.model, "tokenizer.json"), `"type":"BPE"`, `"type":"WordPiece"`)
			return train(e)
		}, []string{"tokenizer.json", "WordPiece"}, 0},
		{"tokenizer", "tokenizer_config pad not in vocab", func(e *env) []string {
			e.ownModel()
			e.write(filepath.Join(e.model, "tokenizer_config.json"), []byte(`{"pad_token": "<nothing>"}`))
			return train(e)
		}, []string{"tokenizer_config.json", "pad_token"}, 0},
		{"tokenizer", "tokenizer_config repeated key", func(e *env) []string {
			e.ownModel()
			e.write(filepath.Join(e.model, "tokenizer_config.json"), []byte("{\"pad_token\": \"<pad>\",\n\"pad_token\": \"</s>\"}"))
			return train(e)
		}, []string{"tokenizer_config.json:2", "pad_token", "duplicate key"}, 0},

		// npy features
		{"npy", "NaN in a train feature", func(e *env) []string {
			e.ownData()
			e.npy(e.firstFeature(e.train, "frames"), npy.Float32, []int{32, 64}, append(ramp(100), append([]float32{nan}, ramp(32*64-101)...)...))
			return train(e)
		}, []string{"train.jsonl:1", "frames", "non-finite"}, 0},
		{"npy", "Inf in an eval feature (validate)", func(e *env) []string {
			e.ownData()
			e.npy(e.firstFeature(e.eval, "audio"), npy.Float32, []int{1, 64}, append(ramp(63), -inf))
			return e.validateArgs()
		}, []string{"eval.jsonl:1", "audio", "non-finite"}, 0},
		{"npy", "NaN in an eval feature (eval)", func(e *env) []string {
			e.ownData()
			e.npy(e.firstFeature(e.eval, "audio"), npy.Float16, []int{1, 64}, append(ramp(63), nan))
			return e.evalArgs(e.ownRun())
		}, []string{"eval.jsonl:1", "non-finite"}, 0},
		{"npy", "wrong shape", func(e *env) []string {
			e.ownData()
			e.npy(e.firstFeature(e.train, "frames"), npy.Float32, []int{16, 64}, ramp(16*64))
			return train(e)
		}, []string{"train.jsonl:1", "frames", "shape"}, 0},
		{"npy", "float64 dtype", func(e *env) []string {
			e.ownData()
			p := e.firstFeature(e.train, "audio")
			e.replace(p, "<f4", "<f8")
			return train(e)
		}, []string{"train.jsonl:1", "<f8"}, 0},
		{"npy", "truncated", func(e *env) []string {
			e.ownData()
			e.edit(e.firstFeature(e.train, "frames"), func(b []byte) []byte { return b[:len(b)-10] })
			return train(e)
		}, []string{"train.jsonl:1", "frames"}, 0},
		{"npy", "not an npy file", func(e *env) []string {
			e.ownData()
			e.write(e.firstFeature(e.train, "audio"), []byte("hello, this is not a numpy file at all"))
			return train(e)
		}, []string{"train.jsonl:1", "npy"}, 0},
		{"npy", "fortran order", func(e *env) []string {
			e.ownData()
			e.replace(e.firstFeature(e.train, "frames"), "'fortran_order': False", "'fortran_order': True ")
			return train(e)
		}, []string{"train.jsonl:1", "fortran"}, 0},
		{"npy", "feature file is a FIFO", func(e *env) []string {
			e.ownData()
			e.fifo(e.firstFeature(e.train, "frames"))
			return train(e)
		}, []string{"train.jsonl:1", "named pipe"}, 0},
		{"npy", "feature file missing", func(e *env) []string {
			e.ownData()
			os.Remove(e.firstFeature(e.train, "audio"))
			return train(e)
		}, []string{"train.jsonl:1", "audio"}, 0},

		// manifest
		{"manifest", "malformed line", func(e *env) []string {
			e.ownData()
			e.edit(e.train, func(b []byte) []byte { return append(b, "{\"id\": \n"...) })
			return train(e)
		}, []string{"train.jsonl:25"}, 0},
		{"manifest", "repeated key", func(e *env) []string {
			e.ownData()
			e.replace(e.train, `"label":"`, `"label":"happy","label":"`)
			return train(e)
		}, []string{"train.jsonl:1", "label", "duplicate key"}, 0},
		{"manifest", "unknown label", func(e *env) []string {
			e.ownData()
			e.replace(e.eval, `"label":"`, `"label":"bored","x":"`)
			return e.validateArgs()
		}, []string{"eval.jsonl:1"}, 0},
		{"manifest", "unknown field", func(e *env) []string {
			e.ownData()
			e.replace(e.train, `"subtitle"`, `"subtitel":"","subtitle"`)
			return train(e)
		}, []string{"train.jsonl:1", "subtitel"}, 0},
		{"manifest", "path escapes the root", func(e *env) []string {
			e.ownData()
			e.replace(e.train, `"features/audio/`, `"../../../etc/`)
			return train(e)
		}, []string{"train.jsonl:1", "escapes"}, 0},
		{"manifest", "duplicate id", func(e *env) []string {
			e.ownData()
			e.edit(e.train, func(b []byte) []byte { first := strings.SplitN(string(b), "\n", 2)[0]; return append(b, first+"\n"...) })
			return train(e)
		}, []string{"train.jsonl:25", "duplicate id"}, 0},
		{"manifest", "empty", func(e *env) []string {
			e.ownData()
			e.write(e.train, nil)
			return train(e)
		}, []string{"train.jsonl", "no samples"}, 0},
		{"manifest", "FIFO", func(e *env) []string {
			e.ownData()
			e.fifo(e.train)
			return train(e)
		}, []string{"train.jsonl", "named pipe"}, 0},
		{"manifest", "directory", func(e *env) []string {
			e.ownData()
			os.Remove(e.eval)
			os.Mkdir(e.eval, 0o755)
			return train(e)
		}, []string{"eval.jsonl", "directory"}, 0},
		{"manifest", "missing subtitle", func(e *env) []string {
			e.ownData()
			e.edit(e.train, func(b []byte) []byte {
				lines := strings.SplitN(string(b), "\n", 3)
				i := strings.Index(lines[1], `"subtitle"`)
				j := strings.Index(lines[1], `"features"`)
				lines[1] = lines[1][:i] + lines[1][j:]
				return []byte(strings.Join(lines, "\n"))
			})
			return train(e)
		}, []string{"train.jsonl:2", "subtitle"}, 0},
		{"manifest", "fewer samples than the batch", func(e *env) []string {
			return train(e, "train.batch_size=100")
		}, []string{"train.batch_size", "24 samples"}, 0},

		// recipe
		{"recipe", "unknown key", func(e *env) []string { return train(e, "train.lrr=1") }, []string{"train.lrr"}, 0},
		{"recipe", "rank 2e9", func(e *env) []string { return train(e, "adapters.rank=2000000000") }, []string{"adapters.rank"}, 0},
		{"recipe", "rank above the model's dims", func(e *env) []string { return train(e, "adapters.rank=4096") }, []string{"adapters.rank", "min(in, out)"}, 0},
		{"recipe", "adapters larger than the model", func(e *env) []string {
			return train(e, "adapters.rank=64", "adapters.experts.visual=1000", "adapters.gate.top_k=1")
		}, []string{"adapters", "parameters"}, 0},
		{"recipe", "float16 on cpu", func(e *env) []string { return train(e, "model.dtype=float16") }, []string{"model.dtype", "float16", "cpu"}, 0},
		{"recipe", "eval.ar.layers beyond the model", func(e *env) []string {
			return train(e, "eval.ar.enabled=true", "eval.ar.layers=[1,9]")
		}, []string{"eval.ar.layers", "4 layers"}, 0},
		{"recipe", "output_dir is a file", func(e *env) []string {
			f := filepath.Join(e.dir, "file")
			e.write(f, []byte("x"))
			return e.trainArgs(f)
		}, []string{"run.output_dir", "not a directory"}, 0},
		{"recipe", "output_dir under a file", func(e *env) []string {
			f := filepath.Join(e.dir, "file")
			e.write(f, []byte("x"))
			return e.trainArgs(filepath.Join(f, "run"))
		}, []string{"run.output_dir", "file"}, 0},
		{"recipe", "recipe file is a FIFO", func(e *env) []string {
			p := filepath.Join(e.dir, "r.yaml")
			e.fifo(p)
			return []string{"train", "--recipe", p}
		}, []string{"r.yaml", "named pipe"}, 0},
		{"recipe", "malformed YAML", func(e *env) []string {
			p := filepath.Join(e.dir, "r.yaml")
			e.write(p, []byte("train:\n  lr: [1e-3\n"))
			return []string{"train", "--recipe", p}
		}, []string{"r.yaml"}, 0},
		{"recipe", "repeated YAML key", func(e *env) []string {
			p := filepath.Join(e.dir, "r.yaml")
			e.write(p, []byte("train:\n  lr: 1e-3\n  lr: 1e-2\n"))
			return []string{"train", "--recipe", p}
		}, []string{"r.yaml", "lr"}, 0},
		{"recipe", "negative lr", func(e *env) []string { return train(e, "train.lr=-1") }, []string{"train.lr"}, 0},
		{"recipe", "cuda without CUDA", func(e *env) []string { return train(e, "run.device=cuda:0") }, []string{"cuda"}, 0},

		// checkpoint state
		{"checkpoint", "state not JSON", func(e *env) []string {
			ck := e.ownRun()
			e.write(filepath.Join(ck, "trainer_state.json"), []byte("{"))
			return append(e.trainArgs(e.run, "train.max_steps=2"), "--resume", ck)
		}, []string{"trainer_state.json"}, 0},
		{"checkpoint", "state repeated key", func(e *env) []string {
			ck := e.ownRun()
			e.replace(filepath.Join(ck, "trainer_state.json"), `"step": 2`, `"step": 2, "step": 1`)
			return append(e.trainArgs(e.run, "train.max_steps=2"), "--resume", ck)
		}, []string{"trainer_state.json", "step", "duplicate key"}, 0},
		{"checkpoint", "recipe.yaml is a FIFO (resume)", func(e *env) []string {
			ck := e.ownRun()
			e.fifo(filepath.Join(ck, "recipe.yaml"))
			return append(e.trainArgs(e.run, "train.max_steps=2"), "--resume", ck)
		}, []string{"recipe.yaml", "named pipe"}, 0},
		{"checkpoint", "optimizer state truncated (resume)", func(e *env) []string {
			ck := e.ownRun()
			e.edit(filepath.Join(ck, "optimizer.safetensors"), func(b []byte) []byte { return b[:len(b)/2] })
			return append(e.trainArgs(e.run, "train.max_steps=3", "train.warmup_steps=1"), "--resume", ck, "--allow-recipe-change")
		}, []string{"optimizer.safetensors"}, 0},
		{"checkpoint", "state repeated key (eval)", func(e *env) []string {
			ck := e.ownRun()
			e.replace(filepath.Join(ck, "trainer_state.json"), `"modality_weights"`, `"modality_weights": [0, 0], "modality_weights"`)
			return e.evalArgs(ck)
		}, []string{"trainer_state.json", "modality_weights", "duplicate key"}, 0},
		{"checkpoint", "state is a FIFO", func(e *env) []string {
			ck := e.ownRun()
			e.fifo(filepath.Join(ck, "trainer_state.json"))
			return e.exportArgs(ck, e.out())
		}, []string{"trainer_state.json", "named pipe"}, 0},
		{"checkpoint", "adapter truncated (eval)", func(e *env) []string {
			ck := e.ownRun()
			e.edit(filepath.Join(ck, "adapter.safetensors"), func(b []byte) []byte { return b[:len(b)-8] })
			return e.evalArgs(ck)
		}, []string{"adapter.safetensors"}, 0},
		{"checkpoint", "adapter is a FIFO (export)", func(e *env) []string {
			ck := e.ownRun()
			e.fifo(filepath.Join(ck, "adapter.safetensors"))
			return e.exportArgs(ck, e.out())
		}, []string{"adapter.safetensors", "named pipe"}, 0},
		{"checkpoint", "adapters do not fit the recipe", func(e *env) []string {
			return e.evalArgs(e.ownRun(), "adapters.rank=4")
		}, []string{"adapter"}, 0},
		{"checkpoint", "recipe.yaml missing (export)", func(e *env) []string {
			ck := e.ownRun()
			os.Remove(filepath.Join(ck, "recipe.yaml"))
			return e.exportArgs(ck, e.out())
		}, []string{"recipe.yaml"}, 0},
		{"checkpoint", "checkpoint is a file", func(e *env) []string {
			f := filepath.Join(e.dir, "step-0000002")
			e.write(f, []byte("x"))
			return e.evalArgs(f)
		}, []string{"step-0000002"}, 0},
		{"checkpoint", "resume a missing path", func(e *env) []string {
			return append(e.trainArgs(e.out()), "--resume", filepath.Join(e.dir, "nope"))
		}, []string{"nope"}, 0},

		// export
		{"export", "--out is the run, --force", func(e *env) []string {
			ck := e.ownRun()
			return e.exportArgs(ck, e.run, "--force")
		}, []string{"would overwrite", "run"}, 0},
		{"export", "--out is the checkpoint, --force", func(e *env) []string {
			ck := e.ownRun()
			return e.exportArgs(ck, ck, "--force")
		}, []string{"would overwrite", "checkpoint"}, 0},
		{"export", "--out holds the checkpoints, --force", func(e *env) []string {
			ck := e.ownRun()
			return e.exportArgs(ck, filepath.Dir(ck), "--force")
		}, []string{"would overwrite"}, 0},
		{"export", "--out is the model, --force", func(e *env) []string {
			ck := e.ownRun()
			return e.exportArgs(ck, bad.model, "--force")
		}, []string{"would overwrite", "model"}, 0},
		{"export", "--out is not an export, --force", func(e *env) []string {
			d := filepath.Join(e.dir, "mine")
			os.Mkdir(d, 0o755)
			e.write(filepath.Join(d, "thesis.tex"), []byte("x"))
			return e.exportArgs(e.ownRun(), d, "--force")
		}, []string{"mose_export.json"}, 0},
		{"export", "--out an export plus a user file, --force", func(e *env) []string {
			d := e.ownExport()
			e.write(filepath.Join(d, "notes.txt"), []byte("x"))
			return e.exportArgs(e.ownRun(), d, "--force")
		}, []string{"notes.txt"}, 0},
		{"export", "--out exists without --force", func(e *env) []string {
			return e.exportArgs(e.ownRun(), e.ownExport())
		}, []string{"--force"}, 0},
		{"export", "--out is a file", func(e *env) []string {
			f := filepath.Join(e.dir, "f")
			e.write(f, []byte("x"))
			return e.exportArgs(e.ownRun(), f, "--force")
		}, []string{"not a directory"}, 0},
		{"export", "bad --format", func(e *env) []string { return e.exportArgs(e.ownRun(), e.out(), "--format", "onnx") }, []string{"onnx"}, 0},
		{"export", "sidecar misses a modality weight (eval)", func(e *env) []string {
			d := e.ownExport()
			e.editJSON(filepath.Join(d, "mose_config.json"), func(m map[string]any) { delete(m["modality_weights"].(map[string]any), "visual") })
			return e.evalArgs(d)
		}, []string{"mose_config.json", "modality_weights.visual", "missing"}, 0},
		{"export", "sidecar repeated key (eval)", func(e *env) []string {
			d := e.ownExport()
			e.replace(filepath.Join(d, "mose_config.json"), `"rank": `, `"rank": 1, "rank": `)
			return e.evalArgs(d)
		}, []string{"mose_config.json", "rank", "duplicate key"}, 0},
		{"export", "sidecar without weights (eval)", func(e *env) []string {
			d := e.ownExport()
			os.Remove(filepath.Join(d, "mose_adapter.safetensors"))
			return e.evalArgs(d)
		}, []string{"mose_adapter.safetensors"}, 0},
		{"export", "adapter_config repeated key (eval)", func(e *env) []string {
			d := e.ownExport()
			e.replace(filepath.Join(d, "adapter_config.json"), `"r": `, `"r": 2, "r": `)
			return e.evalArgs(d)
		}, []string{"adapter_config.json", "duplicate key"}, 0},
		{"export", "adapter_config rank mismatch (eval)", func(e *env) []string {
			d := e.ownExport()
			e.editJSON(filepath.Join(d, "adapter_config.json"), func(m map[string]any) { m["r"] = 2.0 })
			return e.evalArgs(d)
		}, []string{"adapter_config.json", "r=2"}, 0},
		{"export", "adapter_config use_dora (eval)", func(e *env) []string {
			d := e.ownExport()
			e.editJSON(filepath.Join(d, "adapter_config.json"), func(m map[string]any) { m["use_dora"] = true })
			return e.evalArgs(d)
		}, []string{"adapter_config.json", "use_dora"}, 0},
		{"export", "sidecar weight zero (eval)", func(e *env) []string {
			d := e.ownExport()
			e.editJSON(filepath.Join(d, "mose_config.json"), func(m map[string]any) { m["modality_weights"].(map[string]any)["nonvisual"] = 0.0 })
			return e.evalArgs(d)
		}, []string{"mose_config.json", "modality_weights.nonvisual"}, 0},
		{"export", "calibration is a FIFO", func(e *env) []string {
			p := filepath.Join(e.dir, "cal.jsonl")
			e.fifo(p)
			return e.exportArgs(e.ownRun(), e.out(), "--format", "merged", "--approximate", "--calibration", p)
		}, []string{"cal.jsonl", "named pipe"}, 0},

		// The launcher's environment (torchrun, SLURM, mose's own): each
		// variable is bounded and named before any group is joined or file
		// written.
		ddpEnv("RANK not a number", []string{"RANK=abc", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1"}, "RANK"),
		ddpEnv("RANK beyond WORLD_SIZE", []string{"RANK=2", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1"}, "RANK"),
		ddpEnv("WORLD_SIZE zero", []string{"RANK=0", "WORLD_SIZE=0"}, "WORLD_SIZE"),
		ddpEnv("WORLD_SIZE absurd", []string{"RANK=0", "WORLD_SIZE=1000000000000", "MASTER_ADDR=127.0.0.1"}, "WORLD_SIZE"),
		ddpEnv("RANK without WORLD_SIZE's partner", []string{"WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1"}, "RANK"),
		ddpEnv("LOCAL_RANK negative", []string{"RANK=1", "WORLD_SIZE=2", "LOCAL_RANK=-1", "MASTER_ADDR=127.0.0.1"}, "LOCAL_RANK"),
		ddpEnv("MASTER_PORT beyond 65535", []string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=70000"}, "MASTER_PORT"),
		ddpEnv("MASTER_PORT not a number", []string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=http"}, "MASTER_PORT"),
		ddpEnv("MASTER_ADDR unset", []string{"RANK=1", "WORLD_SIZE=2"}, "MASTER_ADDR"),
		ddpEnv("MASTER_ADDR unresolvable", []string{"RANK=1", "WORLD_SIZE=2", "MASTER_ADDR=no-such-host.invalid", "MASTER_PORT=29555"}, "MASTER_ADDR", "no-such-host.invalid"),
		ddpEnv("MOSE_DIST_TIMEOUT negative", []string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MOSE_DIST_TIMEOUT=-1s"}, "MOSE_DIST_TIMEOUT"),
		ddpEnv("MOSE_DIST_TIMEOUT absurd", []string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MOSE_DIST_TIMEOUT=100000h"}, "MOSE_DIST_TIMEOUT"),
		ddpEnv("MOSE_DIST_TIMEOUT not a duration", []string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MOSE_DIST_TIMEOUT=soon"}, "MOSE_DIST_TIMEOUT"),
		ddpEnv("SLURM_PROCID beyond SLURM_NTASKS", []string{"SLURM_NTASKS=2", "SLURM_PROCID=9", "MASTER_ADDR=127.0.0.1"}, "SLURM_PROCID"),
		{"ddp env", "--nproc under a launcher", func(e *env) []string {
			e.environ = []string{"RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1"}
			return append(train(e), "--nproc", "2")
		}, []string{"--nproc", "WORLD_SIZE"}, 0},
		{"ddp env", "--nproc negative", func(e *env) []string { return append(train(e), "--nproc", "-3") }, []string{"--nproc"}, 0},

		// CLI
		{"cli", "unknown flag", func(e *env) []string { return append(train(e), "--resum", "auto") }, []string{"resum"}, 0},
		{"cli", "unknown command", func(e *env) []string { return []string{"trian"} }, []string{"trian"}, 0},
		{"cli", "export without --checkpoint", func(e *env) []string { return []string{"export", "--out", e.out()} }, []string{"--checkpoint"}, 0},
		{"cli", "eval without --checkpoint", func(e *env) []string { return e.evalArgs("")[:len(e.evalArgs(""))-2] }, []string{"--checkpoint"}, 0},
		{"cli", "stray argument", func(e *env) []string { return append(train(e), "extra") }, []string{"extra"}, 0},
		{"cli", "--set without =", func(e *env) []string { return append(train(e), "--set", "train.lr") }, []string{"train.lr"}, 0},
	}
}
