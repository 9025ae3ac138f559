package model

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

// The fixtures under testdata/rope and testdata/llama-long-rope come from
// transformers 4.46.3 (scripts/fixtures/rope_fixtures.py).

type ropeCase struct {
	Name      string          `json:"name"`
	Config    json.RawMessage `json:"config"`
	InvFreq   []float64       `json:"inv_freq"`
	Positions []int64         `json:"positions"`
	CosF32    []float64       `json:"cos_f32"`
	SinF32    []float64       `json:"sin_f32"`
	CosBF16   []float64       `json:"cos_bf16"`
	SinBF16   []float64       `json:"sin_bf16"`
}

func readRopeCases(t *testing.T, file string) []ropeCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "rope", file))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []ropeCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(f.Cases) == 0 {
		t.Fatalf("%s: no cases", file)
	}
	return f.Cases
}

// bitsOff counts the values whose float32 bits differ, and the largest
// absolute difference.
func bitsOff(got []float32, want []float64) (n int, worst float64) {
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(float32(want[i])) {
			n++
			worst = math.Max(worst, math.Abs(float64(got[i])-want[i]))
		}
	}
	return n, worst
}

// Every rope type mose supports, bit for bit against transformers'
// rotary inv_freq buffer.
func TestRopeInvFreqMatchesTransformers(t *testing.T) {
	for _, c := range readRopeCases(t, "inv_freq.json") {
		t.Run(c.Name, func(t *testing.T) {
			cfg, err := ParseConfig(c.Config)
			if err != nil {
				t.Fatal(err)
			}
			var got []float32
			if err := torch.Run(func() (err error) { got, err = cfg.invFreq(); return err }); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.InvFreq) {
				t.Fatalf("%d frequencies, transformers has %d", len(got), len(c.InvFreq))
			}
			if n, worst := bitsOff(got, c.InvFreq); n > 0 {
				t.Errorf("%d of %d inverse frequencies differ from transformers (max abs diff %.3g)", n, len(got), worst)
			}
		})
	}
}

