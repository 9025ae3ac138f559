package experts_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
	"github.com/mose-llm/mose/model"
)

var moseCfg = experts.Config{Method: "mose", Targets: []string{"q_proj", "v_proj"}, Rank: 4, Alpha: 8,
	VisualExperts: 3, NonVisualExperts: 3, OmniExperts: 1}

// forwardLogits runs m on ids with the given modality ids (B,T) -> logits.
func forwardLogits(s *torch.Scope, m *model.Model, ids, mods []int64, B, T int64, train bool) *torch.Tensor {
	in := &model.Inputs{IDs: s.FromInt64(ids, B, T), Modality: s.FromInt64(mods, B, T)}
	return m.Logits(s, m.Forward(s, in, train), nil)
}

var (
	testIDs  = []int64{3, 7, 1, 9, 12, 30, 2, 5, 8, 21, 33, 4}
	testMods = []int64{0, 1, 1, 2, 0, 3, 0, 1, 2, 1, 0, 3}
)

// With B at zero the adapters add exactly nothing.
func TestZeroBIsIdentity(t *testing.T) {
	dir := tinyModel(t)
	inTorch(t, func(s *torch.Scope) {
		m, err := model.Load(dir, model.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		base := floats(t, forwardLogits(s, m, testIDs, testMods, 2, 6, false))
		set := wire(t, s, m, moseCfg, gating.Config{TopK: 1}, nil)
		defer set.Close()
		with := floats(t, forwardLogits(s, m, testIDs, testMods, 2, 6, false))
		for i := range base {
			if base[i] != with[i] {
				t.Fatalf("logit %d: %v with zero-B adapters, %v without", i, with[i], base[i])
			}
		}
	})
}

// Plain LoRA equals PEFT: PEFT's own adapters loaded into mose give PEFT's logits.
func TestLoRAMatchesPEFT(t *testing.T) {
	cases := []struct {
		name, dir, logits string
		cfg               experts.Config
	}{
		{"lora", "testdata/peft-lora", "logits_lora",
			experts.Config{Method: "lora", Targets: []string{"q_proj", "v_proj"}, Rank: 4, Alpha: 8}},
		{"rslora all-linear", "testdata/peft-lora/rslora", "logits_rslora",
			experts.Config{Method: "lora", Targets: experts.TargetModules, Rank: 8, Alpha: 4, RSLoRA: true}},
	}
	f, err := safetensors.Open("testdata/peft-lora/expected.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, _ := f.Read("input_ids")
	ids, err := safetensors.BytesToInt64s(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, err := f.Read(c.logits)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := safetensors.BytesToFloat32s(raw)
			adapter, err := safetensors.Open(filepath.Join(c.dir, "adapter_model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer adapter.Close()
			inTorch(t, func(s *torch.Scope) {
				m, err := model.Load("testdata/peft-lora/base", model.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				set := wire(t, s, m, c.cfg, gating.Config{}, nil)
				defer set.Close()
				r := ckpt.NewReader(adapter)
				err = set.Import(s, func(s *torch.Scope, name string) *torch.Tensor {
					return r.Read(s, "base_model.model."+name, torch.Float32, torch.CPU)
				})
				if err != nil {
					t.Fatal(err)
				}
				in := &model.Inputs{IDs: s.FromInt64(ids, 2, int64(len(ids)/2))} // no modality: all text
				got := floats(t, m.Logits(s, m.Forward(s, in, false), nil))
				var worst float64
				for i := range want {
					worst = math.Max(worst, math.Abs(got[i]-float64(want[i])))
				}
				t.Logf("max |mose - PEFT| = %.3g", worst)
				if worst > 1e-4 {
					t.Errorf("logits differ from PEFT's by %.3g", worst)
				}
			})
		})
	}
}

// After one backward, A, B and the gates have gradients, and no frozen
// weight does.
func TestGradientsReachOnlyAdapters(t *testing.T) {
	dir := tinyModel(t)
	inTorch(t, func(s *torch.Scope) {
		m, err := model.Load(dir, model.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		rec := &gating.Tracker{}
		set := wire(t, s, m, moseCfg, gating.Config{TopK: 1}, rec)
		defer set.Close()
		randomize(t, s, set, 3, 0.1)
		logits := forwardLogits(s, m, testIDs, testMods, 2, 6, true)
		lb, z := rec.Losses(s, torch.CPU)
		loss := s.Add(s.Add(s.Mean(s.Square(logits)), lb), z)
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		for i, p := range set.Params() {
			g := s.Grad(p)
			if g == nil {
				t.Fatalf("adapter parameter %d has no gradient", i)
			}
			var norm float64
			for _, v := range floats(t, g) {
				norm += v * v
			}
			if norm == 0 {
				t.Errorf("adapter parameter %d %v has a zero gradient", i, p.Shape())
			}
		}
		frozen := []*torch.Tensor{m.EmbedTokens, m.Norm, m.Head}
		for _, l := range m.Linears() {
			frozen = append(frozen, l.Weight)
		}
		for _, w := range frozen {
			if w.RequiresGrad() || s.Grad(w) != nil {
				t.Fatal("a frozen weight requires or received a gradient")
			}
		}
	})
}

// Perturbing the visual group's parameters changes the delta only at visual
// tokens, and the nonvisual group's only at text and audio tokens.
func TestRoutingRespectsModality(t *testing.T) {
	inTorch(t, func(s *torch.Scope) {
		cfg := experts.Config{Method: "mose", Targets: []string{"q_proj"}, Rank: 2, Alpha: 2,
			VisualExperts: 2, NonVisualExperts: 2, OmniExperts: 0}
		set, err := experts.New(torch.CPU, []experts.Target{{Name: "l.q_proj", In: 5, Out: 3}}, cfg,
			func(name string, in int64, groups []string, K []int) (experts.Gate, error) {
				return gating.NewGate(s, torch.CPU, name, in, groups, K, gating.Config{TopK: 1}, nil2(), 0.3, nil)
			})
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		randomize(t, s, set, 11, 0.4)
		m := set.Mixtures[0]
		x := s.Randn([]int64{1, 4, 5}, torch.Float32, torch.CPU)
		onehot := s.To(s.OneHot(s.FromInt64([]int64{modality.Text, modality.Visual, modality.Audio, modality.Pad}, 1, 4), 4), torch.Float32)
		before := floats(t, m.Delta(s, x, onehot, false))
		for _, c := range []struct {
			group   string
			changed []int // token positions whose delta may change
		}{{experts.Visual, []int{1}}, {experts.NonVisual, []int{0, 2}}} {
			export := set.Export(s)
			err := set.Import(s, func(s *torch.Scope, name string) *torch.Tensor {
				for _, n := range export {
					if n.Name == name {
						if strings.Contains(name, "."+c.group+".") {
							return s.AddScalar(n.T, 0.5)
						}
						return n.T
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			after := floats(t, m.Delta(s, x, onehot, false))
			for tok := range 4 {
				moved := false
				for o := range 3 {
					moved = moved || after[tok*3+o] != before[tok*3+o]
				}
				allowed := false
				for _, c := range c.changed {
					allowed = allowed || c == tok
				}
				if moved != allowed {
					t.Errorf("perturbing %s: token %d moved=%v, want %v", c.group, tok, moved, allowed)
				}
			}
			before = after
		}
	})
}

func TestSelectAndValidate(t *testing.T) {
	cfg := experts.Config{Method: "mose", Targets: []string{"q_proj", "w_proj"}, Rank: 4, Alpha: 8, OmniExperts: 1}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "w_proj") {
		t.Errorf("unknown module accepted: %v", err)
	}
	cfg.Targets = []string{"q_proj", "gate_proj"}
	_, err := cfg.Select([]string{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"})
	if err == nil || !strings.Contains(err.Error(), "gate_proj") || !strings.Contains(err.Error(), "found: q_proj, v_proj") {
		t.Errorf("unmatched target: %v", err)
	}
	for _, bad := range []experts.Config{
		{Method: "mixlora", Targets: []string{"q_proj"}, Rank: 4, Alpha: 8},
		{Method: "mose", Targets: []string{"q_proj"}, Rank: 0, Alpha: 8, OmniExperts: 1},
		{Method: "mose", Targets: []string{"q_proj"}, Rank: 4, Alpha: 8},
		{Method: "lora", Targets: []string{"q_proj"}, Rank: 4, Alpha: 8, Dropout: 1},
	} {
		if bad.Validate() == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}
