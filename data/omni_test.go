package data_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/omnisynth"
	"github.com/mose-llm/mose/data/procout"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/modality"
)

// omniSet makes a small omni set drawn in Go (no FFmpeg) and omni-tiny's
// spec (placeholders at 500-502, vocabulary 512).
func omniSet(t *testing.T) (string, data.OmniSpec, *tokenizer.Tokenizer) {
	t.Helper()
	tok, err := tokenizer.Parse(omniproc.TinyTokenizerJSON)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "set")
	res, err := omnisynth.Generate(context.Background(), dir, tok, omnisynth.Config{Samples: 3, Seconds: 1, NoFFmpeg: true})
	if err != nil {
		t.Fatal(err)
	}
	spec := data.DefaultOmniSpec()
	spec.Tokens, spec.VocabSize = data.OmniTokens{Audio: 500, Image: 501, Video: 502}, 512
	return res.Train, spec, tok
}

// An omni set's batches carry the prompt from the files, the answer, each
// token's modality from its id and the rows' media, audio trimmed to its
// real frames.
func TestOmniBatch(t *testing.T) {
	train, spec, tok := omniSet(t)
	ds, err := data.OpenOmni(train, spec, tok, data.Options{MaxLen: 1024, PadID: 509})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ds.Batch([]int{0, 2}, data.ModeTrain, nil)
	if err != nil {
		t.Fatal(err)
	}
	count := map[int8]int{}
	for _, m := range b.Modality {
		count[m]++
	}
	m := b.Media
	if m == nil || len(m.VideoGridTHW) != 2 || len(m.AudioLens) != 2 || !m.UseAudioInVideo {
		t.Fatalf("media %+v", m)
	}
	var vis int64
	for _, g := range m.VideoGridTHW {
		vis += g[0] * g[1] * g[2] / 4
	}
	if int64(count[modality.Visual]) != vis || count[modality.Audio] != 2*25 {
		t.Errorf("modality counts %v, want %d visual and 50 audio", count, vis)
	}
	if len(m.Features) != 2*m.Mel*m.Frames || len(m.Videos) != int(vis*4)*m.VideoDim {
		t.Errorf("media sizes: %d features for (2,%d,%d), %d video values", len(m.Features), m.Mel, m.Frames, len(m.Videos))
	}
	if b.AnswerTokens == 0 || b.Examples != 2 {
		t.Errorf("answer tokens %d, examples %d", b.AnswerTokens, b.Examples)
	}
}

