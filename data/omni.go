package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mose-llm/mose/data/procout"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/strictjson"
	"github.com/mose-llm/mose/modality"
)

// Qwen2.5-Omni's thinker reads its media itself: a sample is a
// processor-outputs file (procout) holding the prompt's input_ids, the
// subtitle included, and the pixels and mel features its towers encode.
// Data for it (an omni dataset, OpenOmni) adds the answer to those ids,
// gives every token its modality from its id, and carries the media to the
// batch (Batch.Media).

// Default answer templates of an omni model: the assistant turn closed by
// <|im_end|>, as Qwen2.5-Omni's chat format closes it.
const (
	DefaultOmniAnswer       = "{label}<|im_end|>"
	DefaultOmniReasonAnswer = "{reason}<|im_end|>"
)

// OmniSpec is what data needs to know about a Qwen2.5-Omni thinker: the
// labels and the answer templates (its config.json's optional "mose"
// section; defaults: the nine CA-MER labels, DefaultOmniAnswer and
// DefaultOmniReasonAnswer), and, from the thinker's config (set by the
// caller), the media placeholder ids and the vocabulary size.
type OmniSpec struct {
	Labels []string   `json:"labels"`
	Prompt OmniPrompt `json:"prompt"`

	Tokens    OmniTokens `json:"-"`
	VocabSize int        `json:"-"`
}

// OmniPrompt is the answer templates of an omni model: the prompt itself is
// in each sample's processor-outputs file.
type OmniPrompt struct {
	Answer       string `json:"answer"`
	ReasonAnswer string `json:"reason_answer,omitempty"`
}

// OmniTokens are the placeholder ids whose tokens the towers' outputs replace.
type OmniTokens struct {
	Audio, Image, Video int64
}

// Modality is the modality id of token id (a real token): image and video
// placeholders are visual, audio placeholders audio, every other token text.
func (t OmniTokens) Modality(id int64) int8 {
	switch id {
	case t.Image, t.Video:
		return modality.Visual
	case t.Audio:
		return modality.Audio
	}
	return modality.Text
}

// Validate checks the labels and the answer templates.
func (s OmniSpec) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: mose.%s: %s", ErrSpec, field, fmt.Sprintf(format, args...))
	}
	return checkAnswers(s.Prompt.Answer, s.Prompt.ReasonAnswer, s.Labels, bad)
}

// DefaultOmniSpec is the spec of an omni model whose config.json has no
// "mose" section.
func DefaultOmniSpec() OmniSpec {
	return OmniSpec{Labels: slices.Clone(EmotionLabels), Prompt: OmniPrompt{Answer: DefaultOmniAnswer, ReasonAnswer: DefaultOmniReasonAnswer}}
}

