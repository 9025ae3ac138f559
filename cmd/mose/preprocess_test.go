package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data/media"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/testfix"
)

// omniTinyWithTokenizer writes omni-tiny, which comes with a Qwen2-style
// tokenizer (special tokens at 500-509).
func omniTinyWithTokenizer(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "omni-tiny")
	if code, msg := runMose(t, "init-model", "--preset", "omni-tiny", "--out", dir); code != 0 {
		t.Fatalf("init-model: %s", msg)
	}
	return dir
}

// ffmpegGen makes a file with ffmpeg's generators, or skips without ffmpeg.
func ffmpegGen(t *testing.T, name string, args ...string) string {
	t.Helper()
	f, err := media.Locate(context.Background())
	if err != nil {
		t.Skipf("no ffmpeg (run scripts/setup/ffmpeg.sh): %v", err)
	}
	p := filepath.Join(t.TempDir(), name)
	args = append(append([]string{"-hide_banner", "-v", "error", "-y"}, args...), p)
	if out, err := exec.Command(f.Path, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v: %s", args, err, out)
	}
	return p
}

// TestPreprocess: a clip with its audio becomes a processor-outputs file that
// model-info runs the thinker on; every bad input exits 2 naming the file and
// writes nothing.
func TestPreprocess(t *testing.T) {
	clip := ffmpegGen(t, "clip.mkv", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10", "-f", "lavfi", "-i",
		"sine=frequency=440:sample_rate=22050", "-t", "2", "-c:v", "ffv1", "-c:a", "flac")
	silent := ffmpegGen(t, "silent.mkv", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10", "-t", "1", "-c:v", "ffv1")
	tone := ffmpegGen(t, "tone.flac", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "1")
	model := omniTinyWithTokenizer(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "sample.safetensors")
	if code, msg := runMose(t, "preprocess", "--model", model, "--out", out, "--video", clip, "--use-audio-in-video", "--subtitle", "how?"); code != 0 {
		t.Fatalf("preprocess: exit %d: %s", code, msg)
	}
	if code, msg := runMose(t, "model-info", "--model", model, "--inputs", out); code != 0 || !strings.Contains(msg, "top next tokens") {
		t.Fatalf("model-info --inputs on preprocess's output: exit %d: %s", code, msg)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	full, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, file string
		args       []string
		env        string
	}{
		{"zero length", write("empty.mp4", nil), []string{"--video"}, ""},
		{"not media", write("text.mp4", []byte(strings.Repeat("hello\n", 100))), []string{"--video"}, ""},
		{"truncated", write("cut.mkv", full[:len(full)/3]), []string{"--video"}, ""},
		{"no video stream", tone, []string{"--video"}, ""},
		{"no audio for use_audio_in_video", silent, []string{"--use-audio-in-video", "--video"}, ""},
		{"not an image", tone, []string{"--image"}, ""},
		{"beyond --max-seconds", clip, []string{"--max-seconds", "1", "--video"}, ""},
		{"beyond --max-frame-pixels", clip, []string{"--max-frame-pixels", "1000", "--video"}, ""},
		{"beyond --max-frames", clip, []string{"--max-frames", "2", "--video"}, ""},
		{"no ffmpeg", filepath.Join(dir, "no-ffmpeg"), []string{"--video", clip}, filepath.Join(dir, "no-ffmpeg")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv(media.EnvFFmpeg, c.env)
			}
			bad := filepath.Join(t.TempDir(), "bad.safetensors")
			args := append([]string{"preprocess", "--model", model, "--out", bad}, c.args...)
			if c.env == "" {
				args = append(args, c.file)
			}
			code, msg := runMose(t, args...)
			if code != 2 || !strings.Contains(msg, c.file) {
				t.Errorf("exit %d, %q: want exit 2 naming %s", code, msg, c.file)
			}
			if _, err := os.Stat(bad); !os.IsNotExist(err) {
				t.Errorf("%s written on a bad input (%v)", bad, err)
			}
		})
	}
}

// TestProcessorParity runs scripts/checks/check_processor.py: transformers'
// Qwen2_5OmniProcessor and mose preprocess on the same decoded frames and
// waveforms of eight synthetic cases (six clips; with and without
// use_audio_in_video; images; separate audio).
func TestProcessorParity(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ff, err := media.Locate(context.Background())
	if err != nil {
		t.Skipf("no ffmpeg (run scripts/setup/ffmpeg.sh): %v", err)
	}
	py := testfix.RefPython(t)
	if out, err := exec.Command(py, "-c", "import torchvision, transformers, tokenizers").CombinedOutput(); err != nil {
		t.Skipf("the reference python lacks torchvision/transformers/tokenizers (transformers' video processor imports torchvision): %v: %s", err, lastLine(string(out)))
	}
	bin := filepath.Join(t.TempDir(), "mose")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	code, out := runPython(t, py, "../../scripts/checks/check_processor.py", "--mose", bin, "--ffmpeg", ff.Path, "--work", t.TempDir())
	var summary []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "{") {
			summary = append(summary, l)
		}
	}
	t.Logf("%s", strings.Join(summary, "\n"))
	if code != 0 {
		t.Fatalf("check_processor.py: exit %d:\n%s", code, lastLines(out, 20))
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// A preprocessor_config.json in the model directory is applied, and a setting
// mose does not implement is refused by name (exit 2).
func TestPreprocessConfig(t *testing.T) {
	img := ffmpegGen(t, "img.png", "-f", "lavfi", "-i", "testsrc=size=200x150", "-frames:v", "1")
	model := omniTinyWithTokenizer(t)
	cfg := filepath.Join(model, "preprocessor_config.json")
	out := filepath.Join(t.TempDir(), "s.safetensors")
	if err := os.WriteFile(cfg, []byte(`{"min_pixels": 3136, "max_pixels": 3136, "processor_class": "Qwen2_5OmniProcessor"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, msg := runMose(t, "preprocess", "--model", model, "--out", out, "--image", img); code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	// 200x150 under max_pixels 3136 is 56x28 (smart_resize; 196x140 by default).
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := f.Read("image_grid_thw")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if grid, _ := safetensors.BytesToInt64s(raw); len(grid) != 3 || grid[1] != 2 || grid[2] != 4 {
		t.Errorf("image_grid_thw %v, want [1 2 4]: max_pixels not applied", grid)
	}
	if err := os.WriteFile(cfg, []byte(`{"do_center_crop": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, msg := runMose(t, "preprocess", "--model", model, "--out", out, "--image", img); code != 2 || !strings.Contains(msg, "do_center_crop") {
		t.Fatalf("unknown setting: exit %d: %s", code, msg)
	}
}
