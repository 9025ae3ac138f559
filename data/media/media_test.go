package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mose-llm/mose/internal/inputerr"
)

// ffmpegOrSkip locates ffmpeg, or skips naming the setup script.
func ffmpegOrSkip(t *testing.T) *FFmpeg {
	t.Helper()
	f, err := Locate(context.Background())
	if err != nil {
		t.Skipf("no ffmpeg (run scripts/setup/ffmpeg.sh): %v", err)
	}
	return f
}

// gen makes a clip with ffmpeg's generators.
func gen(t *testing.T, f *FFmpeg, name string, args ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	args = append(append([]string{"-hide_banner", "-v", "error", "-y"}, args...), p)
	if out, err := exec.Command(f.Path, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v: %s", args, err, out)
	}
	return p
}

func av(t *testing.T, f *FFmpeg, size string, secs string) string {
	return gen(t, f, "av.mkv", "-f", "lavfi", "-i", "testsrc=size="+size+":rate=25", "-f", "lavfi", "-i",
		"sine=frequency=440:sample_rate=44100", "-t", secs, "-c:v", "ffv1", "-c:a", "flac")
}

func TestDecode(t *testing.T) {
	f := ffmpegOrSkip(t)
	p := av(t, f, "64x48", "3")
	v, err := f.DecodeVideo(context.Background(), p, 2, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Width != 64 || v.Height != 48 || len(v.Frames) != 6 || len(v.Frames[0]) != 64*48*3 {
		t.Errorf("video: %dx%d, %d frames of %d bytes; want 64x48, 6 frames of %d", v.Width, v.Height, len(v.Frames), len(v.Frames[0]), 64*48*3)
	}
	w, err := f.DecodeAudio(context.Background(), p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(w) < 47000 || len(w) > 49000 {
		t.Errorf("audio: %d samples, want about 48000 (3 s at 16 kHz)", len(w))
	}
}

func TestBadMedia(t *testing.T) {
	f := ffmpegOrSkip(t)
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := av(t, f, "64x48", "2")
	full, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	silent := gen(t, f, "silent.mkv", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-t", "1", "-c:v", "ffv1")
	audioOnly := gen(t, f, "tone.flac", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "1")
	video := func(lim Limits) func(string) error {
		return func(p string) error { _, err := f.DecodeVideo(ctx, p, 2, lim); return err }
	}
	audio := func(lim Limits) func(string) error {
		return func(p string) error { _, err := f.DecodeAudio(ctx, p, lim); return err }
	}
	cases := []struct {
		name, path string
		run        func(string) error
		want       string
	}{
		{"zero length", write("empty.mp4", nil), video(Limits{}), "zero length"},
		{"not media", write("notes.mp4", []byte(strings.Repeat("not a video at all\n", 50))), video(Limits{}), "not a media file"},
		{"truncated", write("cut.mkv", full[:len(full)/2]), video(Limits{}), ""},
		{"missing", filepath.Join(dir, "absent.mp4"), video(Limits{}), "absent.mp4"},
		{"no video stream", audioOnly, video(Limits{}), "no video stream"},
		{"no audio stream", silent, audio(Limits{}), "no audio stream"},
		{"too long", good, video(Limits{MaxSeconds: 1}), "beyond the limit"},
		{"audio too long", good, audio(Limits{MaxAudioSecs: 1}), "beyond the limit"},
		{"frames too large", good, video(Limits{MaxFramePixels: 1000}), "beyond the limit"},
		{"too many frames", good, video(Limits{MaxFrames: 2}), "more than 2 frames"},
		{"too many bytes", good, video(Limits{MaxVideoBytes: 64 * 48 * 3 * 3}), "more than 3 frames"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run(c.path)
			if err == nil {
				t.Fatalf("%s: no error", c.path)
			}
			if !errors.Is(err, inputerr.ErrInput) {
				t.Errorf("%v: not an input error", err)
			}
			if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q: want the file %s and %q", err, c.path, c.want)
			}
			if len(err.Error()) > 1200 {
				t.Errorf("error of %d bytes: ffmpeg's stderr is not summarised", len(err.Error()))
			}
		})
	}
	// The good file passes every check above with the default limits.
	if err := video(Limits{})(good); err != nil {
		t.Errorf("good clip: %v", err)
	}
}

func TestLocateNamesWhatWasTried(t *testing.T) {
	t.Setenv(EnvFFmpeg, filepath.Join(t.TempDir(), "no-ffmpeg"))
	_, err := Locate(context.Background())
	if !errors.Is(err, ErrNoFFmpeg) || !strings.Contains(err.Error(), "no-ffmpeg") || !strings.Contains(err.Error(), "scripts/setup/ffmpeg.sh") {
		t.Errorf("Locate with a bad %s: %v", EnvFFmpeg, err)
	}
	broken := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvFFmpeg, broken)
	if _, err := Locate(context.Background()); !errors.Is(err, ErrNoFFmpeg) || !strings.Contains(err.Error(), "failed") {
		t.Errorf("Locate with a broken ffmpeg: %v", err)
	}
}