// ReadOmniSpec reads the optional "mose" section of a Qwen2.5-Omni model's
// <modelDir>/config.json: {"labels": [...], "prompt": {"answer": ...,
// "reason_answer": ...}}, every key optional (DefaultOmniSpec fills the
// rest), any other key refused. Tokens and VocabSize are the caller's.
func ReadOmniSpec(modelDir string) (OmniSpec, error) {
	path := filepath.Join(modelDir, "config.json")
	b, err := fsutil.ReadRegularLimit(path, fsutil.MaxConfigSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return OmniSpec{}, fmt.Errorf("%w: %s", ErrMissingFile, path)
		}
		return OmniSpec{}, err
	}
	if err := strictjson.CheckKeys(b, path, strictjson.All); err != nil {
		return OmniSpec{}, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	var cfg struct {
		Mose json.RawMessage `json:"mose"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return OmniSpec{}, fmt.Errorf("%s: %w: %v", path, ErrSpec, err)
	}
	spec := DefaultOmniSpec()
	if len(cfg.Mose) > 0 && string(cfg.Mose) != "null" {
		var m struct {
			Labels []string        `json:"labels"`
			Merged json.RawMessage `json:"merged"` // a merged export's note (informational)
			Prompt *struct {
				Answer       *string `json:"answer"`
				ReasonAnswer *string `json:"reason_answer"`
			} `json:"prompt"`
		}
		dec := json.NewDecoder(bytes.NewReader(cfg.Mose))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return OmniSpec{}, fmt.Errorf("%s: %w: \"mose\" section (a Qwen2.5-Omni model's takes labels and prompt.answer, prompt.reason_answer): %v", path, ErrSpec, err)
		}
		if m.Labels != nil {
			spec.Labels = m.Labels
		}
		if m.Prompt != nil {
			if m.Prompt.Answer != nil {
				spec.Prompt.Answer = *m.Prompt.Answer
			}
			if m.Prompt.ReasonAnswer != nil {
				spec.Prompt.ReasonAnswer = *m.Prompt.ReasonAnswer
			}
		}
	}
	if err := spec.Validate(); err != nil {
		return OmniSpec{}, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

// parseOmniSample decodes one line of an omni manifest strictly: either
// the processor-outputs form ("inputs") or the media form ("video",
// "audio", "image", at least one, and an optional "subtitle"); mixing
// them is refused by name.
func parseOmniSample(line []byte) (Sample, error) {
	raw, s, err := decodeSampleLine(line)
	if err != nil {
		return s, err
	}
	_, hasInputs := raw["inputs"]
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		switch k {
		case "id", "subset", "label", "reason", "inputs", "meta":
		case "video", "audio", "image", "subtitle":
			if hasInputs {
				return s, fmt.Errorf("%w %q: a sample names either its processor-outputs file (\"inputs\") or its media (\"video\", \"audio\", \"image\", \"subtitle\"), not both", ErrUnknownField, k)
			}
		case "features":
			return s, fmt.Errorf("%w %q: a Qwen2.5-Omni model's sample names its media (\"video\", \"audio\", \"image\") or its processor-outputs file (\"inputs\", mose preprocess), not feature files", ErrUnknownField, k)
		default:
			return s, fmt.Errorf("%w %q", ErrUnknownField, k)
		}
	}
	for _, f := range []struct {
		key      string
		dst      *string
		required bool
	}{{"subset", &s.Subset, true}, {"label", &s.Label, true}, {"reason", &s.Reason, false}, {"inputs", &s.Inputs, hasInputs},
		{"video", &s.Video, false}, {"audio", &s.Audio, false}, {"image", &s.Image, false}, {"subtitle", &s.Subtitle, false}} {
		if err := raw.str(f.key, f.dst, f.required); err != nil {
			return s, err
		}
	}
	if hasInputs {
		if strings.TrimSpace(s.Inputs) == "" {
			return s, fmt.Errorf("%w %q (empty)", ErrMissingField, "inputs")
		}
		return s, raw.meta(&s)
	}
	if !s.HasMedia() {
		return s, fmt.Errorf("%w: \"inputs\" (a processor-outputs file) or at least one of \"video\", \"audio\", \"image\"", ErrMissingField)
	}
	for _, f := range []struct{ key, v string }{{"video", s.Video}, {"audio", s.Audio}, {"image", s.Image}} {
		if _, ok := raw[f.key]; ok && strings.TrimSpace(f.v) == "" {
			return s, fmt.Errorf("%w %q (empty)", ErrMissingField, f.key)
		}
	}
	return s, raw.meta(&s)
}

// HasMedia reports whether s is an omni media sample (a video, audio or
// image file rather than a processor-outputs file).
func (s Sample) HasMedia() bool { return s.Video != "" || s.Audio != "" || s.Image != "" }

// omniSample is an omni dataset's sample: its processor-outputs file,
// read without its media.
type omniSample struct {
	h   *procout.Header
	key string // content key (OmniKey)
}

// OmniKey is omni sample i's content key: a media sample's processor cache
// key, or the SHA-256 of its "inputs" file (with Options.ContentKeys; ""
// without).
func (d *Dataset) OmniKey(i int) string { return d.omni[i].key }

// samplePath is the file a sample's errors name: its processor-outputs
// file, or its first media file.
func (s *Sample) samplePath() string {
	for _, p := range []string{s.Inputs, s.Video, s.Audio, s.Image} {
		if p != "" {
			return p
		}
	}
	return ""
}

// OmniExample describes an omni example's media for the backbone's own
// checks: its processor-outputs file and what the prompt's placeholders
// must match.
type OmniExample struct {
	Path                       string
	ImageGridTHW, VideoGridTHW [][3]int64
	VideoSecondPerGrid         []float32
	AudioLens                  []int64
	UseAudioInVideo            bool
	PixelDim, VideoDim, Mel    int // columns of the pixels, mel bins (0: absent)
}

// OmniExample returns example i's media description (an omni dataset only).
func (d *Dataset) OmniExample(i int) OmniExample {
	h := d.omni[i].h
	e := OmniExample{Path: h.Path, ImageGridTHW: h.ImageGridTHW, VideoGridTHW: h.VideoGridTHW,
		VideoSecondPerGrid: h.VideoSecondPerGrid, AudioLens: h.AudioLens, UseAudioInVideo: h.UseAudioInVideo}
	if h.PixelShape != nil {
		e.PixelDim = int(h.PixelShape[1])
	}
	if h.VideoShape != nil {
		e.VideoDim = int(h.VideoShape[1])
	}
	if h.FeatureShape != nil {
		e.Mel = int(h.FeatureShape[1])
	}
	return e
}

// IsOmni reports whether d is an omni dataset (OpenOmni).
func (d *Dataset) IsOmni() bool { return d.omni != nil }

// OpenOmni reads an omni manifest (ManifestOptions.Omni) against spec:
// every sample's processor-outputs file is opened (header and ids; the
// media are read by the loader), must hold one row of real tokens only
// (attention_mask all ones), ids below spec.VocabSize, and fit opt.MaxLen
// with its longest answer (prompts are not truncated: their media would
// lose their placeholders); its answer is the label's (or the reason's)
// encoded with tok. Every token gets its modality from its id. Videos of
// samples that disagree on use_audio_in_video are refused (a batch takes
// one setting). All problems are reported together as a *Problems error.
func OpenOmni(manifest string, spec OmniSpec, tok Tokenizer, opt Options) (*Dataset, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, fmt.Errorf("data: OpenOmni: nil tokenizer")
	}
	enc := &Encoder{spec: Spec{Labels: spec.Labels, Prompt: Prompt{Answer: spec.Prompt.Answer, ReasonAnswer: spec.Prompt.ReasonAnswer}},
		tok: tok, maxLen: opt.MaxLen, padID: opt.PadID}
	for _, l := range spec.Labels {
		ids, err := tok.Encode(strings.ReplaceAll(spec.Prompt.Answer, "{label}", l))
		if err != nil {
			return nil, fmt.Errorf("encoding answer for label %q: %w", l, err)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("%w: answer for label %q encodes to no tokens", ErrSpec, l)
		}
		enc.labelAnswers = append(enc.labelAnswers, ids)
		enc.maxLabelAns = max(enc.maxLabelAns, len(ids))
	}
	ra := spec.Prompt.ReasonAnswer
	if ra == "" {
		ra = DefaultOmniReasonAnswer
	}
	enc.reasonPrefix, enc.reasonSuffix, _ = strings.Cut(ra, "{reason}")
	samples, err := ReadManifest(manifest, ManifestOptions{Labels: spec.Labels, Subsets: opt.Subsets, Omni: true})
	if err != nil {
		return nil, err
	}
	if opt.ShardWorld > 1 {
		var mine []Sample
		for i, s := range samples {
			if i%opt.ShardWorld == opt.ShardRank {
				mine = append(mine, s)
			}
		}
		samples = mine
	}
	rootDir := opt.Root
	if rootDir == "" {
		rootDir = filepath.Dir(manifest)
	}
	root, err := NewRoot(rootDir)
	if err != nil {
		return nil, err
	}
	d := &Dataset{Manifest: manifest, Samples: samples, enc: enc, root: root,
		omni: make([]omniSample, len(samples)), omniTokens: spec.Tokens}
	d.Examples = make([]Example, len(samples))
	d.paths = make([][]string, len(samples))
	var probs Problems
	made, err := d.prepareMedia(opt, &probs)
	if err != nil {
		return nil, err
	}
	audioInVideo := -1 // the first sample with a video: its use_audio_in_video
	for i := range samples {
		s := &samples[i]
		var path string
		var err error
		if s.HasMedia() {
			if made[i].Err != nil {
				continue // reported by prepareMedia
			}
			path, d.omni[i].key = made[i].Path, made[i].Key
		} else {
			path, err = root.Resolve(s.Inputs)
		}
		var h *procout.Header
		if err == nil {
			h, err = procout.Open(path)
		}
		var ex Example
		if err == nil {
			ex, err = d.encodeOmni(i, h, spec.VocabSize)
		}
		if err == nil && len(h.VideoGridTHW) > 0 {
			if audioInVideo < 0 {
				audioInVideo = i
			} else if first := d.omni[audioInVideo].h; first.UseAudioInVideo != h.UseAudioInVideo {
				err = fmt.Errorf("%w: use_audio_in_video is %v, but sample %q's (line %d) is %v: a manifest's videos take one setting",
					ErrSpec, h.UseAudioInVideo, samples[audioInVideo].ID, samples[audioInVideo].Line, first.UseAudioInVideo)
			}
		}
		if err != nil {
			probs.Add(&SampleError{File: manifest, Line: s.Line, ID: s.ID, Path: s.samplePath(), Err: err})
			continue
		}
		d.omni[i].h = h
		d.paths[i] = []string{path}
		d.Examples[i] = ex
	}
	if err := probs.Err(); err != nil {
		return nil, err
	}
	if opt.ContentKeys {
		if err := d.hashInputs(2); err != nil {
			return nil, err
		}
		d.mediaCached = opt.MediaCached
	}
	return d, nil
}

// encodeOmni makes sample i's example from its processor outputs: the
// prompt's ids, then the answer.
func (d *Dataset) encodeOmni(i int, h *procout.Header, vocab int) (Example, error) {
	s := d.Samples[i]
	e := d.enc
	ex := Example{Index: i, ID: s.ID, Subset: s.Subset, Label: e.spec.LabelIndex(s.Label)}
	if ex.Label < 0 {
		return ex, fmt.Errorf("%w %q", ErrUnknownLabel, s.Label)
	}
	if h.B != 1 {
		return ex, fmt.Errorf("%w: %s holds %d rows (input_ids %d×%d): one sample per file", ErrShape, procout.KeyInputIDs, h.B, h.B, h.T)
	}
	for t, m := range h.Mask {
		if m != 1 {
			return ex, fmt.Errorf("%w: %s: position %d is padding: a sample's file holds its real tokens only", ErrShape, procout.KeyAttentionMask, t)
		}
	}
	answer := e.labelAnswers[ex.Label]
	if s.Reason != "" {
		ids, err := e.encodeReason(s)
		if err != nil {
			return ex, err
		}
		answer = ids
	}
	reserve := max(len(answer), e.maxLabelAns)
	if e.maxLen > 0 && h.T+reserve > e.maxLen {
		return ex, fmt.Errorf("%w: %d prompt tokens (media placeholders included) and up to %d answer tokens, maximum data.max_len %d "+
			"(a processor-outputs prompt is not truncated: raise data.max_len, or preprocess shorter clips or fewer frames)", ErrTooLong, h.T, reserve, e.maxLen)
	}
	ids := make([]int32, 0, h.T+len(answer))
	for t, id := range h.IDs {
		if id < 0 || (vocab > 0 && id >= int64(vocab)) {
			return ex, fmt.Errorf("%w: %s[%d] = %d is outside the model's vocabulary [0, %d)", ErrShape, procout.KeyInputIDs, t, id, vocab)
		}
		ids = append(ids, int32(id))
	}
	ex.AnswerStart = len(ids)
	ex.IDs = append(ids, answer...)
	return ex, nil
}

// Media is a batch's processor outputs besides the tokens, for a backbone
// that runs its own encoders (an omni dataset's batches; nil otherwise).
// Each row's media follow the rows' order, as transformers' processor
// concatenates a batch's: images of row 0, then of row 1, and so on.
type Media struct {
	// Pixels is pixel_values (rows, PixelDim) of every image; nil without.
	Pixels       []float32
	PixelDim     int
	ImageGridTHW [][3]int64
	// Videos is pixel_values_videos (rows, VideoDim); nil without.
	Videos             []float32
	VideoDim           int
	VideoGridTHW       [][3]int64
	VideoSecondPerGrid []float32
	// Features is input_features (len(AudioLens), Mel, Frames) of every
	// audio, padded to the longest audio's frames; its mask is
	// feature_attention_mask (AudioLens[a] ones, then zeros).
	Features  []float32
	Mel       int
	Frames    int
	AudioLens []int64
	// UseAudioInVideo: the videos are interleaved with their own audio.
	UseAudioInVideo bool
	// Rows are each row's media counts and content key, in row order: the
	// media above are the rows' one after the other.
	Rows []MediaRow
	// Deferred: every row's tower outputs were cached (Options.MediaCached),
	// so the pixels and features were not read (Pixels, Videos, Features
	// nil; the grids and audio lengths are there); Row reads a row's.
	Deferred bool
}

// FeatureMask is feature_attention_mask (len(AudioLens), Frames).
func (m *Media) FeatureMask() []int64 {
	out := make([]int64, len(m.AudioLens)*m.Frames)
	for a, n := range m.AudioLens {
		for t := range n {
			out[a*m.Frames+int(t)] = 1
		}
	}
	return out
}

// omniBatch assembles an omni dataset's batch: the rows as Collate makes
// them (prompt ids from the files, answers), every real token's modality
// from its id, and the rows' media.
func (d *Dataset) omniBatch(idx []int, mode Mode) (*Batch, error) {
	exs := make([]*Example, len(idx))
	for k, i := range idx {
		if i < 0 || i >= len(d.Examples) {
			return nil, fmt.Errorf("data: Batch: sample index %d out of range [0, %d)", i, len(d.Examples))
		}
		exs[k] = &d.Examples[i]
	}
	b, err := d.enc.Collate(exs, mode, nil)
	if err != nil {
		return nil, err
	}
	for r := range b.B {
		for t := range b.Lengths[r] {
			p := r*b.T + t
			b.Modality[p] = d.omniTokens.Modality(b.IDs[p])
		}
	}
	m := &Media{}
	if d.mediaCached != nil {
		m.Deferred = true
		for r := range b.B {
			k := d.omni[b.Index[r]].key
			m.Deferred = m.Deferred && k != "" && d.mediaCached(k)
		}
	}
	if m.Deferred {
		for r := range b.B {
			i := b.Index[r]
			h := d.omni[i].h
			m.Rows = append(m.Rows, MediaRow{Key: d.omni[i].key, Images: len(h.ImageGridTHW), Videos: len(h.VideoGridTHW),
				Audios: len(h.AudioLens), load: func() (*Media, error) { return d.sampleMedia(i) }})
			m.addLayout(h)
		}
		b.Media = m
		return b, nil
	}
	media := map[int]*procout.Media{} // by dataset index: score rows share their example's
	for r := range b.B {
		i := b.Index[r]
		h := d.omni[i].h
		got, ok := media[i]
		if !ok {
			if got, err = h.Media(); err != nil {
				return nil, &SampleError{File: d.Manifest, Line: d.Samples[i].Line, ID: d.Samples[i].ID, Path: d.Samples[i].samplePath(), Err: err}
			}
			media[i] = got
		}
		m.Rows = append(m.Rows, MediaRow{Key: d.omni[i].key, Images: len(h.ImageGridTHW) * b2i(got.Pixels != nil),
			Videos: len(h.VideoGridTHW) * b2i(got.Videos != nil), Audios: len(h.AudioLens) * b2i(got.Features != nil),
			load: func() (*Media, error) { return d.sampleMedia(i) }})
		if err := m.add(h, got); err != nil {
			return nil, &SampleError{File: d.Manifest, Line: d.Samples[i].Line, ID: d.Samples[i].ID, Path: d.Samples[i].samplePath(), Err: err}
		}
	}
	m.pad()
	b.Media = m
	return b, nil
}

// add appends one row's media.
func (m *Media) add(h *procout.Header, got *procout.Media) error {
	if len(h.VideoGridTHW) > 0 {
		m.UseAudioInVideo = h.UseAudioInVideo
	}
	if got.Pixels != nil {
		if m.PixelDim != 0 && m.PixelDim != got.PixelDim {
			return fmt.Errorf("%w: %s has %d columns, another sample of the batch %d", ErrShape, procout.KeyPixelValues, got.PixelDim, m.PixelDim)
		}
		m.PixelDim = got.PixelDim
		m.Pixels = append(m.Pixels, got.Pixels...)
		m.ImageGridTHW = append(m.ImageGridTHW, h.ImageGridTHW...)
	}
	if got.Videos != nil {
		if m.VideoDim != 0 && m.VideoDim != got.VideoDim {
			return fmt.Errorf("%w: %s has %d columns, another sample of the batch %d", ErrShape, procout.KeyPixelValuesVideos, got.VideoDim, m.VideoDim)
		}
		m.VideoDim = got.VideoDim
		m.Videos = append(m.Videos, got.Videos...)
		m.VideoGridTHW = append(m.VideoGridTHW, h.VideoGridTHW...)
		m.VideoSecondPerGrid = append(m.VideoSecondPerGrid, h.VideoSecondPerGrid...)
	}
	if got.Features != nil {
		if m.Mel != 0 && m.Mel != got.Mel {
			return fmt.Errorf("%w: %s has %d mel bins, another sample of the batch %d", ErrShape, procout.KeyInputFeatures, got.Mel, m.Mel)
		}
		m.Mel = got.Mel
		m.Features = append(m.Features, got.Features...) // unpadded until pad
		m.AudioLens = append(m.AudioLens, h.AudioLens...)
	}
	return nil
}

// pad lays the audios out as (A, Mel, Frames), Frames the longest audio's.
func (m *Media) pad() {
	if len(m.AudioLens) == 0 {
		return
	}
	L := int64(0)
	for _, n := range m.AudioLens {
		L = max(L, n)
	}
	m.Frames = int(L)
	out := make([]float32, int64(len(m.AudioLens))*int64(m.Mel)*L)
	off := 0
	for a, n := range m.AudioLens {
		for b := range m.Mel {
			dst := (a*m.Mel + b) * m.Frames
			copy(out[dst:dst+int(n)], m.Features[off:off+int(n)])
			off += int(n)
		}
	}
	m.Features = out
}

// scanOmni reads every sample's media (checking them: finite values).
func (d *Dataset) scanOmni(workers int) error {
	errs := eachSample(len(d.Samples), workers, func(i int, _ *featureScratch) error {
		if _, err := d.omni[i].h.Media(); err != nil {
			return &SampleError{File: d.Manifest, Line: d.Samples[i].Line, ID: d.Samples[i].ID, Path: d.Samples[i].samplePath(), Err: err}
		}
		return nil
	})
	var p Problems
	for _, err := range errs {
		p.Add(err)
	}
	return p.Err()
}
