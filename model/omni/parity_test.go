package omni

import (
	"errors"
	"fmt"
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
	return logitErrorVs(t, th, fx, c, "logits")
}

// logitErrorVs is maxLogitError against the case's logits under key.
func logitErrorVs(t *testing.T, th *Thinker, fx *fixture, c, key string) float64 {
	t.Helper()
	in := fx.inputs(c)
	want := fx.float32s(c + "." + key)
	var worst float64
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		emb := fx.embeds(s, th, c)
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
	return loadThinkerWith(t, dir, model.Options{DType: dt})
}

func loadThinkerWith(t *testing.T, dir string, opt model.Options) *Thinker {
	t.Helper()
	var th *Thinker
	err := torch.Run(func() (err error) {
		th, err = Load(dir, opt)
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
				t.Logf("%s/%s: max |logit - transformers| = %.3g", name, c, err)
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

// The audio tower matches transformers' get_audio_features within 1e-4 on
// four clips (several chunks, a tail chunk, a clip too short for a token),
// for n_window 4, 3 (pairs straddle chunks) and 5.
func TestAudioTowerMatchesTransformers(t *testing.T) {
	for _, name := range fixtureDirs {
		t.Run(name, func(t *testing.T) {
			th := loadThinker(t, filepath.Join("testdata", name), torch.Float32)
			fx := openFixture(t, name)
			want, wantShape := fx.float32s("audio_tower.audio_embeds"), fx.shape("audio_tower.audio_embeds")
			worst, err := towerDiff(t, want, wantShape, func(s *torch.Scope) *torch.Tensor {
				f, _ := fx.audio(s, "audio_tower")
				return th.AudioForward(s, f)
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("max |audio embedding - transformers| = %.3g", worst)
			if worst > 1e-4 {
				t.Errorf("max abs error %.3g > 1e-4", worst)
			}
		})
	}
}

// The audio check can fail (another chunk size moves the embeddings), and
// inputs that do not describe audios are refused.
func TestAudioTowerChangesAndRefusals(t *testing.T) {
	th := loadThinker(t, filepath.Join("testdata", "omni-a"), torch.Float32)
	fx := openFixture(t, "omni-a")
	want := fx.float32s("audio_tower.audio_embeds")
	for _, tc := range []struct {
		name    string
		edit    func(f *AudioFeatures)
		nwindow int
		refused bool
	}{
		{"n_window", nil, 3, false},
		{"mask value", func(f *AudioFeatures) { f.Mask[0] = 2 }, 0, true},
		{"empty audio", func(f *AudioFeatures) {
			L := int(f.Features.Size(2))
			clear(f.Mask[L : 2*L])
		}, 0, true},
		{"short mask", func(f *AudioFeatures) { f.Mask = f.Mask[1:] }, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.nwindow > 0 {
				old := th.Config.Audio.NWindow
				th.Config.Audio.NWindow = tc.nwindow
				defer func() { th.Config.Audio.NWindow = old }()
			}
			worst, err := towerDiff(t, want, nil, func(s *torch.Scope) *torch.Tensor {
				f, _ := fx.audio(s, "audio_tower")
				if tc.edit != nil {
					tc.edit(&f)
				}
				return th.AudioForward(s, f)
			})
			if err == nil && worst < 1e-3 {
				t.Errorf("embeddings moved by %.3g only", worst)
			}
			if tc.refused != errors.Is(err, ErrInputs) {
				t.Fatalf("err = %v, refused want %v", err, tc.refused)
			}
		})
	}
}

// The vision tower matches transformers' get_image_features and
// get_video_features within 1e-4 (three images, two videos, in one batch
// each), for window sizes of 2, 4 and 3 merged patches and full attention
// in different blocks.
func TestVisionTowerMatchesTransformers(t *testing.T) {
	for _, name := range fixtureDirs {
		th := loadThinker(t, filepath.Join("testdata", name), torch.Float32)
		fx := openFixture(t, name)
		for _, kind := range []struct{ px, grid, want string }{
			{".pixel_values", ".image_grid_thw", ".image_embeds"}, {".pixel_values_videos", ".video_grid_thw", ".video_embeds"},
		} {
			t.Run(name+kind.px, func(t *testing.T) {
				want, shape := fx.float32s("vision_tower"+kind.want), fx.shape("vision_tower"+kind.want)
				worst, err := towerDiff(t, want, shape, func(s *torch.Scope) *torch.Tensor {
					px, g := fx.pixels(s, "vision_tower", kind.px, kind.grid)
					return th.VisionForward(s, px, g)
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("max |vision embedding - transformers| = %.3g", worst)
				if worst > 1e-4 {
					t.Errorf("max abs error %.3g > 1e-4", worst)
				}
			})
		}
	}
}

// The vision check can fail (another window size or another set of
// full-attention blocks moves the embeddings), and pixels that do not fit
// their grids are refused.
func TestVisionTowerChangesAndRefusals(t *testing.T) {
	th := loadThinker(t, filepath.Join("testdata", "omni-a"), torch.Float32)
	fx := openFixture(t, "omni-a")
	want := fx.float32s("vision_tower.image_embeds")
	for _, tc := range []struct {
		name    string
		cfg     func(v *VisionConfig)
		grids   func(g [][3]int64) [][3]int64
		refused bool
	}{
		{"window size", func(v *VisionConfig) { v.WindowSize = 8 }, nil, false},
		{"full attention blocks", func(v *VisionConfig) { v.FullAttBlockIndexes = []int{0} }, nil, false},
		{"grids for other pixels", nil, func(g [][3]int64) [][3]int64 { return g[:2] }, true},
		{"odd grid", nil, func(g [][3]int64) [][3]int64 { g[2] = [3]int64{1, 1, 4}; return g }, true},
		{"window below a merged patch", func(v *VisionConfig) { v.WindowSize = 4 }, nil, true},
		{"grids of 2^34 patches", nil, func(g [][3]int64) [][3]int64 { return [][3]int64{{MaxGrid, MaxGrid, MaxGrid}} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := th.Config.Vision
			old.FullAttBlockIndexes = slices.Clone(old.FullAttBlockIndexes)
			if tc.cfg != nil {
				tc.cfg(&th.Config.Vision)
			}
			defer func() { th.Config.Vision = old }()
			worst, err := towerDiff(t, want, nil, func(s *torch.Scope) *torch.Tensor {
				px, g := fx.pixels(s, "vision_tower", ".pixel_values", ".image_grid_thw")
				if tc.grids != nil {
					g = tc.grids(g)
				}
				return th.VisionForward(s, px, g)
			})
			if err == nil && worst < 1e-3 {
				t.Errorf("embeddings moved by %.3g only", worst)
			}
			if refused := errors.Is(err, ErrInputs) || errors.Is(err, ErrConfig); refused != tc.refused {
				t.Fatalf("err = %v, refused want %v", err, tc.refused)
			}
		})
	}
}

// towerDiff runs fwd in a scope and returns the largest |output - want|;
// the output must have shape (nil: any). fwd's error (through the scope) is
// returned.
func towerDiff(t *testing.T, want []float32, shape []int64, fwd func(s *torch.Scope) *torch.Tensor) (float64, error) {
	t.Helper()
	var worst float64
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		got := fwd(s)
		if err := s.Err(); err != nil {
			return err
		}
		if shape != nil && !slices.Equal(got.Shape(), shape) {
			return fmt.Errorf("output %v, want %v", got.Shape(), shape)
		}
		v, err := got.Float32s()
		if err != nil {
			return err
		}
		worst = maxAbs(v, want)
		return nil
	})
	return worst, err
}

// maxAbs is the largest |a[i] - b[i]|.
func maxAbs(a, b []float32) float64 {
	var worst float64
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i]-b[i])))
	}
	return worst
}
