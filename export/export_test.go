package export

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
	"github.com/mose-llm/mose/trainer"
)

// trained runs a short training and returns its final checkpoint.
func trained(t *testing.T, sets ...string) (*recipes.Config, string) {
	t.Helper()
	cfg := fixture.Recipe(t, append([]string{"train.max_steps=6", "train.lr=1e-2"}, sets...)...)
	res, err := trainer.Run(context.Background(), cfg, trainer.Options{Log: testfix.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, res.Checkpoint
}

// firstBatch is one training-mode batch of the eval set.
func firstBatch(t *testing.T, c *stack.Stack) *data.Batch {
	t.Helper()
	ds, err := c.Open(fixture.Eval)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ds.Batch([]int{0, 1, 2}, data.ModeTrain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Plain LoRA merged into W gives the adapted model's logits (fp32, 1e-5).
func TestMergedLoRAMatchesAdapted(t *testing.T) {
	cfg, ck := trained(t, "adapters.method=lora", "model.train_projectors=true")
	out := filepath.Join(t.TempDir(), "merged")
	if _, err := Export(context.Background(), Options{Checkpoint: ck, Format: FormatMerged, Out: out, Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	err := torch.Run(func() error {
		c, err := stack.Build(cfg, stack.NoData)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.LoadAdapters(filepath.Join(ck, checkpoint.AdapterFile)); err != nil {
			return err
		}
		merged, err := model.Load(out, model.Options{})
		if err != nil {
			return err
		}
		defer merged.Close()
		b := firstBatch(t, c)
		s := torch.NewScope()
		defer s.Close()
		bt := stack.Tensors(s, b, torch.CPU)
		want, err := c.Model.Logits(s, c.Model.Forward(s, bt.In, false), bt.Pos).Float32s()
		if err != nil {
			return err
		}
		got, err := merged.Logits(s, merged.Forward(s, bt.In, false), bt.Pos).Float32s()
		if err != nil {
			return err
		}
		var worst, moved float64
		for i := range want {
			worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
		}
		c.Set.Close() // drop the adapters: the base model's logits must differ
		for _, l := range c.Model.Linears() {
			l.Adapter = nil
		}
		plain, _ := c.Model.Logits(s, c.Model.Forward(s, bt.In, false), bt.Pos).Float32s()
		for i := range plain {
			moved = math.Max(moved, math.Abs(float64(plain[i]-want[i])))
		}
		c.Set = nil
		t.Logf("max |merged - adapted| = %.3g (the adapter moves logits by up to %.3g)", worst, moved)
		if worst > 1e-5 {
			t.Errorf("merged logits differ from the adapted model's by %.3g", worst)
		}
		if moved < 1e-3 {
			t.Errorf("the trained adapter barely changes the logits (%.3g): the test proves nothing", moved)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// pefFixtureCheckpoint builds a mose checkpoint holding PEFT's own fixture
// adapter (experts/testdata/peft-lora), as if mose had trained it.
func peftFixtureCheckpoint(t *testing.T) (*recipes.Config, string) {
	t.Helper()
	base, _ := filepath.Abs("../experts/testdata/peft-lora/base")
	cfg, err := recipes.Load("demo-tiny", []string{"model.path=" + base, "model.create=", "model.train_projectors=false",
		"data.train=/unused.jsonl", "data.synth=", "adapters.method=lora", "adapters.rank=4", "adapters.alpha=8",
		"adapters.targets=[q_proj,v_proj]", "adapters.dropout=0", "run.output_dir=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(t.TempDir(), checkpoint.StepDir(1))
	os.MkdirAll(ck, 0o755)
	yml, _ := cfg.YAML()
	os.WriteFile(filepath.Join(ck, checkpoint.RecipeFile), yml, 0o644)
	f, err := safetensors.Open("../experts/testdata/peft-lora/adapter_model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, info := range f.Tensors() {
		b, _ := f.Read(info.Name)
		ts = append(ts, safetensors.Tensor{Name: strings.TrimPrefix(info.Name, stack.PEFTPrefix), DType: info.DType, Shape: info.Shape, Data: b})
	}
	if err := safetensors.WriteFile(filepath.Join(ck, checkpoint.AdapterFile), ts, nil); err != nil {
		t.Fatal(err)
	}
	testfix.Seal(t, ck, 1, [2]float64{1, 1})
	return cfg, ck
}

// The PEFT export of PEFT's own adapter reproduces it: same key names and
// bytes, same LoraConfig fields; and reading the export back gives PEFT's logits.
func TestPEFTExportGolden(t *testing.T) {
	cfg, ck := peftFixtureCheckpoint(t)
	out := filepath.Join(t.TempDir(), "peft")
	if _, err := Export(context.Background(), Options{Checkpoint: ck, Format: FormatPEFT, Out: out, Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	orig, _ := safetensors.Open("../experts/testdata/peft-lora/adapter_model.safetensors")
	defer orig.Close()
	got, err := safetensors.Open(filepath.Join(out, stack.PEFTWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if strings.Join(orig.Names(), ",") != strings.Join(got.Names(), ",") {
		t.Fatalf("key names differ:\n%v\n%v", orig.Names(), got.Names())
	}
	for _, n := range orig.Names() {
		a, _ := orig.Read(n)
		b, _ := got.Read(n)
		if string(a) != string(b) {
			t.Errorf("%s: bytes differ", n)
		}
	}
	var pc, want map[string]any
	b, _ := os.ReadFile(filepath.Join(out, stack.PEFTConfigFile))
	json.Unmarshal(b, &pc)
	b, _ = os.ReadFile("../experts/testdata/peft-lora/adapter_config.json")
	json.Unmarshal(b, &want)
	for _, k := range []string{"peft_type", "task_type", "r", "lora_alpha", "use_rslora", "bias", "fan_in_fan_out"} {
		if pc[k] != want[k] {
			t.Errorf("adapter_config %s = %v, PEFT wrote %v", k, pc[k], want[k])
		}
	}
	if _, err := os.Stat(filepath.Join(out, stack.MoseWeightsFile)); err == nil {
		t.Error("a plain LoRA export without trained projectors wrote a sidecar")
	}
	// Round trip: mose reads the export and gives PEFT's logits.
	exp, _ := safetensors.Open("../experts/testdata/peft-lora/expected.safetensors")
	defer exp.Close()
	raw, _ := exp.Read("input_ids")
	ids, _ := safetensors.BytesToInt64s(raw)
	raw, _ = exp.Read("logits_lora")
	wantLogits, _ := safetensors.BytesToFloat32s(raw)
	err = torch.Run(func() error {
		c, err := stack.Build(cfg, stack.NoData)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.LoadExport(out); err != nil {
			return err
		}
		s := torch.NewScope()
		defer s.Close()
		in := &model.Inputs{IDs: s.FromInt64(ids, 2, int64(len(ids)/2))}
		logits, err := c.Model.Logits(s, c.Model.Forward(s, in, false), nil).Float32s()
		if err != nil {
			return err
		}
		var worst float64
		for i := range logits {
			worst = math.Max(worst, math.Abs(float64(logits[i]-wantLogits[i])))
		}
		if worst > 1e-4 {
			t.Errorf("exported adapter read back: logits differ from PEFT's by %.3g", worst)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A MoSE export round-trips through mose eval's loader: same logits as the
// checkpoint's adapters.
func TestMoSEExportRoundTrip(t *testing.T) {
	cfg, ck := trained(t, "adapters.modality_weights=token-balanced", "model.train_projectors=true")
	out := filepath.Join(t.TempDir(), "peft")
	if _, err := Export(context.Background(), Options{Checkpoint: ck, Format: FormatPEFT, Out: out, Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	logits := func(load func(c *stack.Stack) error) []float32 {
		var v []float32
		err := torch.Run(func() error {
			c, err := stack.Build(cfg, stack.NoData)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := load(c); err != nil {
				return err
			}
			s := torch.NewScope()
			defer s.Close()
			bt := stack.Tensors(s, firstBatch(t, c), torch.CPU)
			v, err = c.Model.Logits(s, c.Model.Forward(s, bt.In, false), bt.Pos).Float32s()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	st, _ := checkpoint.Read(ck)
	want := logits(func(c *stack.Stack) error {
		if err := c.Set.SetModalityWeights(st.ModalityWeights[0], st.ModalityWeights[1]); err != nil {
			return err
		}
		return c.LoadAdapters(filepath.Join(ck, checkpoint.AdapterFile))
	})
	got := logits(func(c *stack.Stack) error { return c.LoadExport(out) })
	for i := range want {
		if want[i] != got[i] {
			t.Fatalf("logit %d: %v from the export, %v from the checkpoint", i, got[i], want[i])
		}
	}
}

// Bad exports are bad input and leave nothing behind.
func TestExportBadCases(t *testing.T) {
	cfg, ck := trained(t)
	// A checkpoint whose adapters do not fit its recipe (rank changed).
	wrong := filepath.Join(t.TempDir(), checkpoint.StepDir(6))
	os.CopyFS(wrong, os.DirFS(ck))
	cfg2 := *cfg
	cfg2.Adapters.Rank = 4
	yml, _ := cfg2.YAML()
	os.WriteFile(filepath.Join(wrong, checkpoint.RecipeFile), yml, 0o644)
	testfix.Reseal(t, wrong, func(*checkpoint.State) {}) // valid checksums: the shape check must catch it
	// A checkpoint with NaN weights.
	nan := filepath.Join(t.TempDir(), checkpoint.StepDir(6))
	os.CopyFS(nan, os.DirFS(ck))
	f, _ := safetensors.Open(filepath.Join(nan, checkpoint.AdapterFile))
	var ts []safetensors.Tensor
	for _, info := range f.Tensors() {
		b, _ := f.Read(info.Name)
		if strings.Contains(info.Name, "lora_B") {
			vals, _ := safetensors.BytesToFloat32s(b)
			vals[0] = float32(math.NaN())
			b = safetensors.Float32sToBytes(vals)
		}
		ts = append(ts, safetensors.Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: b})
	}
	f.Close()
	safetensors.WriteFile(filepath.Join(nan, checkpoint.AdapterFile), ts, nil)
	testfix.Reseal(t, nan, func(*checkpoint.State) {}) // valid checksums: the finiteness check must catch it
	existing := filepath.Join(t.TempDir(), "existing")
	os.MkdirAll(existing, 0o755)
	os.WriteFile(filepath.Join(existing, "keep"), []byte("x"), 0o644)

	cases := []struct {
		name    string
		opt     Options
		mention string
	}{
		{"checkpoint missing", Options{Checkpoint: "/nonexistent/step-0000001", Format: FormatPEFT}, "not a mose checkpoint"},
		{"adapter does not fit", Options{Checkpoint: wrong, Format: FormatPEFT}, "do not fit"},
		{"out exists", Options{Checkpoint: ck, Format: FormatPEFT, Out: existing}, "--force"},
		{"no calibration", Options{Checkpoint: ck, Format: FormatMerged, Approximate: true}, "--calibration"},
		{"calibration missing", Options{Checkpoint: ck, Format: FormatMerged, Approximate: true, Calibration: "/nonexistent.jsonl"}, "calibration"},
		{"routed experts without --approximate", Options{Checkpoint: ck, Format: FormatMerged}, "--approximate"},
		{"NaN weights", Options{Checkpoint: nan, Format: FormatPEFT}, "NaN"},
		{"bad format", Options{Checkpoint: ck, Format: "onnx"}, "format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.opt.Out == "" {
				c.opt.Out = filepath.Join(t.TempDir(), "out")
			}
			c.opt.Log = testfix.QuietLog()
			_, err := Export(context.Background(), c.opt)
			if inputerr.Classify(err) != inputerr.Input {
				t.Fatalf("want bad input, got %v", err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("error does not mention %q: %v", c.mention, err)
			}
			if c.opt.Out != existing {
				if _, err := os.Stat(c.opt.Out); err == nil {
					t.Error("the output directory was created")
				}
			} else if b, _ := os.ReadFile(filepath.Join(existing, "keep")); string(b) != "x" {
				t.Error("the existing directory was touched")
			}
			if m, _ := filepath.Glob(c.opt.Out + ".tmp-*"); len(m) > 0 {
				t.Errorf("left %v behind", m)
			}
		})
	}
}
