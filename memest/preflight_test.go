package memest

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data/npy"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
)

// copyModel copies the fixture model and applies edit to its config.json.
func copyModel(t *testing.T, edit func(m map[string]any)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.CopyFS(dir, os.DirFS(fixture.Model)); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		p := filepath.Join(dir, "config.json")
		b, _ := os.ReadFile(p)
		var m map[string]any
		json.Unmarshal(b, &m)
		edit(m)
		b, _ = json.Marshal(m)
		os.WriteFile(p, b, 0o644)
	}
	return dir
}

// poisonModel writes NaN into element 0 of the named tensor of a model copy.
func poisonModel(t *testing.T, name string) string {
	t.Helper()
	dir := copyModel(t, nil)
	p := filepath.Join(dir, "model.safetensors")
	f, err := safetensors.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, in := range f.Tensors() {
		b, _ := f.Read(in.Name)
		if in.Name == name {
			b = append([]byte(nil), b...)
			binary.LittleEndian.PutUint32(b, math.Float32bits(float32(math.NaN())))
		}
		ts = append(ts, safetensors.Tensor{Name: in.Name, DType: in.DType, Shape: in.Shape, Data: b})
	}
	f.Close()
	os.Remove(p)
	if err := safetensors.WriteFile(p, ts, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyData copies the fixture data and writes NaN into the first train
// sample's frames file.
func nanData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.CopyFS(dir, os.DirFS(filepath.Dir(fixture.Train))); err != nil {
		t.Fatal(err)
	}
	train := filepath.Join(dir, "train.jsonl")
	b, _ := os.ReadFile(train)
	var s struct{ Features map[string]string }
	json.Unmarshal([]byte(strings.SplitN(string(b), "\n", 2)[0]), &s)
	p := filepath.Join(dir, s.Features["audio"])
	a, err := npy.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	a.Data[len(a.Data)-1] = float32(math.Inf(1))
	f, _ := os.Create(p)
	npy.Write(f, a)
	f.Close()
	return train
}

// Preflight refuses recipes whose files do not fit together, naming the key
// or file, before anything is loaded or written.
func TestPreflight(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	cases := []struct {
		name    string
		sets    func() []string
		kind    Kind
		mention []string
	}{
		{"float16 on cpu", func() []string { return []string{"model.dtype=float16"} }, PreflightTrain, []string{"model.dtype float16", "bfloat16"}},
		{"vocab_size below the tokenizer", func() []string {
			return []string{"model.path=" + copyModel(t, func(m map[string]any) { m["vocab_size"] = 100 })}
		}, PreflightValidate, []string{"tokenizer.json", "vocab_size 100"}},
		{"neither pad nor EOS token", func() []string {
			dir := copyModel(t, nil)
			p := filepath.Join(dir, "tokenizer.json")
			b, _ := os.ReadFile(p)
			s := strings.ReplaceAll(strings.ReplaceAll(string(b), `"<pad>"`, `"<blank>"`), `"</s>"`, `"<end>"`)
			os.WriteFile(p, []byte(s), 0o644)
			return []string{"model.path=" + dir}
		}, PreflightEval, []string{"tokenizer.json", "neither a pad nor an EOS token"}},
		{"eval.ar.layers beyond the model", func() []string { return []string{"eval.ar.enabled=true", "eval.ar.layers=[1,4]"} }, PreflightTrain, []string{"eval.ar.layers", "4 layers"}},
		{"eval.ar.layers beyond the model (export)", func() []string { return []string{"eval.ar.layers=[0,7]"} }, PreflightExport, []string{"eval.ar.layers"}},
		{"rank above the dims", func() []string { return []string{"adapters.rank=200"} }, PreflightExport, []string{"adapters.rank 200", "min(in, out)"}},
		{"adapters larger than the model", func() []string {
			return []string{"adapters.rank=64", "adapters.experts.visual=1000", "adapters.experts.nonvisual=1000"}
		}, PreflightTrain, []string{"parameters", "frozen model"}},
		{"output_dir is a file", func() []string { return []string{"run.output_dir=" + file} }, PreflightTrain, []string{"run.output_dir", "not a directory"}},
		{"output_dir under a file", func() []string { return []string{"run.output_dir=" + filepath.Join(file, "run")} }, PreflightTrain, []string{"run.output_dir", "is a file"}},
		{"NaN frozen weight", func() []string {
			return []string{"model.path=" + poisonModel(t, "model.layers.2.self_attn.o_proj.weight")}
		}, PreflightValidate,
			[]string{"model.layers.2.self_attn.o_proj.weight", "non-finite"}},
		{"Inf feature", func() []string { return []string{"data.train=" + nanData(t)} }, PreflightTrain, []string{"train.jsonl:1", "non-finite"}},
		{"samples beyond max_position_embeddings", func() []string {
			return []string{"model.path=" + copyModel(t, func(m map[string]any) { m["max_position_embeddings"] = 16 })}
		}, PreflightValidate, []string{"max_position_embeddings 16", "data.max_len"}},
		{"batch larger than the train set", func() []string { return []string{"train.batch_size=1000"} }, PreflightTrain, []string{"train.batch_size 1000"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := fixture.Recipe(t, c.sets()...)
			err := Preflight(cfg, c.kind)
			if inputerr.Classify(err) != inputerr.Input {
				t.Fatalf("want bad input, got %v", err)
			}
			for _, m := range c.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error does not mention %q: %v", m, err)
				}
			}
			if _, err := os.Stat(cfg.Run.OutputDir); err == nil && cfg.Run.OutputDir != file {
				t.Error("output_dir was created")
			}
		})
	}
	if err := Preflight(fixture.Recipe(t), PreflightTrain); err != nil {
		t.Fatalf("the fixture recipe: %v", err)
	}
	if err := Preflight(fixture.Recipe(t, "model.dtype=bfloat16"), PreflightTrain); err != nil {
		t.Fatalf("bfloat16 on cpu: %v", err)
	}
}
