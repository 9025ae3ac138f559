// Package omnisynth makes a small synthetic dataset for a Qwen2.5-Omni
// thinker: short clips whose audio tone and video colour give the label,
// each turned into a processor-outputs file (package procout's format) by
// the same decoding and processor as `mose preprocess`, and an omni
// manifest naming them.
//
// With FFmpeg, every clip is made by FFmpeg's generators (a colour video
// with a moving test pattern and a sine tone, FFV1 + FLAC in Matroska),
// then decoded with FFmpeg (package media) exactly as preprocess decodes a
// clip. Without FFmpeg the frames and the waveform are drawn in Go and go
// straight to the processor, and the result says so (Clips false): the
// caller must say loudly that the FFmpeg path was skipped.
//
// The files keep each audio's real mel frames only (input_features
// (1, 128, frames) with an all-ones feature_attention_mask) instead of the
// processor's 30000 padded frames: the audio tower never reads the padding,
// and the files are 15 MB smaller each.
package omnisynth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/media"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/fsutil"
)

// Config says what to make.
type Config struct {
	Samples int     // training samples (default 18)
	Seed    uint64  // default 1
	Seconds float64 // clip length (default 2)
	FPS     float64 // frames sampled per second (default 2, qwen-omni-utils')
	Width   int     // clip frame size (default 160×120)
	Height  int
	// Labels are the labels cycled through (default data.EmotionLabels).
	Labels []string
	// NoFFmpeg draws the media in Go even when FFmpeg is there (tests).
	NoFFmpeg bool
}

func (c Config) withDefaults() Config {
	if c.Samples <= 0 {
		c.Samples = 18
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Seconds <= 0 {
		c.Seconds = 2
	}
	if c.FPS <= 0 {
		c.FPS = 2
	}
	if c.Width <= 0 || c.Height <= 0 {
		c.Width, c.Height = 160, 120
	}
	if len(c.Labels) == 0 {
		c.Labels = data.EmotionLabels
	}
	return c
}

// Result is what Generate made.
type Result struct {
	Train   string // the manifest
	Samples int
	// Clips: the media went through FFmpeg clips (false: drawn in Go).
	Clips  bool
	FFmpeg string // the FFmpeg used, or why there was none
}

// Meta.Media values.
const (
	MediaFFmpeg = "ffmpeg clips"
	MediaDrawn  = "drawn in Go (no FFmpeg)"
)

// Meta is the dataset's synth.json.
type Meta struct {
	Preset  string  `json:"preset"`
	Samples int     `json:"samples"`
	Seed    uint64  `json:"seed"`
	Seconds float64 `json:"seconds"`
	FPS     float64 `json:"fps"`
	Media   string  `json:"media"` // "ffmpeg clips" or "drawn in Go (no FFmpeg)"
	FFmpeg  string  `json:"ffmpeg"`
}

// Generate writes the dataset into dir, which must not exist or be empty:
// inputs/<id>.safetensors, train.jsonl and synth.json. tok is the model's
// tokenizer (its special token ids are the model's). It writes into a
// temporary directory renamed to dir at the end.
func Generate(ctx context.Context, dir string, tok *tokenizer.Tokenizer, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return Result{}, fmt.Errorf("%s exists and is not empty", dir)
	}
	proc, err := omniproc.New(tok)
	if err != nil {
		return Result{}, err
	}
	res := Result{Samples: cfg.Samples}
	var ff *media.FFmpeg
	if cfg.NoFFmpeg {
		res.FFmpeg = "not used (NoFFmpeg)"
	} else if ff, err = media.Locate(ctx); err != nil {
		res.FFmpeg, ff, err = err.Error(), nil, nil
	} else {
		res.Clips, res.FFmpeg = true, ff.Version
	}
	tmp, err := stage(dir, "inputs")
	defer os.RemoveAll(tmp)
	if err != nil {
		return Result{}, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6f6d6e69))
	var samples []data.Sample
	for i := range cfg.Samples {
		k := i % len(cfg.Labels)
		id := fmt.Sprintf("omni-%04d", i)
		s := clip{label: k, labels: len(cfg.Labels), seconds: cfg.Seconds, w: cfg.Width, h: cfg.Height,
			phase: rng.Float64(), noise: rng.Uint64()}
		var smp omniproc.Sample
		if ff != nil {
			smp, err = s.viaFFmpeg(ctx, ff, filepath.Join(tmp, "clip.mkv"), cfg.FPS)
		} else {
			smp = s.drawn(cfg.FPS)
		}
		if err != nil {
			return Result{}, fmt.Errorf("sample %s: %w", id, err)
		}
		smp.Text = fmt.Sprintf("How does the person in this clip feel? Answer with one of: %s.", strings.Join(cfg.Labels, ", "))
		smp.UseAudioInVideo = true
		out, err := proc.Process(smp)
		if err != nil {
			return Result{}, fmt.Errorf("sample %s: %w", id, err)
		}
		out.TrimAudio()
		rel := "inputs/" + id + ".safetensors"
		if err := out.WriteFile(filepath.Join(tmp, filepath.FromSlash(rel))); err != nil {
			return Result{}, err
		}
		samples = append(samples, data.Sample{ID: id, Subset: data.SubsetConsistent, Label: cfg.Labels[k], Inputs: rel})
	}
	os.Remove(filepath.Join(tmp, "clip.mkv"))
	if err := writeManifest(filepath.Join(tmp, "train.jsonl"), samples); err != nil {
		return Result{}, err
	}
	meta := Meta{Preset: "omni-tiny", Samples: cfg.Samples, Seed: cfg.Seed, Seconds: cfg.Seconds, FPS: cfg.FPS,
		Media: MediaFFmpeg, FFmpeg: res.FFmpeg}
	if !res.Clips {
		meta.Media = MediaDrawn
	}
	if err := fsutil.WriteJSON(filepath.Join(tmp, "synth.json"), meta); err != nil {
		return Result{}, err
	}
	os.Remove(dir) // an empty dir may stand in the way of the rename
	if err := os.Rename(tmp, dir); err != nil {
		return Result{}, err
	}
	res.Train = filepath.Join(dir, "train.jsonl")
	return res, nil
}

