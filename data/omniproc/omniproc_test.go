package omniproc

import (
	"errors"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/inputerr"
)

// The sizes below are smart_resize's in transformers 5.25 (printed by it).
func TestSmartResize(t *testing.T) {
	cases := []struct {
		v            Vision
		h, w, wh, ww int
	}{
		{OmniVideo, 120, 160, 280, 392}, // scaled up to min_pixels
		{OmniVideo, 252, 448, 252, 448}, // already fits
		{OmniVideo, 720, 1280, 560, 1008},
		{OmniImage, 211, 333, 224, 336},
		{OmniImage, 42, 42, 56, 56},   // 1.5 rounds half to even: 2·28, not 28
		{OmniImage, 70, 70, 56, 56},   // 2.5 → 2
		{OmniImage, 98, 98, 112, 112}, // 3.5 → 4
	}
	for _, c := range cases {
		h, w, err := c.v.SmartResize(c.h, c.w)
		if err != nil || h != c.wh || w != c.ww {
			t.Errorf("SmartResize(%d, %d) = %d, %d, %v; want %d, %d", c.h, c.w, h, w, err, c.wh, c.ww)
		}
	}
	if _, _, err := OmniImage.SmartResize(10, 2100); !errors.Is(err, inputerr.ErrInput) {
		t.Errorf("aspect ratio 210: %v", err)
	}
	small := OmniVideo
	small.MaxValues = 3 * 280 * 392 * 2
	frames := [][]byte{make([]byte, 120*160*3), make([]byte, 120*160*3)}
	if _, err := small.Preprocess(frames, 120, 160); err != nil {
		t.Errorf("two frames within the bound: %v", err)
	}
	if _, err := small.Preprocess(append(frames, frames[0]), 120, 160); !errors.Is(err, inputerr.ErrInput) || !strings.Contains(err.Error(), "beyond the bound") {
		t.Errorf("three frames (four after padding) beyond the bound: %v", err)
	}
}

func TestAudioTokensAndChunks(t *testing.T) {
	for _, c := range [][2]int{{100, 25}, {300, 75}, {1, 0}, {4, 1}, {5, 1}} {
		if got := AudioTokens(c[0]); got != c[1] {
			t.Errorf("AudioTokens(%d) = %d, want %d", c[0], got, c[1])
		}
	}
	got := chunks([]float64{0, 0, 25, 25, 50, 50, 75}, 50)
	if want := []int{4, 3}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("chunks = %v, want %v", got, want)
	}
	if got := chunks(nil, 50); len(got) != 1 || got[0] != 0 {
		t.Errorf("chunks(empty) = %v, want [0]", got)
	}
}

func TestResizeIdentityAndFilters(t *testing.T) {
	src := make([]byte, 6*8*3)
	for i := range src {
		src[i] = byte(i * 37)
	}
	if got := ResizeRGB(src, 6, 8, 6, 8, Torch); string(got) != string(src) {
		t.Error("same size: not a copy")
	}
	// Upscaling a constant image keeps it constant under both filters.
	flat := []byte(strings.Repeat("\x80\x10\xf0", 4*4))
	for _, f := range []Filter{Pillow, Torch} {
		for i, b := range ResizeRGB(flat, 4, 4, 9, 7, f) {
			if b != flat[i%3] {
				t.Fatalf("filter %d: value %d at %d of a flat image", f, b, i)
			}
		}
	}
}

func TestProcessPlaceholders(t *testing.T) {
	tok, err := tokenizer.Load("omni-tiny-tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(tok)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 56*56*3)
	wave := make([]float32, 16000*3) // 3 s: 300 mel frames, 75 audio tokens
	for i := range wave {
		wave[i] = float32(i%40) / 40
	}
	s := Sample{Video: &Frames{Width: 56, Height: 56, Frames: [][]byte{frame, frame, frame, frame, frame, frame}},
		FPS: 2, Audio: wave, UseAudioInVideo: true, Text: "hi"}
	o, err := p.Process(s)
	if err != nil {
		t.Fatal(err)
	}
	count := func(ids []int64, id int64) int {
		n := 0
		for _, x := range ids {
			if x == id {
				n++
			}
		}
		return n
	}
	// 6 frames of 56x56 scaled to 336x336 (min_pixels 100352): grid (3, 24, 24), 144 tokens per grid.
	if o.Video.Grid != [3]int64{3, 24, 24} || count(o.IDs, 502) != 432 || count(o.IDs, 500) != 75 || o.AudioTokens != 75 {
		t.Errorf("grid %v, %d video and %d audio tokens; want (3,24,24), 432, 75", o.Video.Grid, count(o.IDs, 502), count(o.IDs, 500))
	}
	// Interleaved in 2 s chunks: 2 grids of video, 50 audio, 1 grid, 25 audio.
	var runs []int
	for i, x := range o.IDs {
		if (x == 500 || x == 502) && (i == 0 || o.IDs[i-1] != x) {
			runs = append(runs, int(x))
		}
	}
	if len(runs) != 4 || runs[0] != 502 || runs[1] != 500 || runs[2] != 502 || runs[3] != 500 {
		t.Errorf("runs of placeholders %v, want video, audio, video, audio", runs)
	}
	s.UseAudioInVideo, s.Video = true, nil
	if _, err := p.Process(s); !errors.Is(err, inputerr.ErrInput) {
		t.Errorf("use_audio_in_video without a video: %v", err)
	}
}
