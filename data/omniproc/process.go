package omniproc

import (
	"fmt"
	"strings"

	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
)

// Processor is Qwen2.5-Omni's processor: a tokenizer (with Qwen2.5-Omni's special
// tokens) and the feature extractor, image and video settings.
type Processor struct {
	Tok            *tokenizer.Tokenizer
	Audio          Whisper
	Image, Video   Vision
	System         string  // the system prompt
	PositionPerSec float64 // position_id_per_seconds (25)
	SecsPerChunk   float64 // seconds_per_chunk (2)
}

// New returns Qwen2.5-Omni's processor around tok, which must hold every special
// token the prompt uses (the error names the missing ones).
func New(tok *tokenizer.Tokenizer) (*Processor, error) {
	var missing []string
	for _, s := range []string{TokAudio, TokImage, TokVideo, TokAudioBOS, TokAudioEOS, TokVisionBOS, TokVisionEOS, TokIMStart, TokIMEnd} {
		if _, ok := tok.TokenID(s); !ok {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return nil, inputerr.Mark(fmt.Errorf("tokenizer: no %s: not a Qwen2.5-Omni tokenizer", strings.Join(missing, ", ")))
	}
	return &Processor{Tok: tok, Audio: OmniWhisper, Image: OmniImage, Video: OmniVideo, System: SystemPrompt,
		PositionPerSec: 25, SecsPerChunk: 2}, nil
}

// Frames is decoded RGB24 frames of one size.
type Frames struct {
	Width, Height int
	Frames        [][]byte
}

// Sample is one sample's decoded media and text. Audio is a 16 kHz mono waveform:
// a separate audio, or the video's own track when UseAudioInVideo.
type Sample struct {
	Video           *Frames
	FPS             float64 // the rate Video was sampled at
	Image           *Frames
	Audio           []float32
	UseAudioInVideo bool
	Text            string
}

// Outputs are one sample's processor outputs.
type Outputs struct {
	IDs                []int64
	Video, Image       *Patches
	SecondPerGrid      float32   // video_second_per_grid: temporal patch / fps
	Features           []float32 // input_features (1, Bins, Frames) or nil
	FeatureMask        []int64   // feature_attention_mask (1, Frames)
	Bins, Frames       int
	UseAudioInVideo    bool
	AudioTokens        int
	VideoTok, ImageTok int
}

// Process runs the processor on one sample.
func (p *Processor) Process(s Sample) (*Outputs, error) {
	o := &Outputs{UseAudioInVideo: s.UseAudioInVideo}
	if s.UseAudioInVideo && (s.Video == nil || s.Audio == nil) {
		return nil, inputerr.Mark(fmt.Errorf("use_audio_in_video needs a video and its audio track"))
	}
	if s.Audio != nil {
		feats, mask, err := p.Audio.LogMel(s.Audio)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, m := range mask {
			n += int(m)
		}
		o.Features, o.FeatureMask, o.Bins, o.Frames = feats, mask, p.Audio.Bins, p.Audio.Frames()
		o.AudioTokens = AudioTokens(n)
	}
	if s.Image != nil {
		pt, err := p.Image.Preprocess(s.Image.Frames, s.Image.Height, s.Image.Width)
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		o.Image, o.ImageTok = pt, p.Image.Tokens(pt.Grid)
	}
	text := Prompt(p.System, s.Video != nil, s.Image != nil, s.Audio != nil && !s.UseAudioInVideo, s.Text)
	if s.Video != nil {
		if !(s.FPS > 0) {
			return nil, inputerr.Mark(fmt.Errorf("video: fps %g", s.FPS))
		}
		pt, err := p.Video.Preprocess(s.Video.Frames, s.Video.Height, s.Video.Width)
		if err != nil {
			return nil, fmt.Errorf("video: %w", err)
		}
		o.Video, o.VideoTok = pt, p.Video.Tokens(pt.Grid)
		o.SecondPerGrid = float32(float64(p.Video.TemporalPatch) / s.FPS)
		rep := strings.Repeat(TokVideo, o.VideoTok)
		if s.UseAudioInVideo {
			rep = interleaved(pt.Grid, p.Video.Merge, float64(p.Video.TemporalPatch)/s.FPS, o.AudioTokens, p.PositionPerSec, p.SecsPerChunk)
		}
		text = strings.Replace(text, TokVideo, rep, 1)
	}
	if o.Image != nil {
		text = strings.Replace(text, TokImage, strings.Repeat(TokImage, o.ImageTok), 1)
	}
	if s.Audio != nil && !s.UseAudioInVideo {
		text = strings.Replace(text, TokAudio, strings.Repeat(TokAudio, o.AudioTokens), 1)
	}
	ids, err := p.Tok.EncodeWithSpecial(text)
	if err != nil {
		return nil, inputerr.Mark(fmt.Errorf("text: %w", err))
	}
	o.IDs = make([]int64, len(ids))
	for i, id := range ids {
		o.IDs[i] = int64(id)
	}
	return o, nil
}

// Tensors returns the outputs under transformers' names (model/omni's ReadBatch
// reads them), batch size 1, and the file's metadata.
func (o *Outputs) Tensors() ([]safetensors.Tensor, map[string]string) {
	n := int64(len(o.IDs))
	ones := make([]int64, n)
	for i := range ones {
		ones[i] = 1
	}
	ts := []safetensors.Tensor{
		{Name: "input_ids", DType: safetensors.I64, Shape: []int64{1, n}, Data: safetensors.Int64sToBytes(o.IDs)},
		{Name: "attention_mask", DType: safetensors.I64, Shape: []int64{1, n}, Data: safetensors.Int64sToBytes(ones)},
	}
	patches := func(pix, grid string, pt *Patches) {
		cols := int64(len(pt.Values) / pt.Rows)
		ts = append(ts, safetensors.Tensor{Name: pix, DType: safetensors.F32, Shape: []int64{int64(pt.Rows), cols}, Data: safetensors.Float32sToBytes(pt.Values)},
			safetensors.Tensor{Name: grid, DType: safetensors.I64, Shape: []int64{1, 3}, Data: safetensors.Int64sToBytes(pt.Grid[:])})
	}
	if o.Video != nil {
		patches("pixel_values_videos", "video_grid_thw", o.Video)
		ts = append(ts, safetensors.Tensor{Name: "video_second_per_grid", DType: safetensors.F32, Shape: []int64{1},
			Data: safetensors.Float32sToBytes([]float32{o.SecondPerGrid})})
	}
	if o.Image != nil {
		patches("pixel_values", "image_grid_thw", o.Image)
	}
	if o.Features != nil {
		ts = append(ts, safetensors.Tensor{Name: "input_features", DType: safetensors.F32, Shape: []int64{1, int64(o.Bins), int64(o.Frames)},
			Data: safetensors.Float32sToBytes(o.Features)},
			safetensors.Tensor{Name: "feature_attention_mask", DType: safetensors.I64, Shape: []int64{1, int64(o.Frames)},
				Data: safetensors.Int64sToBytes(o.FeatureMask)})
	}
	meta := map[string]string{"use_audio_in_video": fmt.Sprint(o.UseAudioInVideo)}
	return ts, meta
}

// WriteFile writes the outputs to path atomically (nothing is left on failure).
func (o *Outputs) WriteFile(path string) error {
	ts, meta := o.Tensors()
	return safetensors.WriteFile(path, ts, meta)
}

// TrimAudio keeps the real mel frames of the padded features (input_features
// (1, Bins, n) with an all-ones mask of n): the audio tower never reads the
// padding, and the file is smaller (by 15 MB for a 30 s pad).
func (o *Outputs) TrimAudio() {
	if o.Features == nil {
		return
	}
	n := 0
	for _, m := range o.FeatureMask {
		n += int(m)
	}
	f := make([]float32, 0, o.Bins*n)
	for b := range o.Bins {
		f = append(f, o.Features[b*o.Frames:b*o.Frames+n]...)
	}
	o.Features, o.Frames = f, n
	o.FeatureMask = o.FeatureMask[:n]
}
