package omni

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
)

// greedy continues a one-row fixture case by n tokens through the KV cache
// (Prefill, then Decode with the rope delta), argmax at each step.
func greedy(t *testing.T, th *Thinker, fx *fixture, c string, n int, delta func([]int64) []int64) []int64 {
	t.Helper()
	in := fx.inputs(c)
	var out []int64
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		emb := fx.embeds(s, th, c)
		cache := th.Decoder.NewCache(in.B)
		defer cache.Close()
		h, d := th.Prefill(s, cache, in, emb)
		if delta != nil {
			d = delta(d)
		}
		last := s.FromInt64([]int64{int64(in.T - 1)}, 1)
		for range n {
			step := s.Child()
			id, err := step.Argmax(th.Decoder.Logits(step, h, last), -1, false).Int64s()
			if err == nil {
				err = step.Err()
			}
			if err != nil {
				step.Close()
				return err
			}
			out = append(out, id[0])
			h = s.Own(step.Keep(th.Decode(step, cache, id, d)))
			last = s.FromInt64([]int64{0}, 1)
			if err := step.Err(); err != nil {
				step.Close()
				return err
			}
			step.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Greedy generation through the KV cache gives transformers' generate
// tokens (24 of them) on image, video, audio and audio-in-video prompts,
// whose rope deltas are negative, zero and positive.
func TestGreedyMatchesTransformers(t *testing.T) {
	th := loadThinker(t, filepath.Join("testdata", "omni-a"), torch.Float32)
	fx := openFixture(t, "omni-a")
	n := 0
	for _, c := range fx.cases() {
		if !fx.has(c + ".generated") {
			continue
		}
		n++
		t.Run(c, func(t *testing.T) {
			want := fx.int64s(c + ".generated")
			got := greedy(t, th, fx, c, len(want), nil)
			if !slices.Equal(got, want) {
				t.Errorf("generated %v\n     want %v", got, want)
			}
		})
	}
	if n < 4 {
		t.Fatalf("%d generation cases", n)
	}
}

// The generation check can fail: decoding without the rope delta gives
// other tokens.
func TestGreedyNeedsRopeDelta(t *testing.T) {
	th := loadThinker(t, filepath.Join("testdata", "omni-a"), torch.Float32)
	fx := openFixture(t, "omni-a")
	want := fx.int64s("audio_in_video.generated")
	got := greedy(t, th, fx, "audio_in_video", len(want), func(d []int64) []int64 { return make([]int64, len(d)) })
	if slices.Equal(got, want) {
		t.Error("the same tokens without the rope delta")
	}
}

// Prefill's hidden states are Forward's.
func TestPrefillMatchesForward(t *testing.T) {
	th := loadThinker(t, filepath.Join("testdata", "omni-a"), torch.Float32)
	fx := openFixture(t, "omni-a")
	in := fx.inputs("mixed_batch")
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		D := int64(th.Config.Text.HiddenSize)
		mk := func(k string) *torch.Tensor {
			v := fx.float32s("mixed_batch." + k)
			return s.FromFloat32(v, int64(len(v))/D, D)
		}
		emb := Embeds{Audio: mk("audio_embeds"), Image: mk("image_embeds"), Video: mk("video_embeds")}
		a := th.Forward(s, in, emb, false)
		cache := th.Decoder.NewCache(in.B)
		defer cache.Close()
		b, _ := th.Prefill(s, cache, in, emb)
		if err := s.Err(); err != nil {
			return err
		}
		x, err := a.Float32s()
		if err != nil {
			return err
		}
		y, err := b.Float32s()
		if err != nil {
			return err
		}
		for i := range in.B * in.T {
			if in.Mask[i] == 0 {
				continue
			}
			for j := range int(D) {
				if d := x[i*int(D)+j] - y[i*int(D)+j]; d > 1e-5 || d < -1e-5 {
					t.Fatalf("token %d: Forward and Prefill differ by %g", i, d)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
