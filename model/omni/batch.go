package omni

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

// Batch is one batch of transformers' processor outputs: the token layout
// (Inputs) and the media the towers read.
type Batch struct {
	Inputs       *Inputs
	Audio        AudioFeatures // Features nil without audio
	Pixels       *torch.Tensor // pixel_values (N, C·tp·p·p), or nil
	PixelsVideos *torch.Tensor // pixel_values_videos, or nil
}

// The tensor names of a processor-outputs file, as transformers' processor
// names them (other tools write these files: keep the names).
const (
	KeyInputIDs             = "input_ids"
	KeyAttentionMask        = "attention_mask"
	KeyPixelValues          = "pixel_values"
	KeyImageGridTHW         = "image_grid_thw"
	KeyPixelValuesVideos    = "pixel_values_videos"
	KeyVideoGridTHW         = "video_grid_thw"
	KeyVideoSecondPerGrid   = "video_second_per_grid"
	KeyInputFeatures        = "input_features"
	KeyFeatureAttentionMask = "feature_attention_mask"
	// MetaUseAudioInVideo is the metadata key of use_audio_in_video,
	// "true" or "false" (absent: false).
	MetaUseAudioInVideo = "use_audio_in_video"
)

// MaxBatchTokens bounds input_ids (B·T) of a processor-outputs file.
const MaxBatchTokens = 1 << 24

var batchKeys = []string{KeyInputIDs, KeyAttentionMask, KeyPixelValues, KeyImageGridTHW, KeyPixelValuesVideos,
	KeyVideoGridTHW, KeyVideoSecondPerGrid, KeyInputFeatures, KeyFeatureAttentionMask}

