package omniproc

import (
	"errors"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data/tokenizer"
)

// released is Qwen2.5-Omni's preprocessor_config.json as published.
const released = `{"chunk_length": 300, "dither": 0.0, "feature_extractor_type": "WhisperFeatureExtractor",
 "feature_size": 128, "hop_length": 160, "image_mean": [0.48145466, 0.4578275, 0.40821073],
 "image_processor_type": "Qwen2VLImageProcessor", "image_std": [0.26862954, 0.26130258, 0.27577711],
 "max_pixels": 12845056, "merge_size": 2, "min_pixels": 3136, "n_fft": 400, "n_samples": 4800000,
 "nb_max_frames": 30000, "padding_side": "right", "padding_value": 0.0, "patch_size": 14,
 "processor_class": "Qwen2_5OmniProcessor", "return_attention_mask": true, "sampling_rate": 16000,
 "temporal_patch_size": 2}`

func testProcessor(t *testing.T) *Processor {
	tok, err := tokenizer.Load("omni-tiny-tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(tok)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestApplyConfig(t *testing.T) {
	p := testProcessor(t)
	if err := p.ApplyConfig("released", []byte(released)); err != nil {
		t.Fatal(err)
	}
	if p.Audio != OmniWhisper || p.Image != OmniImage || p.Video != OmniVideo {
		t.Errorf("the released config changes the settings: %+v %+v %+v", p.Audio, p.Image, p.Video)
	}
	p = testProcessor(t)
	if err := p.ApplyConfig("small", []byte(`{"min_pixels": 100, "max_pixels": 5000, "chunk_length": 30, "patch_size": 16}`)); err != nil {
		t.Fatal(err)
	}
	if p.Image.MinPixels != 100 || p.Image.MaxPixels != 5000 || p.Audio.ChunkSecs != 30 || p.Video.Patch != 16 || p.Video.MinPixels != OmniVideo.MinPixels {
		t.Errorf("settings not applied: %+v %+v %+v", p.Audio, p.Image, p.Video)
	}
	cases := []struct{ json, key string }{
		{`{"sampling_rate": 22050}`, "sampling_rate"},
		{`{"do_normalize": false}`, "do_normalize"},
		{`{"resample": 2}`, "resample"},
		{`{"dither": 0.1}`, "dither"},
		{`{"padding_side": "left"}`, "padding_side"},
		{`{"rescale_factor": 0.5}`, "rescale_factor"},
		{`{"crop_size": 224}`, "crop_size"},
		{`{"feature_size": 100000}`, "feature_size"},
		{`{"image_std": [1, 0, 1]}`, "image_std"},
		{`{"min_pixels": 5000, "max_pixels": 100}`, "min_pixels"},
		{`{"size": {"shortest_edge": 10, "longest_edge": 20, "height": 3}}`, "size.height"},
		{`{"min_pixels": 3136, "size": {"shortest_edge": 10}}`, "size.shortest_edge"},
		{`{"chunk_length": 30, "n_samples": 4800000}`, "n_samples"},
		{`{"do_sample_frames": true}`, "do_sample_frames"},
		{`[1]`, "cannot unmarshal"},
	}
	for _, c := range cases {
		p := testProcessor(t)
		err := p.ApplyConfig("cfg.json", []byte(c.json))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), "cfg.json") {
			t.Errorf("%s: %v, want a refusal naming %s and the file", c.json, err, c.key)
		}
	}
}
