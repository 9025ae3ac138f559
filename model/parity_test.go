package model

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

// The fixtures under testdata/llama-* come from transformers (see
// scripts/fixtures/make_fixtures.py and testdata/README.md).
var parityDirs = []string{"llama-gqa", "llama-tied-rope3", "llama-bias-headdim"}

// readExpected returns input_ids (B,T) and the named logits (B,T,V).
func readExpected(t *testing.T, dir, logits string) (ids []int64, want []float32, shape []int64) {
	t.Helper()
	return readExpectedFile(t, dir, "expected.safetensors", logits)
}

// readExpectedFile is readExpected on dir/file.
func readExpectedFile(t *testing.T, dir, file, logits string) (ids []int64, want []float32, shape []int64) {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := f.Read("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	if ids, err = safetensors.BytesToInt64s(raw); err != nil {
		t.Fatal(err)
	}
	info, err := f.Info(logits)
	if err != nil {
		t.Fatal(err)
	}
	raw, err = f.Read(logits)
	if err != nil {
		t.Fatal(err)
	}
	if want, err = safetensors.BytesToFloat32s(raw); err != nil {
		t.Fatal(err)
	}
	return ids, want, info.Shape
}

// maxLogitError runs the model on the fixture's ids and returns the largest
// absolute difference from the reference logits.
func maxLogitError(t *testing.T, dir, logits string, dt torch.DType) float64 {
	t.Helper()
	ids, want, shape := readExpected(t, dir, logits)
	var worst float64
	err := torch.Run(func() error {
		m, err := Load(dir, Options{DType: dt})
		if err != nil {
			return err
		}
		defer m.Close()
		s := torch.NewScope()
		defer s.Close()
		in := &Inputs{IDs: s.FromInt64(ids, shape[0], shape[1])}
		got := m.Logits(s, m.Forward(s, in, false), nil)
		if err := s.Err(); err != nil {
			return err
		}
		if !slices.Equal(got.Shape(), shape) {
			t.Fatalf("logits shape %v, want %v", got.Shape(), shape)
		}
		v, err := got.Float32s()
		if err != nil {
			return err
		}
		for i := range v {
			worst = math.Max(worst, math.Abs(float64(v[i]-want[i])))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return worst
}

func TestParityFloat32(t *testing.T) {
	for _, name := range parityDirs {
		t.Run(name, func(t *testing.T) {
			err := maxLogitError(t, filepath.Join("testdata", name), "logits", torch.Float32)
			t.Logf("max |logit - transformers| = %.3g", err)
			if err > 1e-4 {
				t.Errorf("max abs logit error %.3g > 1e-4", err)
			}
		})
	}
}

// In bfloat16 the reference is transformers' own bfloat16 forward on CPU.
// Both round every op to 8 mantissa bits, but along different paths (fused
// SDPA here, eager matmul/softmax there), so they agree only to about the
// size of bf16's own error. The documented tolerance is therefore twofold:
//   - within bf16AbsTolerance of transformers' bf16 logits, and
//   - no less accurate than transformers' bf16: the max error against the
//     fp32 reference at most bf16Accuracy × transformers' bf16 error.
const (
	bf16AbsTolerance = 0.15
	bf16Accuracy     = 1.25
)

func TestParityBFloat16(t *testing.T) {
	for _, name := range parityDirs {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			vsHF := maxLogitError(t, dir, "logits_bf16", torch.BFloat16)
			vsFP32 := maxLogitError(t, dir, "logits", torch.BFloat16)
			_, hf16, _ := readExpected(t, dir, "logits_bf16")
			_, hf32, _ := readExpected(t, dir, "logits")
			var hfErr float64
			for i := range hf16 {
				hfErr = math.Max(hfErr, math.Abs(float64(hf16[i]-hf32[i])))
			}
			t.Logf("max |mose bf16 - transformers bf16| = %.3g; error vs fp32: mose %.3g, transformers %.3g", vsHF, vsFP32, hfErr)
			if vsHF > bf16AbsTolerance {
				t.Errorf("max abs difference from transformers bf16 %.3g > %g", vsHF, bf16AbsTolerance)
			}
			if vsFP32 > bf16Accuracy*hfErr {
				t.Errorf("bf16 error vs fp32 %.3g > %g × transformers' %.3g", vsFP32, bf16Accuracy, hfErr)
			}
		})
	}
}
