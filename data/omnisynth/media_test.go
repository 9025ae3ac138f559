package omnisynth

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/media"
)

// GenerateMedia writes decodable mp4 clips with an audio track and media
// manifests whose three subsets take turns.
func TestGenerateMedia(t *testing.T) {
	ff, err := media.Locate(context.Background())
	if err != nil {
		t.Skipf("no ffmpeg: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "set")
	res, err := GenerateMedia(context.Background(), dir, Config{Samples: 6, Seconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	train, err := data.ReadManifest(res.Train, data.ManifestOptions{Labels: data.EmotionLabels, Omni: true})
	if err != nil {
		t.Fatal(err)
	}
	eval, err := data.ReadManifest(filepath.Join(dir, "eval.jsonl"), data.ManifestOptions{Labels: data.EmotionLabels, Omni: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(train) != 6 || len(eval) != 3 {
		t.Fatalf("%d train and %d eval samples, want 6 and 3", len(train), len(eval))
	}
	count := map[string]int{}
	for _, s := range train {
		count[s.Subset]++
		p := filepath.Join(dir, s.Video)
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", p, err)
		}
		if _, err := ff.DecodeAudio(context.Background(), p, media.Limits{}); err != nil {
			t.Fatalf("%s has no decodable audio track: %v", p, err)
		}
		if v, err := ff.DecodeVideo(context.Background(), p, 2, media.Limits{}); err != nil || len(v.Frames) != 2 {
			t.Fatalf("%s: video %v, want 2 frames at 2 fps", p, err)
		}
	}
	for _, sub := range []string{data.SubsetConsistent, data.SubsetVideoAligned, data.SubsetAudioAligned} {
		if count[sub] != 2 {
			t.Errorf("subset %s: %d samples, want 2 (%v)", sub, count[sub], count)
		}
	}
}