// An audio file with cover art has no video stream for mose (the picture is an
// attached pic), but its audio decodes.
func TestCoverArtIsNotVideo(t *testing.T) {
	f := ffmpegOrSkip(t)
	png := gen(t, f, "cover.png", "-f", "lavfi", "-i", "testsrc=size=32x32", "-frames:v", "1")
	tone := gen(t, f, "tone.flac", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "1")
	withArt := gen(t, f, "art.flac", "-i", tone, "-i", png, "-map", "0:a", "-map", "1:v", "-c:a", "copy", "-c:v", "png",
		"-disposition:v", "attached_pic")
	in, err := f.Probe(context.Background(), withArt, Limits{})
	if err != nil || in.HasVideo || !in.HasAudio {
		t.Fatalf("probe of audio with cover art: %+v, %v; want audio, no video", in, err)
	}
	if _, err := f.DecodeVideo(context.Background(), withArt, 2, Limits{}); err == nil || !strings.Contains(err.Error(), "no video stream") {
		t.Errorf("DecodeVideo of audio with cover art: %v", err)
	}
}

// fakeFFmpeg writes a shell script that answers -version and the probe like
// ffmpeg (a 2x2 video), then runs body for a decode.
func fakeFFmpeg(t *testing.T, body string) *FFmpeg {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ffmpeg")
	script := `#!/bin/sh
case "$*" in
*-version*) echo "ffmpeg version fake"; exit 0 ;;
*pipe:1*) ` + body + ` ;;
*) echo "Input #0, matroska, from 'x':" >&2; echo "  Duration: 00:00:01.00, start: 0" >&2
   echo "  Stream #0:0: Video: rawvideo, rgb24, 2x2, 1 fps" >&2; exit 1 ;;
esac
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvFFmpeg, p)
	f, err := Locate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A hung ffmpeg is stopped at the deadline, and the error says who and why; a
// failing one's stderr is summarised, not dumped.
func TestDeadlineAndStderr(t *testing.T) {
	clip := filepath.Join(t.TempDir(), "clip.mkv")
	if err := os.WriteFile(clip, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := fakeFFmpeg(t, "exec sleep 30")
	_, err := f.DecodeVideo(context.Background(), clip, 2, Limits{Timeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "did not finish within 500ms") || !strings.Contains(err.Error(), f.Path) {
		t.Errorf("hung ffmpeg: %v", err)
	}
	f = fakeFFmpeg(t, `i=0; while [ $i -lt 2000 ]; do echo "error line $i: something is wrong with this stream" >&2; i=$((i+1)); done; exit 1`)
	_, err = f.DecodeVideo(context.Background(), clip, 2, Limits{})
	if err == nil || !errors.Is(err, inputerr.ErrInput) || !strings.Contains(err.Error(), "error line 1999") || len(err.Error()) > 700 {
		t.Errorf("failing ffmpeg (%d bytes of error): %v", len(fmt.Sprint(err)), err)
	}
}
