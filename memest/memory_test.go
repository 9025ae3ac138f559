package memest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// The estimate's trainable parameters and frozen weights are those of the
// built stack and the written model.
func TestMemoryEstimateCounts(t *testing.T) {
	for _, sets := range [][]string{
		nil,
		{"adapters.method=lora"},
		{"adapters.targets=[q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj]", "model.train_projectors=true"},
		{"adapters.experts.omni=0", "adapters.experts.visual=4", "adapters.rank=4"},
	} {
		t.Run(strings.Join(sets, ","), func(t *testing.T) {
			cfg := fixture.Recipe(t, sets...)
			err := torch.Run(func() error {
				c, err := stack.Build(cfg, stack.AllData)
				if err != nil {
					return err
				}
				defer c.Close()
				var want int64
				for _, p := range c.Params {
					want += p.T.Numel()
				}
				sh := Shape{Model: c.Model.Config}
				sh.T, sh.Answer = batchShape(c.Train)
				if sh.Tokens, err = specTokens(c.Spec, c.Model.Config); err != nil {
					return err
				}
				est, err := Compute(cfg, sh)
				if err != nil {
					return err
				}
				if est.Params != want {
					t.Errorf("estimate counts %d trainable parameters, the stack has %d", est.Params, want)
				}
				if est.Adapters != 4*want || est.Grads != 4*want || est.Optimizer != 8*want {
					t.Errorf("trainable bytes %d + %d + %d for %d parameters", est.Adapters, est.Grads, est.Optimizer, want)
				}
				// Frozen weights: the fixture's safetensors hold them in float32
				// (trained projectors are counted with the parameters instead).
				var frozen int64
				for _, tt := range c.Model.Config.Tensors() {
					if cfg.Model.TrainProjectors && strings.HasPrefix(tt.Name, "projectors.") {
						continue
					}
					n := int64(4)
					for _, d := range tt.Shape {
						n *= d
					}
					frozen += n
				}
				fi, err := os.Stat(filepath.Join(cfg.Model.Path, "model.safetensors"))
				if err != nil {
					return err
				}
				if est.Weights != frozen || (!cfg.Model.TrainProjectors && (est.Weights > fi.Size() || est.Weights < fi.Size()*99/100)) {
					t.Errorf("frozen weights %d bytes; tensors %d, file %d", est.Weights, frozen, fi.Size())
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Activations scale as the forward does: linearly in B and T with fused
// attention, and checkpointing keeps one layer instead of all.
func TestMemoryEstimateActivations(t *testing.T) {
	cfg := fixture.Recipe(t, "train.batch_size=4")
	mc := stack.ModelPresets["small"]
	mc.VocabSize = 1000
	mc = mc.WithDefaults()
	est := func(cfg *recipes.Config, T int) Estimate {
		t.Helper()
		e, err := Compute(cfg, Shape{Model: mc, T: T, Answer: 4})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b := est(cfg, 512), est(cfg, 1024)
	if b.Layer != 2*a.Layer || b.Saved != 2*a.Saved {
		t.Errorf("per-layer bytes at T=512 %d, at 1024 %d: not linear", a.Layer, b.Layer)
	}
	if full, ck := b.Activations(false), b.Activations(true); full < 2*ck || ck <= 0 {
		t.Errorf("activations %d without checkpointing, %d with: want at least 2× less", full, ck)
	}
	if b.Total(true) >= b.Total(false) || b.Static() != b.Total(true)-b.Activations(true) {
		t.Error("totals are inconsistent")
	}
	// A sliding window shorter than T takes the math attention path: B·H·T² scores.
	w := 256
	mc.ModelType, mc.SlidingWindow = "mistral", &w
	c := est(cfg, 1024)
	if want := int64(3 * 4 * mc.NumHeads * 1024 * 1024 * 4); c.Layer-b.Layer < want {
		t.Errorf("windowed layer %d bytes, only %d more than fused; want ≥ %d for the scores", c.Layer, c.Layer-b.Layer, want)
	}
	if _, err := Compute(cfg, Shape{Model: mc, T: 0}); err == nil {
		t.Error("T = 0 accepted")
	}
	bad := *cfg
	bad.Model.DType = "int8"
	if _, err := Compute(&bad, Shape{Model: mc, T: 8}); err == nil {
		t.Error("dtype int8 accepted")
	}
}

func TestMemoryEstimateFormat(t *testing.T) {
	cfg := fixture.Recipe(t)
	mc := stack.ModelPresets["small"]
	mc.VocabSize = 1000
	mc = mc.WithDefaults()
	e, err := Compute(cfg, Shape{Model: mc, T: 1024, Answer: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		avail *deviceMem
		want  string
	}{
		{nil, "device memory: unknown"},
		{&deviceMem{e.Total(false) + 1, "test"}, "fits"},
		{&deviceMem{e.Total(true) + 1, "test"}, "fits with --set train.activation_checkpointing=true"},
		{&deviceMem{e.Static(), "test"}, "even with activation checkpointing"},
	} {
		var b strings.Builder
		e.Format(&b, cfg, torch.CPU, tt.avail)
		if !strings.Contains(b.String(), tt.want) {
			t.Errorf("avail %v: output lacks %q:\n%s", tt.avail, tt.want, b.String())
		}
	}
}

func TestMemAvailable(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		text string
		want int64
		ok   bool
	}{
		{"MemTotal:       23000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n", 2048 << 10, true},
		{"MemTotal:       23000000 kB\n", 0, false},
		{"MemAvailable:   lots kB\n", 0, false},
		{"MemAvailable:   -5 kB\n", 0, false},
	} {
		p := filepath.Join(dir, "meminfo")
		if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		n, ok := memAvailable(p)
		if ok != tt.ok || (ok && n != tt.want) {
			t.Errorf("%q: %d, %v; want %d, %v", tt.text, n, ok, tt.want, tt.ok)
		}
	}
	if _, ok := memAvailable(filepath.Join(dir, "missing")); ok {
		t.Error("a missing file reads")
	}
}

// The 7B estimate runs from config.json alone and counts Llama-2-7B's
// parameters.
func TestMemoryEstimateFromConfig7B(t *testing.T) {
	cfg, err := recipes.Load("emotion-llama-mose", []string{"model.path=testdata/emotion-llama-7b-config", "run.device=cpu",
		"data.train=testdata/none.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"frozen weights", "12.55 GiB", "with checkpointing", "T = data.max_len 1024"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	cfg.Model.Path = t.TempDir()
	if _, err := FromConfig(cfg); err == nil {
		t.Error("a dir without config.json estimated")
	}
}
