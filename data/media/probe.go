package media

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mose-llm/mose/internal/inputerr"
)

// Limits bound what a file may hold before anything is allocated for it. The zero
// value of a field means its default (DefaultLimits).
type Limits struct {
	MaxSeconds     float64       // the longest video or audio, in seconds (default 600)
	MaxAudioSecs   float64       // the longest audio given to Whisper, in seconds (default 300, its 30000 frames)
	MaxFramePixels int           // width × height of a frame (default 3840×2160)
	MaxFrames      int           // frames sampled from one video (default 768, qwen-omni-utils' cap)
	MaxVideoBytes  int64         // frames × width × height × 3 (default 2 GiB)
	Timeout        time.Duration // one ffmpeg run (default 10 min)
}

// DefaultLimits are the limits used for a zero field.
var DefaultLimits = Limits{MaxSeconds: 600, MaxAudioSecs: 300, MaxFramePixels: 3840 * 2160, MaxFrames: 768,
	MaxVideoBytes: 2 << 30, Timeout: 10 * time.Minute}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxSeconds > 0 {
		d.MaxSeconds = l.MaxSeconds
	}
	if l.MaxAudioSecs > 0 {
		d.MaxAudioSecs = l.MaxAudioSecs
	}
	if l.MaxFramePixels > 0 {
		d.MaxFramePixels = l.MaxFramePixels
	}
	if l.MaxFrames > 0 {
		d.MaxFrames = l.MaxFrames
	}
	if l.MaxVideoBytes > 0 {
		d.MaxVideoBytes = l.MaxVideoBytes
	}
	if l.Timeout > 0 {
		d.Timeout = l.Timeout
	}
	return d
}

// Info is what `ffmpeg -i` says about a file's first video and audio streams.
type Info struct {
	Duration      float64 // seconds; 0 when ffmpeg gives none (an image)
	Width, Height int     // of the first video stream; 0 without one
	HasVideo      bool
	HasAudio      bool
}

// probeRes are the patterns of `ffmpeg -i`'s stream report, compiled once
// (an error is returned, never a panic).
type probeRes struct{ duration, video, audio *regexp.Regexp }

var compileProbeRes = sync.OnceValues(func() (probeRes, error) {
	var r probeRes
	var err error
	if r.duration, err = regexp.Compile(`Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)`); err != nil {
		return r, err
	}
	if r.video, err = regexp.Compile(`Stream #\d+:\d+.*?: Video: .*?(?:, |\) )(\d{1,6})x(\d{1,6})[ ,]`); err != nil {
		return r, err
	}
	r.audio, err = regexp.Compile(`Stream #\d+:\d+.*?: Audio: `)
	return r, err
})

// bad wraps an input error naming the file.
func bad(path, format string, args ...any) error {
	return inputerr.Mark(fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// Probe reads a file's streams with `ffmpeg -i`. A missing or empty file, a file
// ffmpeg cannot open as media, and a duration beyond the limits are input errors
// naming the file.
func (f *FFmpeg) Probe(ctx context.Context, path string, lim Limits) (Info, error) {
	lim = lim.withDefaults()
	st, err := os.Stat(path)
	if err != nil {
		return Info{}, inputerr.Mark(fmt.Errorf("media: %w", err))
	}
	if st.IsDir() {
		return Info{}, bad(path, "a directory, not a media file")
	}
	if st.Size() == 0 {
		return Info{}, bad(path, "zero length, not a media file")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stderr capped
	cmd := exec.CommandContext(ctx, f.Path, "-hide_banner", "-nostdin", "-i", path)
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	_ = cmd.Run() // ffmpeg -i without an output always exits 1
	if ctx.Err() != nil {
		return Info{}, fmt.Errorf("media: %s: ffmpeg (%s) did not probe it within 1 min", path, f.Path)
	}
	out := stderr.String()
	if !strings.Contains(out, "Input #0") {
		return Info{}, bad(path, "not a media file ffmpeg can read (ffmpeg: %s)", summarise(out))
	}
	res, err := compileProbeRes()
	if err != nil {
		return Info{}, err
	}
	var in Info
	if m := res.duration.FindStringSubmatch(out); m != nil {
		h, _ := strconv.Atoi(m[1])
		mi, _ := strconv.Atoi(m[2])
		s, _ := strconv.ParseFloat(m[3], 64)
		in.Duration = float64(h*3600+mi*60) + s
	}
	for _, line := range strings.Split(out, "\n") {
		// Cover art (an attached picture) is not a video: ffmpeg's 0:V skips it too.
		if m := res.video.FindStringSubmatch(line); m != nil && !in.HasVideo && !strings.Contains(line, "(attached pic)") {
			in.HasVideo = true
			in.Width, _ = strconv.Atoi(m[1])
			in.Height, _ = strconv.Atoi(m[2])
		}
		if res.audio.MatchString(line) {
			in.HasAudio = true
		}
	}
	if !in.HasVideo && !in.HasAudio {
		return Info{}, bad(path, "no video or audio stream")
	}
	if in.Duration > lim.MaxSeconds {
		return Info{}, bad(path, "%.1f s long, beyond the limit of %.0f s", in.Duration, lim.MaxSeconds)
	}
	if in.HasVideo {
		if in.Width <= 0 || in.Height <= 0 {
			return Info{}, bad(path, "video stream of size %dx%d", in.Width, in.Height)
		}
		if int64(in.Width)*int64(in.Height) > int64(lim.MaxFramePixels) {
			return Info{}, bad(path, "video frames of %dx%d, beyond the limit of %d pixels", in.Width, in.Height, lim.MaxFramePixels)
		}
	}
	return in, nil
}

// capped is a writer that keeps the last 64 KiB written to it (ffmpeg's stderr).
type capped struct{ b []byte }

const capBytes = 64 << 10

func (c *capped) Write(p []byte) (int, error) {
	c.b = append(c.b, p...)
	if len(c.b) > capBytes {
		c.b = append(c.b[:0], c.b[len(c.b)-capBytes:]...)
	}
	return len(p), nil
}

func (c *capped) String() string { return string(bytes.ToValidUTF8(c.b, []byte("?"))) }
