package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mose-llm/mose/internal/inputerr"
)

// ErrNoFFmpeg is returned when no working ffmpeg is found; its message names every
// place that was tried.
var ErrNoFFmpeg = inputerr.New("no working ffmpeg")

// EnvFFmpeg names an ffmpeg binary to use before any other.
const EnvFFmpeg = "MOSE_FFMPEG"

// CachedFFmpeg is where scripts/setup/ffmpeg.sh puts the static build:
// ${MOSE_CACHE:-~/.cache/mose}/ffmpeg/ffmpeg.
func CachedFFmpeg() string {
	cache := os.Getenv("MOSE_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(home, ".cache", "mose")
	}
	return filepath.Join(cache, "ffmpeg", "ffmpeg")
}

// FFmpeg is a located, working ffmpeg binary.
type FFmpeg struct {
	Path    string // the binary
	Version string // the first line of `ffmpeg -version`
}

// Locate finds a working ffmpeg: $MOSE_FFMPEG when set (and then only it), else the
// ffmpeg on PATH, else the cached static build. Each candidate must run
// `ffmpeg -version` within a few seconds. The error names what was tried and why
// each failed, and how to fix it.
func Locate(ctx context.Context) (*FFmpeg, error) {
	var cands []string
	if p := os.Getenv(EnvFFmpeg); p != "" {
		cands = []string{p}
	} else {
		if p, err := exec.LookPath("ffmpeg"); err == nil {
			cands = append(cands, p)
		} else {
			cands = append(cands, "ffmpeg on PATH")
		}
		if c := CachedFFmpeg(); c != "" {
			cands = append(cands, c)
		}
	}
	var tried []string
	for _, c := range cands {
		if c == "ffmpeg on PATH" {
			tried = append(tried, "ffmpeg on PATH: not found")
			continue
		}
		v, err := version(ctx, c)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", c, err))
			continue
		}
		return &FFmpeg{Path: c, Version: v}, nil
	}
	return nil, fmt.Errorf("%w: tried %s; fix: install ffmpeg, run scripts/setup/ffmpeg.sh (make setup) or set %s",
		ErrNoFFmpeg, strings.Join(tried, "; "), EnvFFmpeg)
}

// version runs `ffmpeg -version` under a 20 s deadline.
func version(ctx context.Context, path string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", errors.New("not found")
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-hide_banner", "-version").Output()
	if ctx.Err() != nil {
		return "", fmt.Errorf("`ffmpeg -version` did not answer within 20 s")
	}
	if err != nil {
		return "", fmt.Errorf("`ffmpeg -version` failed: %v", err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if !strings.HasPrefix(first, "ffmpeg version") {
		return "", fmt.Errorf("`-version` printed %q, not an ffmpeg", tail(first, 80))
	}
	return first, nil
}

// tail keeps the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// summarise keeps the last few non-empty lines of ffmpeg's stderr, at most 400 bytes.
func summarise(stderr string) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return tail(strings.Join(lines, " | "), 400)
}
