package omnisynth

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/procout"
	"github.com/mose-llm/mose/data/tokenizer"
)

// Both paths make a manifest whose files procout reads, with a video
// interleaved with its audio and the label's answer cue.
func TestGenerate(t *testing.T) {
	tok, err := tokenizer.Parse(omniproc.TinyTokenizerJSON)
	if err != nil {
		t.Fatal(err)
	}
	// No FFmpeg to be found: the media are drawn in Go, and the result says so.
	t.Run("no ffmpeg", func(t *testing.T) {
		t.Setenv("MOSE_FFMPEG", filepath.Join(t.TempDir(), "missing"))
		res, err := Generate(context.Background(), filepath.Join(t.TempDir(), "d"), tok, Config{Samples: 2, Seconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Clips || !strings.Contains(res.FFmpeg, "missing") {
			t.Errorf("result %+v", res)
		}
	})
	for _, noFF := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "d")
		start := time.Now()
		res, err := Generate(context.Background(), dir, tok, Config{Samples: 3, NoFFmpeg: noFF})
		if err != nil {
			t.Fatal(err)
		}
		if !noFF && !res.Clips {
			t.Logf("SKIP (FFmpeg path): no FFmpeg: %s", res.FFmpeg)
			continue
		}
		samples, err := data.ReadManifest(res.Train, data.ManifestOptions{Omni: true, Labels: data.EmotionLabels})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range samples {
			h, err := procout.Open(filepath.Join(dir, s.Inputs))
			if err != nil {
				t.Fatal(err)
			}
			m, err := h.Media()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("clips=%v %s: T=%d video %v audio %v pixels %d", res.Clips, s.ID, h.T, h.VideoGridTHW, h.AudioLens, len(m.Videos))
			if !h.UseAudioInVideo || len(h.VideoGridTHW) != 1 || len(h.AudioLens) != 1 {
				t.Errorf("%s: %+v", s.ID, h)
			}
		}
		t.Logf("took %v", time.Since(start))
	}
}