// ReadBatch reads a processor-outputs safetensors file into s. Every tensor
// must be one of the processor's names with its dtype and rank; a name
// mose does not know, a missing input_ids, a grid without its pixels (or
// the reverse) and sizes beyond the bounds are refused, naming the file
// and the tensor. The towers check the pixels and features against the
// config.
func ReadBatch(s *torch.Scope, path string) (*Batch, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInputs, err)
	}
	defer f.Close()
	bad := func(name, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s: %s", ErrInputs, path, name, fmt.Sprintf(format, args...))
	}
	infos := map[string]safetensors.TensorInfo{}
	for _, info := range f.Tensors() {
		if !slices.Contains(batchKeys, info.Name) {
			return nil, bad(info.Name, "not a processor output mose reads (want %s)", strings.Join(batchKeys, ", "))
		}
		infos[info.Name] = info
	}
	var metaKeys []string
	for k := range f.Metadata() {
		metaKeys = append(metaKeys, k)
	}
	sort.Strings(metaKeys)
	b := &Batch{Inputs: &Inputs{}}
	for _, k := range metaKeys {
		v := f.Metadata()[k]
		switch k {
		case "format":
		case MetaUseAudioInVideo:
			if v != "true" && v != "false" {
				return nil, bad("metadata "+k, "%q, want \"true\" or \"false\"", v)
			}
			b.Inputs.UseAudioInVideo = v == "true"
		default:
			return nil, bad("metadata "+k, "not a key mose reads (want %s)", MetaUseAudioInVideo)
		}
	}
	ints := func(name string, rank int) ([]int64, []int64, error) {
		info, ok := infos[name]
		if !ok {
			return nil, nil, nil
		}
		if info.DType != safetensors.I64 || len(info.Shape) != rank {
			return nil, nil, bad(name, "%s %v, want I64 of rank %d", info.DType, info.Shape, rank)
		}
		if n := info.NumElements(); n > MaxBatchTokens {
			return nil, nil, bad(name, "%d values, beyond mose's bound %d", n, MaxBatchTokens)
		}
		raw, err := f.Read(name)
		if err != nil {
			return nil, nil, err
		}
		v, err := safetensors.BytesToInt64s(raw)
		return v, info.Shape, err
	}
	in := b.Inputs
	ids, sh, err := ints(KeyInputIDs, 2)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		return nil, bad(KeyInputIDs, "missing")
	}
	in.IDs, in.B, in.T = ids, int(sh[0]), int(sh[1])
	if in.Mask, sh, err = ints(KeyAttentionMask, 2); err != nil {
		return nil, err
	} else if in.Mask != nil && (sh[0] != int64(in.B) || sh[1] != int64(in.T)) {
		return nil, bad(KeyAttentionMask, "shape %v, input_ids is (%d,%d)", sh, in.B, in.T)
	}
	grids := func(name string) ([][3]int64, error) {
		v, sh, err := ints(name, 2)
		if err != nil || v == nil {
			return nil, err
		}
		if sh[1] != 3 {
			return nil, bad(name, "shape %v, want (n,3)", sh)
		}
		out := make([][3]int64, sh[0])
		for i := range out {
			out[i] = [3]int64{v[3*i], v[3*i+1], v[3*i+2]}
		}
		return out, nil
	}
	if in.ImageGridTHW, err = grids(KeyImageGridTHW); err != nil {
		return nil, err
	}
	if in.VideoGridTHW, err = grids(KeyVideoGridTHW); err != nil {
		return nil, err
	}
	if info, ok := infos[KeyVideoSecondPerGrid]; ok {
		if len(info.Shape) != 1 || info.Shape[0] != int64(len(in.VideoGridTHW)) {
			return nil, bad(KeyVideoSecondPerGrid, "shape %v for %d videos", info.Shape, len(in.VideoGridTHW))
		}
		raw, err := f.Read(KeyVideoSecondPerGrid)
		if err != nil {
			return nil, err
		}
		v := make([]float32, info.Shape[0])
		if !slices.Contains(append(floatDTypes, safetensors.F64), info.DType) {
			return nil, bad(KeyVideoSecondPerGrid, "dtype %s, want a float", info.DType)
		}
		if err := safetensors.DecodeFloat32s(v, raw, info.DType); err != nil {
			return nil, bad(KeyVideoSecondPerGrid, "%v", err)
		}
		in.VideoSecondPerGrid = v
	}
	r := ckpt.NewReader(f)
	floats := func(name string, rank int) (*torch.Tensor, error) {
		info, ok := infos[name]
		if !ok {
			return nil, nil
		}
		if !slices.Contains(floatDTypes, info.DType) || len(info.Shape) != rank {
			return nil, bad(name, "%s %v, want a float tensor of rank %d", info.DType, info.Shape, rank)
		}
		// A scope of its own, so that a bad tensor fails this read, not s.
		own := torch.NewScope()
		defer own.Close()
		t := r.ReadFinite(own, name, torch.Float32, torch.CPU)
		if err := own.Err(); err != nil {
			return nil, bad(name, "%v", err)
		}
		return s.Own(own.Keep(t)), nil
	}
	if b.Pixels, err = floats(KeyPixelValues, 2); err != nil {
		return nil, err
	}
	if b.PixelsVideos, err = floats(KeyPixelValuesVideos, 2); err != nil {
		return nil, err
	}
	if b.Audio.Features, err = floats(KeyInputFeatures, 3); err != nil {
		return nil, err
	}
	if b.Audio.Mask, sh, err = ints(KeyFeatureAttentionMask, 2); err != nil {
		return nil, err
	}
	for _, pair := range [][2]string{{KeyPixelValues, KeyImageGridTHW}, {KeyPixelValuesVideos, KeyVideoGridTHW}, {KeyInputFeatures, KeyFeatureAttentionMask}} {
		_, a := infos[pair[0]]
		_, g := infos[pair[1]]
		if a != g {
			return nil, bad(pair[0], "given without %s, or the reverse", pair[1])
		}
	}
	if b.Audio.Features != nil {
		fs := b.Audio.Features.Shape()
		if sh[0] != fs[0] || sh[1] != fs[2] {
			return nil, bad(KeyFeatureAttentionMask, "shape %v, input_features is %v", sh, fs)
		}
		in.AudioFeatureLens = b.Audio.Lens()
	}
	return b, nil
}

// Encode runs the towers over a batch's media: the encoder outputs to
// place at its placeholder tokens.
func (th *Thinker) Encode(s *torch.Scope, b *Batch) Embeds {
	var e Embeds
	if b.Audio.Features != nil || b.Pixels != nil || b.PixelsVideos != nil {
		towerRuns.Add(1)
	}
	if b.Audio.Features != nil {
		e.Audio = th.AudioForward(s, b.Audio)
	}
	if b.Pixels != nil {
		e.Image = th.VisionForward(s, b.Pixels, b.Inputs.ImageGridTHW)
	}
	if b.PixelsVideos != nil {
		e.Video = th.VisionForward(s, b.PixelsVideos, b.Inputs.VideoGridTHW)
	}
	return e
}
