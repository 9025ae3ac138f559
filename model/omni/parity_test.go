package omni

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
)

// maxLogitError runs the thinker on a fixture case with the fixture's
// encoder outputs and returns the largest difference from transformers'
// logits over the real (unpadded) positions.
func maxLogitError(t *testing.T, th *Thinker, fx *fixture, c string) float64 {
	t.Helper()
	in := fx.inputs(c)
	want := fx.float32s(c + ".logits")
	var worst float64
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		D := int64(th.Config.Text.HiddenSize)
		var emb Embeds
		for _, e := range []struct {
			key string
			dst **torch.Tensor
		}{{".audio_embeds", &emb.Audio}, {".image_embeds", &emb.Image}, {".video_embeds", &emb.Video}} {
			if fx.has(c + e.key) {
				v := fx.float32s(c + e.key)
				*e.dst = s.FromFloat32(v, int64(len(v))/D, D)
			}
		}
		got := th.Logits(s, in, emb)
		if err := s.Err(); err != nil {
			return err
		}
		V := int64(th.Config.Text.VocabSize)
		if want := []int64{int64(in.B), int64(in.T), V}; !slices.Equal(got.Shape(), want) {
			t.Fatalf("logits shape %v, want %v", got.Shape(), want)
		}
		v, err := got.Float32s()
		if err != nil {
			return err
		}
		for i := range in.B * in.T {
			if in.Mask[i] == 0 {
				continue
			}
			for j := range V {
				k := int64(i)*V + j
				worst = math.Max(worst, math.Abs(float64(v[k]-want[k])))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return worst
}

func loadThinker(t *testing.T, dir string, dt torch.DType) *Thinker {
	t.Helper()
	var th *Thinker
	err := torch.Run(func() (err error) {
		th, err = Load(dir, model.Options{DType: dt})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = torch.Run(func() error { th.Close(); return nil }) })
	return th
}

// The thinker's logits match transformers' Qwen2_5OmniThinkerForConditionalGeneration
// (fp32, eager) within 1e-4 on text, image, video, audio and audio-in-video
// prompts, the encoder outputs given at their placeholders.
func TestThinkerLogitsMatchTransformers(t *testing.T) {
	n := 0
	for _, name := range fixtureDirs {
		th := loadThinker(t, filepath.Join("testdata", name), torch.Float32)
		fx := openFixture(t, name)
		for _, c := range fx.cases() {
			if !fx.has(c + ".logits") {
				continue
			}
			n++
			t.Run(name+"/"+c, func(t *testing.T) {
				err := maxLogitError(t, th, fx, c)
				t.Logf("max |logit - transformers| = %.3g", err)
				if err > 1e-4 {
					t.Errorf("max abs logit error %.3g > 1e-4", err)
				}
			})
		}
	}
	if n < 14 {
		t.Fatalf("only %d cases with logits", n)
	}
}

// The logit check can fail: another mrope_section split or another time
// scale moves the logits well beyond the tolerance.
func TestThinkerLogitsDetectChanges(t *testing.T) {
	fx := openFixture(t, "omni-a")
	for _, tc := range []struct {
		name string
		c    string
		edit func(th *Thinker, fx *fixture) func()
	}{
		{"mrope_section", "video", func(th *Thinker, _ *fixture) func() {
			old := th.Config.Text.MRopeSection
			th.Config.Text.MRopeSection = []int{2, 1, 1}
			return func() { th.Config.Text.MRopeSection = old }
		}},
		{"time scale", "video", func(th *Thinker, _ *fixture) func() {
			th.Config.PositionIDPerSeconds = 20
			return func() { th.Config.PositionIDPerSeconds = 25 }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := loadThinker(t, filepath.Join("testdata", "omni-a"), torch.Float32)
			restore := tc.edit(th, fx)
			defer restore()
			if err := maxLogitError(t, th, fx, tc.c); !(err > 1e-3) {
				t.Errorf("max logit error %.3g after the change: the check cannot see it", err)
			}
		})
	}
}