// The cos/sin tables at positions up to 131,071, in float32 and bfloat16,
// bit for bit against LlamaRotaryEmbedding.forward.
func TestRopeTablesMatchTransformers(t *testing.T) {
	for _, c := range readRopeCases(t, "tables.json") {
		t.Run(c.Name, func(t *testing.T) {
			cfg, err := ParseConfig(c.Config)
			if err != nil {
				t.Fatal(err)
			}
			hd := int64(cfg.HeadDim)
			for _, tc := range []struct {
				dt       torch.DType
				cos, sin []float64
			}{{torch.Float32, c.CosF32, c.SinF32}, {torch.BFloat16, c.CosBF16, c.SinBF16}} {
				if len(tc.cos) != len(c.Positions)*int(hd) || len(tc.sin) != len(tc.cos) {
					t.Fatalf("fixture: %d cos and %d sin values for %d positions of %d", len(tc.cos), len(tc.sin), len(c.Positions), hd)
				}
				var cos, sin []float32
				err := torch.Run(func() error {
					var r rope
					defer r.free()
					var err error
					if r.invFreq, err = cfg.invFreq(); err != nil {
						return err
					}
					s := torch.NewScope()
					defer s.Close()
					idx := s.FromInt64(c.Positions, int64(len(c.Positions)))
					ct, st := r.tables(s, c.Positions[len(c.Positions)-1]+1, tc.dt, torch.CPU)
					ct = s.To(s.IndexSelect(ct, 0, idx), torch.Float32)
					st = s.To(s.IndexSelect(st, 0, idx), torch.Float32)
					if err := s.Err(); err != nil {
						return err
					}
					if cos, err = ct.Float32s(); err != nil {
						return err
					}
					sin, err = st.Float32s()
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range []struct {
					what string
					got  []float32
					want []float64
				}{{"cos", cos, tc.cos}, {"sin", sin, tc.sin}} {
					if n, worst := bitsOff(v.got, v.want); n > 0 {
						t.Errorf("%v %s: %d of %d values differ from transformers (max abs diff %.3g)", tc.dt, v.what, n, len(v.got), worst)
					}
				}
			}
		})
	}
}

// A θ=5e5, head_dim 64 model at positions 2,048..2,111: the logits agree
// with transformers within 1e-4 (a float64 power rounded once gave 2.7e-3).
func TestRopeLongSequenceLogits(t *testing.T) {
	dir := filepath.Join("testdata", "llama-long-rope")
	f, err := safetensors.Open(filepath.Join(dir, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := f.Read("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := safetensors.BytesToInt64s(raw)
	if err != nil {
		t.Fatal(err)
	}
	info, err := f.Info("logits_tail")
	if err != nil {
		t.Fatal(err)
	}
	if raw, err = f.Read("logits_tail"); err != nil {
		t.Fatal(err)
	}
	want, err := safetensors.BytesToFloat32s(raw)
	if err != nil {
		t.Fatal(err)
	}
	T, tail := int64(len(ids)), info.Shape[1]
	var worst float64
	err = torch.Run(func() error {
		m, err := Load(dir, Options{})
		if err != nil {
			return err
		}
		defer m.Close()
		s := torch.NewScope()
		defer s.Close()
		logits := m.Logits(s, m.Forward(s, &Inputs{IDs: s.FromInt64(ids, 1, T)}, false), nil) // (1,T,V)
		got := s.Contiguous(s.Narrow(logits, 1, T-tail, tail))
		if err := s.Err(); err != nil {
			return err
		}
		v, err := got.Float32s()
		if err != nil {
			return err
		}
		if len(v) != len(want) {
			t.Fatalf("%d logits, fixture has %d", len(v), len(want))
		}
		for i := range v {
			worst = math.Max(worst, math.Abs(float64(v[i]-want[i])))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("T=%d: max |logit - transformers| over the last %d positions = %.3g", T, tail, worst)
	if worst > 1e-4 {
		t.Errorf("max abs logit error %.3g > 1e-4", worst)
	}
}

// Rope settings transformers would treat differently from what mose
// computes are refused by name.
func TestRopeConfigRefused(t *testing.T) {
	base := `"hidden_size":64,"intermediate_size":96,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":32`
	for _, tc := range []struct {
		name, json string
		want       []string
	}{
		{"dynamic", `{"model_type":"llama",` + base + `,"rope_scaling":{"rope_type":"dynamic","factor":2}}`, []string{"rope_scaling.rope_type", `"dynamic"`}},
		{"yarn", `{"model_type":"qwen2",` + base + `,"rope_scaling":{"type":"yarn","factor":4}}`, []string{"rope_scaling.rope_type", `"yarn"`}},
		{"type and rope_type disagree", `{"model_type":"llama",` + base + `,"rope_scaling":{"type":"linear","rope_type":"llama3","factor":2}}`, []string{"rope_scaling.type", "rope_type"}},
		{"mistral ignores rope_scaling", `{"model_type":"mistral",` + base + `,"rope_scaling":{"rope_type":"linear","factor":2}}`, []string{"rope_scaling", "mistral"}},
		{"partial rotary", `{"model_type":"llama",` + base + `,"partial_rotary_factor":0.5}`, []string{"partial_rotary_factor", "0.5"}},
		{"qwen2 head_dim", `{"model_type":"qwen2",` + base + `,"head_dim":48}`, []string{"head_dim", "48", "qwen2"}},
		{"linear without factor", `{"model_type":"llama",` + base + `,"rope_scaling":{"rope_type":"linear"}}`, []string{"rope_scaling.factor"}},
		{"rope_parameters unknown field", `{"model_type":"llama",` + base + `,"rope_parameters":{"rope_theta":1e5,"rope_type":"default","beta_fast":32}}`, []string{"rope_parameters", "beta_fast"}},
		{"rope_parameters theta disagrees", `{"model_type":"llama",` + base + `,"rope_theta":1e4,"rope_parameters":{"rope_theta":1e5}}`, []string{"rope_parameters.rope_theta", "disagrees"}},
		{"rope_parameters yarn", `{"model_type":"llama",` + base + `,"rope_parameters":{"rope_type":"yarn","factor":4,"rope_theta":1e4}}`, []string{"rope_scaling.rope_type", `"yarn"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.json))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// transformers 5's rope_parameters give rope_theta and the scaling (SmolLM2
	// saved by transformers 5 has only rope_parameters.rope_theta = 1e5).
	for _, tc := range []struct {
		json  string
		theta float64
		kind  string
	}{
		{`{"model_type":"llama",` + base + `,"rope_parameters":{"rope_theta":100000.0,"rope_type":"default"}}`, 1e5, "default"},
		{`{"model_type":"llama",` + base + `,"rope_theta":5e5,"rope_parameters":{"rope_theta":5e5,"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192}}`, 5e5, "llama3"},
		{`{"model_type":"llama",` + base + `,"rope_parameters":null}`, 10000, "default"},
	} {
		c, err := ParseConfig([]byte(tc.json))
		if err != nil || c.RopeTheta != tc.theta || c.RopeScaling.Kind() != tc.kind {
			t.Errorf("%s: rope_theta %g, scaling %q (%v); want %g, %q", tc.json, c.RopeTheta, c.RopeScaling.Kind(), err, tc.theta, tc.kind)
		}
	}
	// Accepted: mistral with rope_scaling null, partial_rotary_factor 1.
	for _, ok := range []string{
		`{"model_type":"mistral",` + base + `,"rope_scaling":null}`,
		`{"model_type":"llama",` + base + `,"partial_rotary_factor":1.0}`,
		`{"model_type":"llama",` + base + `,"rope_scaling":{"type":"linear","rope_type":"linear","factor":2}}`,
	} {
		if _, err := ParseConfig([]byte(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// transformers 5 writes rope_theta, rope_scaling and partial_rotary_factor
// inside rope_parameters: mose reads them from there exactly as from the older
// keys, refuses a config whose two forms disagree, and refuses rope_parameters
// keys it does not implement.
func TestRopeParameters(t *testing.T) {
	base := `"model_type":"llama","hidden_size":64,"intermediate_size":96,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":32`
	llama3 := `"factor":8.0,"high_freq_factor":4.0,"low_freq_factor":1.0,"original_max_position_embeddings":8192`
	old, err := ParseConfig([]byte(`{` + base + `,"rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3",` + llama3 + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range []string{
		`{` + base + `,"rope_parameters":{"rope_theta":500000.0,"rope_type":"llama3",` + llama3 + `}}`,
		`{` + base + `,"rope_theta":500000.0,"rope_parameters":{"rope_theta":500000.0,"rope_type":"llama3",` + llama3 + `}}`,
		`{` + base + `,"rope_scaling":{"rope_type":"llama3",` + llama3 + `},"rope_parameters":{"rope_theta":500000.0,"rope_type":"llama3",` + llama3 + `,"partial_rotary_factor":1.0}}`,
	} {
		got, err := ParseConfig([]byte(js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		if got.RopeTheta != old.RopeTheta || *got.RopeScaling != *old.RopeScaling {
			t.Errorf("%s: theta %g scaling %+v, the older keys give %g %+v", js, got.RopeTheta, *got.RopeScaling, old.RopeTheta, *old.RopeScaling)
		}
	}
	if c, err := ParseConfig([]byte(`{` + base + `,"rope_parameters":{"rope_theta":100000.0,"rope_type":"default"}}`)); err != nil || c.RopeTheta != 1e5 || c.RopeScaling.Kind() != "default" {
		t.Errorf("default rope_parameters: theta %g kind %s, %v", c.RopeTheta, c.RopeScaling.Kind(), err)
	}
	for _, tc := range []struct {
		name, json string
		want       []string
	}{
		{"theta disagrees", `{` + base + `,"rope_theta":10000.0,"rope_parameters":{"rope_theta":500000.0,"rope_type":"default"}}`, []string{"rope_theta", "500000"}},
		{"scaling disagrees", `{` + base + `,"rope_scaling":{"rope_type":"linear","factor":2},"rope_parameters":{"rope_theta":10000.0,"rope_type":"default"}}`, []string{"rope_scaling", "linear"}},
		{"unknown key", `{` + base + `,"rope_parameters":{"rope_theta":10000.0,"rope_type":"default","mrope_section":[1,2]}}`, []string{"rope_parameters.mrope_section"}},
		{"unsupported type", `{` + base + `,"rope_parameters":{"rope_theta":10000.0,"rope_type":"yarn","factor":4}}`, []string{"yarn"}},
		{"partial rotary", `{` + base + `,"rope_parameters":{"rope_theta":10000.0,"rope_type":"default","partial_rotary_factor":0.5}}`, []string{"partial_rotary_factor", "0.5"}},
		{"not an object", `{` + base + `,"rope_parameters":[1]}`, []string{"rope_parameters"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.json))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