// Bad omni manifests and files are refused by name.
func TestOmniRefusals(t *testing.T) {
	train, spec, tok := omniSet(t)
	dir := filepath.Dir(train)
	n := 0
	line := func(s string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("m%d.jsonl", n))
		os.WriteFile(p, []byte(s+"\n"), 0o644)
		return p
	}
	f0 := "inputs/omni-0000.safetensors"
	// A file of two rows.
	two := filepath.Join(dir, "two.safetensors")
	h, err := procout.Open(filepath.Join(dir, f0))
	if err != nil {
		t.Fatal(err)
	}
	ids := append(append([]int64{}, h.IDs...), h.IDs...)
	safetensors.WriteFile(two, []safetensors.Tensor{{Name: "input_ids", DType: safetensors.I64, Shape: []int64{2, int64(h.T)}, Data: safetensors.Int64sToBytes(ids)}}, nil)
	for _, c := range []struct {
		name, manifest string
		maxLen         int
		want           string
		sentinel       error
	}{
		{"features", line(`{"id":"a","subset":"consistent","label":"happy","inputs":"` + f0 + `","features":{"x":"y"}}`), 0, `"features"`, data.ErrUnknownField},
		{"subtitle", line(`{"id":"a","subset":"consistent","label":"happy","inputs":"` + f0 + `","subtitle":"hi"}`), 0, `"subtitle"`, data.ErrUnknownField},
		{"no inputs", line(`{"id":"a","subset":"consistent","label":"happy"}`), 0, `"inputs"`, data.ErrMissingField},
		{"missing file", line(`{"id":"a","subset":"consistent","label":"happy","inputs":"nope.safetensors"}`), 0, "nope.safetensors", data.ErrMissingFile},
		{"escapes root", line(`{"id":"a","subset":"consistent","label":"happy","inputs":"../x.safetensors"}`), 0, "x.safetensors", data.ErrEscapesRoot},
		{"too long", line(`{"id":"a","subset":"consistent","label":"happy","inputs":"` + f0 + `"}`), 100, "data.max_len", data.ErrTooLong},
		{"two rows", line(`{"id":"a","subset":"consistent","label":"happy","inputs":"two.safetensors"}`), 0, "one sample per file", data.ErrShape},
		{"unknown label", line(`{"id":"a","subset":"consistent","label":"bored","inputs":"` + f0 + `"}`), 0, "bored", data.ErrUnknownLabel},
		// The media form.
		{"inputs and video", line(`{"id":"a","subset":"consistent","label":"happy","inputs":"` + f0 + `","video":"a.mp4"}`), 0, `"video"`, data.ErrUnknownField},
		{"empty video", line(`{"id":"a","subset":"consistent","label":"happy","video":" "}`), 0, `"video"`, data.ErrMissingField},
		{"video not a string", line(`{"id":"a","subset":"consistent","label":"happy","video":1}`), 0, `"video"`, data.ErrMalformed},
		{"subtitle alone", line(`{"id":"a","subset":"consistent","label":"happy","subtitle":"hi"}`), 0, `"video"`, data.ErrMissingField},
		{"video escapes root", line(`{"id":"a","subset":"consistent","label":"happy","video":"../a.mp4"}`), 0, "a.mp4", data.ErrEscapesRoot},
		{"missing video", line(`{"id":"a","subset":"consistent","label":"happy","audio":"nope.wav"}`), 0, "nope.wav", data.ErrMissingFile},
		{"media without a processor", line(`{"id":"a","subset":"consistent","label":"happy","image":"` + f0 + `"}`), 0, "processor", data.ErrSpec},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := data.OpenOmni(c.manifest, spec, tok, data.Options{MaxLen: c.maxLen, PadID: 509})
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.sentinel) {
				t.Fatalf("err = %v, want %v naming %s", err, c.sentinel, c.want)
			}
		})
	}
	// A NaN pixel is found by the scan (and by the loader), naming the tensor.
	bad := filepath.Join(dir, "inputs", "omni-0001.safetensors")
	f, _ := safetensors.Open(bad)
	info, _ := f.Info(procout.KeyPixelValuesVideos)
	f.Close()
	raw, _ := os.ReadFile(bad)
	copy(raw[info.Offset:], []byte{0, 0, 0xc0, 0x7f})
	os.WriteFile(bad, raw, 0o644)
	ds, err := data.OpenOmni(train, spec, tok, data.Options{PadID: 509})
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.ScanFeatures(1); err == nil || !strings.Contains(err.Error(), procout.KeyPixelValuesVideos) || !errors.Is(err, procout.ErrInputs) {
		t.Fatalf("scan: %v", err)
	}
}

// The "mose" section of an omni config.json sets the labels and answers;
// unknown keys are refused.
func TestReadOmniSpec(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) { os.WriteFile(filepath.Join(dir, "config.json"), []byte(s), 0o644) }
	write(`{"model_type":"qwen2_5_omni_thinker"}`)
	if s, err := data.ReadOmniSpec(dir); err != nil || s.Prompt.Answer != data.DefaultOmniAnswer || len(s.Labels) != 9 {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	write(`{"model_type":"qwen2_5_omni_thinker","mose":{"labels":["pos","neg"],"prompt":{"answer":"{label}!"},"merged":{"rank":4}}}`)
	if s, err := data.ReadOmniSpec(dir); err != nil || s.Prompt.Answer != "{label}!" || len(s.Labels) != 2 {
		t.Fatalf("section: %+v %v", s, err)
	}
	write(`{"model_type":"qwen2_5_omni_thinker","mose":{"template":"x"}}`)
	if _, err := data.ReadOmniSpec(dir); err == nil || !strings.Contains(err.Error(), "template") {
		t.Fatalf("unknown key: %v", err)
	}
	write(`{"model_type":"qwen2_5_omni_thinker","mose":{"prompt":{"answer":"no label"}}}`)
	if _, err := data.ReadOmniSpec(dir); err == nil || !errors.Is(err, data.ErrSpec) {
		t.Fatalf("answer without {label}: %v", err)
	}
}
