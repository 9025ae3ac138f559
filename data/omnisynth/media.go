package omnisynth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/media"
	"github.com/mose-llm/mose/internal/fsutil"
)

// MediaPreset is the synth preset (synth.json's) of a set of raw clips and
// a media manifest (GenerateMedia).
const MediaPreset = "omni-tiny-media"

// GenerateMedia writes a set of raw synthetic clips into dir (which must
// not exist or be empty) with FFmpeg (required: the clips are the point):
// clips/<id>.mp4 (MPEG-4 video with an AAC audio track), train.jsonl and
// eval.jsonl (media manifests: id, subset, label, video, subtitle; the
// audio is the video's own track, data.use_audio_in_video) and synth.json.
// The three CA-MER subsets take turns (sample n is subset n mod 3, label
// n/3 mod labels: 27 samples give every label once in every subset): in a consistent clip the
// background colour and the tone give the same label; in a video-aligned
// one the colour gives the label and the tone another; in an audio-aligned
// one the tone gives the label and the colour another. The conflict cue is
// a bar across the top of the frame: white when the video tells the truth,
// black when the audio does, none when they agree. cfg.Samples are
// training samples; eval gets a quarter (at least 3).
func GenerateMedia(ctx context.Context, dir string, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return Result{}, fmt.Errorf("%s exists and is not empty", dir)
	}
	ff, err := media.Locate(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("synthetic clips need FFmpeg: %w", err)
	}
	tmp, err := stage(dir, "clips")
	defer os.RemoveAll(tmp)
	if err != nil {
		return Result{}, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d656469))
	subsets := []string{data.SubsetConsistent, data.SubsetVideoAligned, data.SubsetAudioAligned}
	question := fmt.Sprintf("How does the person in this clip feel? Answer with one of: %s.", strings.Join(cfg.Labels, ", "))
	evalN := max(cfg.Samples/4, 3)
	var sets [2][]mediaLine
	for i := range cfg.Samples + evalN {
		split, n := 0, i
		if i >= cfg.Samples {
			split, n = 1, i-cfg.Samples
		}
		subset := subsets[n%len(subsets)]
		k := (n / len(subsets)) % len(cfg.Labels)
		other := (k + 1 + rng.IntN(len(cfg.Labels)-1)) % len(cfg.Labels)
		vis, aud, cue := k, k, ""
		switch subset {
		case data.SubsetVideoAligned:
			aud, cue = other, "white"
		case data.SubsetAudioAligned:
			vis, cue = other, "black"
		}
		id := fmt.Sprintf("%s-%04d", [2]string{"train", "eval"}[split], n)
		rel := "clips/" + id + ".mp4"
		c := clip{label: vis, labels: len(cfg.Labels), seconds: cfg.Seconds, w: cfg.Width, h: cfg.Height, phase: rng.Float64()}
		tone := clip{label: aud, labels: len(cfg.Labels)}
		if err := c.render(ctx, ff, filepath.Join(tmp, filepath.FromSlash(rel)), tone.freq(), cue); err != nil {
			return Result{}, fmt.Errorf("clip %s: %w", id, err)
		}
		sets[split] = append(sets[split], mediaLine{ID: id, Subset: subset, Label: cfg.Labels[k], Video: rel, Subtitle: question})
	}
	for split, name := range []string{"train.jsonl", "eval.jsonl"} {
		if err := writeMediaManifest(filepath.Join(tmp, name), sets[split]); err != nil {
			return Result{}, err
		}
	}
	meta := Meta{Preset: MediaPreset, Samples: cfg.Samples, Seed: cfg.Seed, Seconds: cfg.Seconds, FPS: cfg.FPS, Media: MediaFFmpeg, FFmpeg: ff.Version}
	if err := fsutil.WriteJSON(filepath.Join(tmp, "synth.json"), meta); err != nil {
		return Result{}, err
	}
	os.Remove(dir) // an empty dir may stand in the way of the rename
	if err := os.Rename(tmp, dir); err != nil {
		return Result{}, err
	}
	return Result{Train: filepath.Join(dir, "train.jsonl"), Samples: cfg.Samples, Clips: true, FFmpeg: ff.Version}, nil
}

// mediaLine is one line of a media manifest.
type mediaLine struct {
	ID       string `json:"id"`
	Subset   string `json:"subset"`
	Label    string `json:"label"`
	Video    string `json:"video"`
	Subtitle string `json:"subtitle"`
}

// writeMediaManifest writes lines as a media manifest.
func writeMediaManifest(path string, lines []mediaLine) error {
	return fsutil.WriteFile(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	})
}

// render writes the clip to path as MP4 (MPEG-4 video, AAC audio: encoders
// every FFmpeg build has) with a tone of freq Hz and the conflict cue
// ("white", "black": a bar across the top; "": none).
func (c clip) render(ctx context.Context, ff *media.FFmpeg, path string, freq float64, cue string) error {
	col := c.rgb()
	size := fmt.Sprintf("%dx%d", c.w, c.h)
	secs := fmt.Sprintf("%g", c.seconds)
	video := fmt.Sprintf("color=c=0x%02x%02x%02x:s=%s:r=10:d=%s[bg];testsrc=s=%dx%d:r=10:d=%s[fg];[bg][fg]overlay=x='(W-w)*t/%s':y=%d",
		col[0], col[1], col[2], size, secs, c.w/3, c.h/3, secs, secs, c.h/3+int(c.phase*float64(c.h/3)))
	if cue != "" {
		video += fmt.Sprintf(",drawbox=x=0:y=0:w=%d:h=%d:color=%s:t=fill", c.w, c.h/6, cue)
	}
	args := []string{"-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", video,
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%.2f:sample_rate=16000:duration=%s", freq, secs),
		"-t", secs, "-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path}
	if out, err := exec.CommandContext(ctx, ff.Path, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ffmpeg %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