// writeManifest writes an omni manifest: id, subset, label, inputs.
func writeManifest(path string, samples []data.Sample) error {
	return fsutil.WriteFile(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, s := range samples {
			line := struct {
				ID     string `json:"id"`
				Subset string `json:"subset"`
				Label  string `json:"label"`
				Inputs string `json:"inputs"`
			}{s.ID, s.Subset, s.Label, s.Inputs}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
		return nil
	})
}

// clip is one synthetic clip: its label sets the tone's pitch and the
// background's hue; phase and noise vary it.
type clip struct {
	label, labels int
	seconds       float64
	w, h          int
	phase         float64
	noise         uint64
}

// freq is the tone of the clip's label: a semitone scale from 220 Hz.
func (c clip) freq() float64 { return 220 * math.Pow(2, float64(2*c.label)/12) }

// rgb is the background colour of the clip's label.
func (c clip) rgb() [3]byte {
	hue := float64(c.label) / float64(c.labels)
	f := func(n float64) byte {
		k := math.Mod(n+hue*6, 6)
		v := 1 - math.Max(0, math.Min(math.Min(k, 4-k), 1))
		return byte(40 + 180*v)
	}
	return [3]byte{f(5), f(3), f(1)}
}

// viaFFmpeg makes the clip with FFmpeg's generators and decodes it as
// preprocess does.
func (c clip) viaFFmpeg(ctx context.Context, ff *media.FFmpeg, path string, fps float64) (omniproc.Sample, error) {
	col := c.rgb()
	size := fmt.Sprintf("%dx%d", c.w, c.h)
	secs := fmt.Sprintf("%g", c.seconds)
	video := fmt.Sprintf("color=c=0x%02x%02x%02x:s=%s:r=10:d=%s[bg];testsrc=s=%dx%d:r=10:d=%s[fg];[bg][fg]overlay=x='(W-w)*t/%s':y=%d",
		col[0], col[1], col[2], size, secs, c.w/3, c.h/3, secs, secs, int(c.phase*float64(c.h*2/3)))
	args := []string{"-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", video,
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%.2f:sample_rate=16000:duration=%s", c.freq(), secs),
		"-t", secs, "-c:v", "ffv1", "-c:a", "flac", path}
	if out, err := exec.CommandContext(ctx, ff.Path, args...).CombinedOutput(); err != nil {
		return omniproc.Sample{}, fmt.Errorf("ffmpeg %s: %v: %s", strings.Join(args, " "), err, out)
	}
	v, err := ff.DecodeVideo(ctx, path, fps, media.DefaultLimits)
	if err != nil {
		return omniproc.Sample{}, err
	}
	a, err := ff.DecodeAudio(ctx, path, media.DefaultLimits)
	if err != nil {
		return omniproc.Sample{}, err
	}
	return omniproc.Sample{Video: &omniproc.Frames{Width: v.Width, Height: v.Height, Frames: v.Frames}, FPS: fps, Audio: a}, nil
}

// drawn draws the clip in Go: frames at fps of the background colour with
// a moving square, and a 16 kHz tone with a little noise.
func (c clip) drawn(fps float64) omniproc.Sample {
	n := max(int(math.Round(c.seconds*fps)), 1)
	col := c.rgb()
	rng := rand.New(rand.NewPCG(c.noise, 7))
	frames := make([][]byte, n)
	side := c.h / 3
	for f := range frames {
		px := make([]byte, 3*c.w*c.h)
		x0 := int(float64(c.w-side) * float64(f) / float64(n))
		y0 := int(c.phase * float64(c.h-side))
		for y := range c.h {
			for x := range c.w {
				p := 3 * (y*c.w + x)
				v := col
				if x >= x0 && x < x0+side && y >= y0 && y < y0+side {
					v = [3]byte{byte(255 * x / c.w), byte(255 * y / c.h), 128}
				}
				copy(px[p:p+3], v[:])
			}
		}
		frames[f] = px
	}
	wave := make([]float32, int(c.seconds*16000))
	for i := range wave {
		t := float64(i) / 16000
		wave[i] = float32(0.5*math.Sin(2*math.Pi*c.freq()*t) + 0.01*(rng.Float64()*2-1))
	}
	return omniproc.Sample{Video: &omniproc.Frames{Width: c.w, Height: c.h, Frames: frames}, FPS: fps, Audio: wave}
}

// stage makes the temporary sibling of dir (one a crashed run left is
// removed first), with its subdirectory sub, where a set is written before
// it is renamed into place; the caller removes it.
func stage(dir, sub string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return "", err
	}
	tmp := filepath.Clean(dir) + fmt.Sprintf(".tmp-%d", os.Getpid())
	os.RemoveAll(tmp)
	return tmp, os.MkdirAll(filepath.Join(tmp, sub), 0o755)
}
