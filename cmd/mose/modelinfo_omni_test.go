package main

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/safetensors"
)

const omniFixture = "../../model/omni/testdata/omni-a"

func readF32(t *testing.T, f *safetensors.File, name string) []float32 {
	t.Helper()
	raw, err := f.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := safetensors.BytesToFloat32s(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// model-info on a Qwen2.5-Omni dir with processor outputs writes
// transformers' logits, the towers' outputs and the position ids.
func TestModelInfoOmni(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.safetensors")
	code, msg := runMose(t, "model-info", "--model", omniFixture, "--inputs", filepath.Join(omniFixture, "inputs.safetensors"),
		"--logits-out", out, "--dump", "towers,positions")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if !strings.Contains(msg, "Qwen2.5-Omni thinker") || !strings.Contains(msg, "row 0: top next tokens") {
		t.Errorf("output:\n%s", msg)
	}
	got, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	want, err := safetensors.Open(filepath.Join(omniFixture, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	for _, name := range []string{"audio_embeds", "image_embeds", "video_embeds", "position_ids", "rope_deltas"} {
		if _, err := got.Info(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	g, w := readF32(t, got, "logits"), readF32(t, want, "omni_prompt.logits")
	if len(g) != len(w) {
		t.Fatalf("%d logits, want %d", len(g), len(w))
	}
	var worst float64
	for i := range g {
		worst = math.Max(worst, math.Abs(float64(g[i]-w[i])))
	}
	if worst > 1e-4 {
		t.Errorf("max |logit - transformers| = %.3g", worst)
	}
	raw, _ := got.Read("position_ids")
	pos, _ := safetensors.BytesToInt64s(raw)
	if !slices.Contains(pos, 28) { // the video's second temporal patch: 1 s later
		t.Errorf("position ids %v", pos)
	}
}

// Omni-only flags on other dirs, and flags omni dirs do not take, exit 2.
func TestModelInfoOmniBadFlags(t *testing.T) {
	in := filepath.Join(omniFixture, "inputs.safetensors")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"text on omni", []string{"--model", omniFixture, "--text", "hi"}, "--text"},
		{"dump value", []string{"--model", omniFixture, "--inputs", in, "--logits-out", filepath.Join(t.TempDir(), "o"), "--dump", "layers"}, "--dump"},
		{"dump without out", []string{"--model", omniFixture, "--inputs", in, "--dump", "towers"}, "--dump"},
		{"inputs on a llama dir", []string{"--model", e2e.model, "--inputs", in}, "Qwen2.5-Omni"},
		{"inputs that are not processor outputs", []string{"--model", omniFixture, "--inputs", filepath.Join(omniFixture, "model.safetensors")}, "not a processor output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := runMose(t, append([]string{"model-info"}, tc.args...)...)
			if code != 2 || !strings.Contains(msg, tc.want) {
				t.Fatalf("exit %d, want 2 naming %s: %s", code, tc.want, msg)
			}
		})
	}
}

// init-model writes an omni preset that model-info loads; the LLaMA size
// flags are refused with it.
func TestInitModelOmni(t *testing.T) {
	out := filepath.Join(t.TempDir(), "omni")
	if code, msg := runMose(t, "init-model", "--preset", "omni-tiny", "--out", out); code != 0 || !strings.Contains(msg, "Qwen2.5-Omni thinker") {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if code, msg := runMose(t, "model-info", "--model", out); code != 0 || !strings.Contains(msg, "vocab 512") {
		t.Fatalf("model-info: exit %d: %s", code, msg)
	}
	if code, msg := runMose(t, "init-model", "--preset", "omni-tiny", "--layers", "3", "--out", filepath.Join(t.TempDir(), "x")); code != 2 || !strings.Contains(msg, "--layers") {
		t.Fatalf("--layers with omni-tiny: exit %d: %s", code, msg)
	}
	if code, msg := runMose(t, "init-model", "--preset", "omni-huge", "--out", filepath.Join(t.TempDir(), "y")); code != 2 || !strings.Contains(msg, "omni-tiny") {
		t.Fatalf("unknown preset: exit %d: %s", code, msg)
	}
}
