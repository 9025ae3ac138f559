package media

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/mose-llm/mose/internal/inputerr"
)

// SampleRate is the audio rate of Decode's waveforms (Whisper's, 16 kHz).
const SampleRate = 16000

// Video is a video's frames sampled at FPS, each Height×Width×3 RGB24 bytes, rows
// top to bottom.
type Video struct {
	Width, Height int
	FPS           float64
	Frames        [][]byte
}

// DecodeVideo samples a file's first video stream at fps frames per second (ffmpeg's
// fps filter) as RGB24 frames at the stream's own size (no autorotation). More
// frames than lim.MaxFrames, or more bytes than lim.MaxVideoBytes, a partial frame
// and decoding errors are input errors naming the file.
func (f *FFmpeg) DecodeVideo(ctx context.Context, path string, fps float64, lim Limits) (*Video, error) {
	lim = lim.withDefaults()
	if !(fps > 0 && fps <= 120) {
		return nil, inputerr.Mark(fmt.Errorf("media: fps %g, want a rate in (0, 120]", fps))
	}
	in, err := f.Probe(ctx, path, lim)
	if err != nil {
		return nil, err
	}
	if !in.HasVideo {
		return nil, bad(path, "no video stream")
	}
	frame := in.Width * in.Height * 3
	maxFrames := lim.MaxFrames
	if byBytes := lim.MaxVideoBytes / int64(frame); byBytes < int64(maxFrames) {
		maxFrames = int(byBytes)
	}
	v := &Video{Width: in.Width, Height: in.Height, FPS: fps}
	args := []string{"-map", "0:V:0", "-vf", "fps=" + strconv.FormatFloat(fps, 'g', -1, 64), "-f", "rawvideo", "-pix_fmt", "rgb24"}
	err = f.run(ctx, path, args, lim, func(r io.Reader) error {
		for {
			buf := make([]byte, frame)
			n, err := io.ReadFull(r, buf)
			if n == 0 && errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return bad(path, "truncated: a partial frame of %d of %d bytes", n, frame)
			}
			if len(v.Frames) == maxFrames {
				return bad(path, "more than %d frames at %g fps (limits: %d frames, %d bytes of %dx%d frames)",
					maxFrames, fps, lim.MaxFrames, lim.MaxVideoBytes, in.Width, in.Height)
			}
			v.Frames = append(v.Frames, buf)
		}
	})
	if err != nil {
		return nil, err
	}
	if len(v.Frames) == 0 {
		return nil, bad(path, "no frames decoded from its video stream")
	}
	return v, nil
}

// DecodeImage decodes the first frame of an image (or video) file as RGB24.
func (f *FFmpeg) DecodeImage(ctx context.Context, path string, lim Limits) (*Video, error) {
	lim = lim.withDefaults()
	in, err := f.Probe(ctx, path, lim)
	if err != nil {
		return nil, err
	}
	if !in.HasVideo {
		return nil, bad(path, "no image in it")
	}
	frame := in.Width * in.Height * 3
	v := &Video{Width: in.Width, Height: in.Height}
	err = f.run(ctx, path, []string{"-map", "0:V:0", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24"}, lim, func(r io.Reader) error {
		buf := make([]byte, frame)
		if n, err := io.ReadFull(r, buf); err != nil {
			return bad(path, "truncated: %d of %d bytes of its image", n, frame)
		}
		v.Frames = [][]byte{buf}
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// DecodeAudio decodes a file's first audio stream as 16 kHz mono float32 (ffmpeg's
// resampler and downmix). A file without audio, or longer than lim.MaxAudioSecs, is
// an input error naming the file.
func (f *FFmpeg) DecodeAudio(ctx context.Context, path string, lim Limits) ([]float32, error) {
	lim = lim.withDefaults()
	in, err := f.Probe(ctx, path, lim)
	if err != nil {
		return nil, err
	}
	if !in.HasAudio {
		return nil, bad(path, "no audio stream")
	}
	if in.Duration > lim.MaxAudioSecs {
		return nil, bad(path, "audio of %.1f s, beyond the limit of %.0f s", in.Duration, lim.MaxAudioSecs)
	}
	maxSamples := int(lim.MaxAudioSecs * SampleRate)
	var wave []float32
	args := []string{"-map", "0:a:0", "-ac", "1", "-ar", strconv.Itoa(SampleRate), "-f", "f32le"}
	err = f.run(ctx, path, args, lim, func(r io.Reader) error {
		buf := make([]byte, 64<<10)
		var rest []byte
		for {
			n, err := r.Read(buf)
			rest = append(rest, buf[:n]...)
			k := len(rest) / 4
			if len(wave)+k > maxSamples {
				return bad(path, "more than %.0f s of audio", lim.MaxAudioSecs)
			}
			for i := 0; i < k; i++ {
				wave = append(wave, math.Float32frombits(binary.LittleEndian.Uint32(rest[4*i:])))
			}
			rest = rest[4*k:]
			if errors.Is(err, io.EOF) {
				if len(rest) != 0 {
					return bad(path, "truncated audio: %d stray bytes", len(rest))
				}
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if len(wave) == 0 {
		return nil, bad(path, "no audio samples decoded")
	}
	for i, x := range wave {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, bad(path, "audio sample %d is %v", i, x)
		}
	}
	return wave, nil
}

// run runs ffmpeg on path with the output args (to stdout), handing stdout to read;
// it waits at most lim.Timeout. A failure of ffmpeg, or error lines on its stderr
// (it runs at -v error), make an input error naming the file with stderr's tail.
func (f *FFmpeg) run(ctx context.Context, path string, out []string, lim Limits, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	args := append([]string{"-hide_banner", "-nostdin", "-v", "error", "-noautorotate", "-i", path}, out...)
	args = append(args, "pipe:1")
	cmd := exec.CommandContext(ctx, f.Path, args...)
	cmd.WaitDelay = 5 * time.Second // pipes held open by a killed ffmpeg's children
	var stderr capped
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("media: starting ffmpeg (%s): %w", f.Path, err)
	}
	rerr := read(stdout)
	if rerr != nil {
		cancel() // stop ffmpeg: its output is refused
		_, _ = io.Copy(io.Discard, stdout)
	}
	werr := cmd.Wait()
	if rerr != nil {
		return rerr
	}
	if ctx.Err() != nil {
		return fmt.Errorf("media: %s: ffmpeg (%s) did not finish within %s", path, f.Path, lim.Timeout)
	}
	if werr != nil {
		return bad(path, "ffmpeg failed (%v): %s", werr, summarise(stderr.String()))
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		return bad(path, "decoding errors, truncated or corrupt? (ffmpeg: %s)", summarise(s))
	}
	return nil
}
