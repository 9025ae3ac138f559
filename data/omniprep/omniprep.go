// Package omniprep turns one sample's media files into Qwen2.5-Omni's
// processor outputs: FFmpeg decoding (package media) and the processor in Go
// (package omniproc), as `mose preprocess` runs them, and the data cache of
// those outputs (Cache: <cache_dir>/proc/<key>.safetensors, content
// addressed, verified on read) that an omni dataset with media samples reads.
package omniprep

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/cas"
	"github.com/mose-llm/mose/data/media"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/inputerr"
)

// Settings are the processing settings besides the model's: the video
// sampling rate, whether a video's own audio track is used, and the limits
// a file must stay within.
type Settings struct {
	FPS             float64
	UseAudioInVideo bool
	Limits          media.Limits
}

// Validate refuses an fps outside (0, 120] and non-positive limits.
func (s Settings) Validate() error {
	if !(s.FPS > 0 && s.FPS <= 120) {
		return inputerr.Mark(fmt.Errorf("fps %g, want (0, 120]", s.FPS))
	}
	l := s.Limits
	if l.MaxSeconds < 0 || l.MaxFrames < 0 || l.MaxFramePixels < 0 {
		return inputerr.Mark(fmt.Errorf("the media limits must be positive"))
	}
	return nil
}

// Prep is a model's processor: the tokenizer, the processor with the
// model's preprocessor_config.json applied, and the bytes that identify
// them in a cache key.
type Prep struct {
	Proc         *omniproc.Processor
	MaxPositions int // the model's positions: a longer prompt is refused

	tokHash     string
	configBytes []byte
}

// Load makes modelDir's processor: tokPath (default modelDir/tokenizer.json)
// whose special tokens must have the ids in special (the model's
// config.json's, by token string), and modelDir/preprocessor_config.json
// when there is one (a setting mose does not implement is refused by name;
// without one, Qwen2.5-Omni's released settings). maxPositions is the
// model's max_position_embeddings.
func Load(modelDir, tokPath string, special map[string]int, maxPositions int) (*Prep, error) {
	if tokPath == "" {
		tokPath = filepath.Join(modelDir, "tokenizer.json")
	}
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return nil, inputerr.Mark(err)
	}
	tokHash, err := cas.HashFile("tokenizer", tokPath)
	if err != nil {
		return nil, inputerr.Mark(fmt.Errorf("tokenizer: %w", err))
	}
	proc, err := omniproc.New(tok)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tokPath, err)
	}
	for s, id := range special {
		if got, _ := tok.TokenID(s); int(got) != id {
			return nil, inputerr.Mark(fmt.Errorf("%s: %s is id %d, the model's config.json says %d", tokPath, s, got, id))
		}
	}
	p := &Prep{Proc: proc, MaxPositions: maxPositions, tokHash: tokHash}
	ppc := filepath.Join(modelDir, "preprocessor_config.json")
	if b, err := fsutil.ReadRegularLimit(ppc, fsutil.MaxConfigSize); err == nil {
		if err := proc.ApplyConfig(ppc, b); err != nil {
			return nil, err
		}
		p.configBytes = b
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return p, nil
}

// Process decodes f's media with ff and runs the processor: what `mose
// preprocess` writes. A bad file is an input error naming it.
func (p *Prep) Process(ctx context.Context, ff *media.FFmpeg, f data.MediaFiles, s Settings) (*omniproc.Outputs, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if f.Video == "" && f.Audio == "" && f.Image == "" {
		return nil, inputerr.Mark(fmt.Errorf("no video, audio or image"))
	}
	smp := omniproc.Sample{Text: f.Subtitle, FPS: s.FPS}
	if f.Video != "" {
		v, err := ff.DecodeVideo(ctx, f.Video, s.FPS, s.Limits)
		if err != nil {
			return nil, err
		}
		smp.Video = &omniproc.Frames{Width: v.Width, Height: v.Height, Frames: v.Frames}
	}
	if f.Image != "" {
		v, err := ff.DecodeImage(ctx, f.Image, s.Limits)
		if err != nil {
			return nil, err
		}
		smp.Image = &omniproc.Frames{Width: v.Width, Height: v.Height, Frames: v.Frames}
	}
	audio := f.Audio
	if audio == "" && s.UseAudioInVideo && f.Video != "" {
		audio, smp.UseAudioInVideo = f.Video, true
	}
	if audio != "" {
		var err error
		if smp.Audio, err = ff.DecodeAudio(ctx, audio, s.Limits); err != nil {
			return nil, err
		}
	}
	out, err := p.Proc.Process(smp)
	if err != nil {
		return nil, err
	}
	if n := len(out.IDs); p.MaxPositions > 0 && n > p.MaxPositions {
		return nil, inputerr.Mark(fmt.Errorf("%d tokens, beyond the model's %d positions", n, p.MaxPositions))
	}
	return out, nil
}

// Key is the cache key of f's processor outputs under s: a SHA-256 over
// the media files' bytes, the subtitle, the settings that change the
// outputs (fps, use_audio_in_video; the limits only refuse), the
// processor's settings (min/max pixels and the rest, as applied from the
// model's preprocessor_config.json, whose bytes are hashed too) and the
// tokenizer.json bytes.
func (p *Prep) Key(f data.MediaFiles, s Settings) (string, error) {
	h := cas.NewHasher("omniprep.proc/v1")
	for _, m := range []struct{ label, path string }{{"video", f.Video}, {"audio", f.Audio}, {"image", f.Image}} {
		if m.path == "" {
			h.String(m.label, "")
			continue
		}
		if err := h.File(m.label, m.path); err != nil {
			return "", inputerr.Mark(err)
		}
	}
	h.String("subtitle", f.Subtitle)
	h.String("fps", fmt.Sprint(s.FPS))
	h.String("use_audio_in_video", fmt.Sprint(s.UseAudioInVideo && f.Audio == "" && f.Video != ""))
	pr := p.Proc
	h.String("processor", fmt.Sprintf("%+v|%+v|%+v|%q|%g|%g", pr.Audio, pr.Image, pr.Video, pr.System, pr.PositionPerSec, pr.SecsPerChunk))
	h.Bytes("preprocessor_config", p.configBytes)
	h.String("tokenizer", p.tokHash)
	return h.Sum(), nil
}
