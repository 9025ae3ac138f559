// Package procout reads Qwen2.5-Omni processor-outputs files: safetensors
// files holding transformers' Qwen2_5OmniProcessor outputs under their own
// names (input_ids, attention_mask, pixel_values, image_grid_thw,
// pixel_values_videos, video_grid_thw, video_second_per_grid,
// input_features, feature_attention_mask; use_audio_in_video in the
// metadata), as `mose preprocess` writes them. It has no cgo: the data
// loader reads training samples with it, and model/omni turns what it reads
// into tensors.
//
// Open reads a file's header and its small tensors (ids, masks, grids),
// validating every name, dtype, rank and size before anything is allocated;
// the media (pixels, mel features) are read later, on demand, by Media.
package procout

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mose-llm/mose/data/cas"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
)

// ErrInputs: a processor-outputs file that mose cannot read as such.
var ErrInputs = inputerr.New("bad processor outputs")

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

// Keys lists every tensor name a processor-outputs file may hold.
var Keys = []string{KeyInputIDs, KeyAttentionMask, KeyPixelValues, KeyImageGridTHW, KeyPixelValuesVideos,
	KeyVideoGridTHW, KeyVideoSecondPerGrid, KeyInputFeatures, KeyFeatureAttentionMask}

// Bounds checked before anything is allocated.
const (
	// MaxTokens bounds input_ids (B·T) and the other integer tensors.
	MaxTokens = 1 << 24
	// MaxMediaValues bounds the values of one float tensor (pixels or
	// features): 2^28 float32 values, 1 GiB.
	MaxMediaValues = 1 << 28
	// MaxGridSide bounds each of a grid's t, h, w.
	MaxGridSide = 1 << 16
)

// FloatDTypes are the dtypes the media may be stored in (read as float32).
var FloatDTypes = []safetensors.DType{safetensors.F32, safetensors.F16, safetensors.BF16}

// Header is a processor-outputs file without its media: the token layout,
// the grids, the audio lengths and the shapes of the media tensors.
type Header struct {
	Path string
	B, T int
	IDs  []int64 // input_ids (B·T)
	// Mask is attention_mask (B·T), nil when the file has none.
	Mask                       []int64
	ImageGridTHW, VideoGridTHW [][3]int64
	VideoSecondPerGrid         []float32 // one per video (float32, as transformers reads it)
	UseAudioInVideo            bool
	// FeatureMask is feature_attention_mask (A·L), nil without audio.
	FeatureMask []int64
	// AudioLens are each audio's real mel frames (FeatureMask's row sums).
	AudioLens []int64
	// Shapes of the media tensors (nil when absent).
	PixelShape, VideoShape, FeatureShape []int64

	infos map[string]safetensors.TensorInfo
}

// bad is an error naming the file and the tensor (or key).
func bad(path, name, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s: %s", ErrInputs, path, name, fmt.Sprintf(format, args...))
}

// Open reads path's header and small tensors. Every tensor must be one of
// Keys with its dtype and rank; a name mose does not know, a metadata key
// other than use_audio_in_video, a missing input_ids, a grid without its
// pixels (or the reverse), pixels whose rows disagree with their grids, a
// feature mask that is not 0/1 right padding or disagrees with the
// features, and sizes beyond the bounds are refused, naming the file and
// the tensor. The media are not read (Media reads them).
func Open(path string) (*Header, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInputs, err)
	}
	defer f.Close()
	h := &Header{Path: path, infos: map[string]safetensors.TensorInfo{}}
	for _, info := range f.Tensors() {
		if !slices.Contains(Keys, info.Name) {
			return nil, bad(path, info.Name, "not a processor output mose reads (want %s)", strings.Join(Keys, ", "))
		}
		h.infos[info.Name] = info
	}
	var metaKeys []string
	for k := range f.Metadata() {
		metaKeys = append(metaKeys, k)
	}
	sort.Strings(metaKeys)
	for _, k := range metaKeys {
		v := f.Metadata()[k]
		switch k {
		case "format", cas.MetaChecksum: // the data cache's checksum (package cas verifies it)
		case MetaUseAudioInVideo:
			if v != "true" && v != "false" {
				return nil, bad(path, "metadata "+k, "%q, want \"true\" or \"false\"", v)
			}
			h.UseAudioInVideo = v == "true"
		default:
			return nil, bad(path, "metadata "+k, "not a key mose reads (want %s)", MetaUseAudioInVideo)
		}
	}
	ints := func(name string, rank int) ([]int64, []int64, error) {
		info, ok := h.infos[name]
		if !ok {
			return nil, nil, nil
		}
		if info.DType != safetensors.I64 || len(info.Shape) != rank {
			return nil, nil, bad(path, name, "%s %v, want I64 of rank %d", info.DType, info.Shape, rank)
		}
		if n := info.NumElements(); n > MaxTokens {
			return nil, nil, bad(path, name, "%d values, beyond mose's bound %d", n, MaxTokens)
		}
		raw, err := f.Read(name)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrInputs, err)
		}
		v, err := safetensors.BytesToInt64s(raw)
		return v, info.Shape, err
	}
	ids, sh, err := ints(KeyInputIDs, 2)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		return nil, bad(path, KeyInputIDs, "missing")
	}
	if sh[0] < 1 || sh[1] < 1 {
		return nil, bad(path, KeyInputIDs, "shape %v, want (B,T) with B, T ≥ 1", sh)
	}
	h.IDs, h.B, h.T = ids, int(sh[0]), int(sh[1])
	if h.Mask, sh, err = ints(KeyAttentionMask, 2); err != nil {
		return nil, err
	} else if h.Mask != nil && (sh[0] != int64(h.B) || sh[1] != int64(h.T)) {
		return nil, bad(path, KeyAttentionMask, "shape %v, input_ids is (%d,%d)", sh, h.B, h.T)
	}
	for _, m := range h.Mask {
		if m != 0 && m != 1 {
			return nil, bad(path, KeyAttentionMask, "holds %d (want 0 or 1)", m)
		}
	}
	grids := func(name string) ([][3]int64, error) {
		v, sh, err := ints(name, 2)
		if err != nil || v == nil {
			return nil, err
		}
		if sh[1] != 3 {
			return nil, bad(path, name, "shape %v, want (n,3)", sh)
		}
		out := make([][3]int64, sh[0])
		for i := range out {
			out[i] = [3]int64{v[3*i], v[3*i+1], v[3*i+2]}
			for _, x := range out[i] {
				if x < 1 || x > MaxGridSide {
					return nil, bad(path, name, "row %d is %v: each of t, h, w must be in [1, %d]", i, out[i], MaxGridSide)
				}
			}
		}
		return out, nil
	}
	if h.ImageGridTHW, err = grids(KeyImageGridTHW); err != nil {
		return nil, err
	}
	if h.VideoGridTHW, err = grids(KeyVideoGridTHW); err != nil {
		return nil, err
	}
	if info, ok := h.infos[KeyVideoSecondPerGrid]; ok {
		if len(info.Shape) != 1 || info.Shape[0] != int64(len(h.VideoGridTHW)) {
			return nil, bad(path, KeyVideoSecondPerGrid, "shape %v for %d videos", info.Shape, len(h.VideoGridTHW))
		}
		if !slices.Contains(append(slices.Clone(FloatDTypes), safetensors.F64), info.DType) {
			return nil, bad(path, KeyVideoSecondPerGrid, "dtype %s, want a float", info.DType)
		}
		raw, err := f.Read(KeyVideoSecondPerGrid)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInputs, err)
		}
		v := make([]float32, info.Shape[0])
		if err := safetensors.DecodeFloat32s(v, raw, info.DType); err != nil {
			return nil, bad(path, KeyVideoSecondPerGrid, "%v", err)
		}
		for i, x := range v {
			if !(x > 0) || x-x != 0 {
				return nil, bad(path, KeyVideoSecondPerGrid, "video %d: %v, want a finite number > 0", i, x)
			}
		}
		h.VideoSecondPerGrid = v
	}
	floats := func(name string, rank int) ([]int64, error) {
		info, ok := h.infos[name]
		if !ok {
			return nil, nil
		}
		if !slices.Contains(FloatDTypes, info.DType) || len(info.Shape) != rank {
			return nil, bad(path, name, "%s %v, want a float tensor (F32, F16 or BF16) of rank %d", info.DType, info.Shape, rank)
		}
		if n := info.NumElements(); n > MaxMediaValues {
			return nil, bad(path, name, "%d values, beyond mose's bound %d", n, MaxMediaValues)
		}
		return info.Shape, nil
	}
	if h.PixelShape, err = floats(KeyPixelValues, 2); err != nil {
		return nil, err
	}
	if h.VideoShape, err = floats(KeyPixelValuesVideos, 2); err != nil {
		return nil, err
	}
	if h.FeatureShape, err = floats(KeyInputFeatures, 3); err != nil {
		return nil, err
	}
	if h.FeatureMask, sh, err = ints(KeyFeatureAttentionMask, 2); err != nil {
		return nil, err
	}
	for _, pair := range [][2]string{{KeyPixelValues, KeyImageGridTHW}, {KeyPixelValuesVideos, KeyVideoGridTHW},
		{KeyInputFeatures, KeyFeatureAttentionMask}, {KeyVideoGridTHW, KeyVideoSecondPerGrid}} {
		_, a := h.infos[pair[0]]
		_, g := h.infos[pair[1]]
		if a != g {
			return nil, bad(path, pair[0], "given without %s, or the reverse", pair[1])
		}
	}
	for _, m := range []struct {
		name  string
		shape []int64
		grids [][3]int64
	}{{KeyPixelValues, h.PixelShape, h.ImageGridTHW}, {KeyPixelValuesVideos, h.VideoShape, h.VideoGridTHW}} {
		if m.shape == nil {
			continue
		}
		var rows int64
		for _, g := range m.grids {
			rows += g[0] * g[1] * g[2]
		}
		if m.shape[0] != rows {
			return nil, bad(path, m.name, "%d rows, but the grids %v hold %d patches", m.shape[0], m.grids, rows)
		}
	}
	if h.FeatureShape != nil {
		fs := h.FeatureShape
		if sh[0] != fs[0] || sh[1] != fs[2] {
			return nil, bad(path, KeyFeatureAttentionMask, "shape %v, input_features is %v", sh, fs)
		}
		A, L := int(fs[0]), int(fs[2])
		h.AudioLens = make([]int64, A)
		for a := range A {
			row := h.FeatureMask[a*L : (a+1)*L]
			n := int64(0)
			for t, m := range row {
				switch {
				case m != 0 && m != 1:
					return nil, bad(path, KeyFeatureAttentionMask, "holds %d (want 0 or 1)", m)
				case m == 1 && int64(t) != n:
					return nil, bad(path, KeyFeatureAttentionMask, "audio %d: a real frame after padding (frames must come first)", a)
				}
				n += m
			}
			if n == 0 {
				return nil, bad(path, KeyFeatureAttentionMask, "audio %d has no real frame", a)
			}
			h.AudioLens[a] = n
		}
	}
	return h, nil
}

// Media are a file's media as float32, read on demand.
type Media struct {
	Pixels, Videos []float32 // pixel_values and pixel_values_videos, row-major (rows, dim)
	PixelDim       int       // columns of pixel_values
	VideoDim       int       // columns of pixel_values_videos
	// Features holds each audio's real mel frames only: audio a is
	// (Mel, AudioLens[a]) row-major, the audios one after the other.
	Features []float32
	Mel      int
}

// Media reads h's pixels and features (finite values only; a NaN or Inf is
// refused naming the tensor and the element). Each audio keeps its real
// frames only: the rest is padding, which the audio tower never reads.
func (h *Header) Media() (*Media, error) {
	f, err := safetensors.Open(h.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInputs, err)
	}
	defer f.Close()
	read := func(name string) ([]float32, error) {
		info, ok := h.infos[name]
		if !ok {
			return nil, nil
		}
		// The file may have changed since Open: check again.
		now, err := f.Info(name)
		if err != nil || now.DType != info.DType || !slices.Equal(now.Shape, info.Shape) {
			return nil, bad(h.Path, name, "changed since the dataset was opened")
		}
		raw, err := f.Read(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInputs, err)
		}
		v := make([]float32, info.NumElements())
		if err := safetensors.DecodeFloat32s(v, raw, info.DType); err != nil {
			return nil, bad(h.Path, name, "%v", err)
		}
		for i, x := range v {
			if x-x != 0 {
				return nil, bad(h.Path, name, "non-finite value %v at element %d", x, i)
			}
		}
		return v, nil
	}
	m := &Media{}
	if m.Pixels, err = read(KeyPixelValues); err != nil {
		return nil, err
	}
	if m.Videos, err = read(KeyPixelValuesVideos); err != nil {
		return nil, err
	}
	if h.PixelShape != nil {
		m.PixelDim = int(h.PixelShape[1])
	}
	if h.VideoShape != nil {
		m.VideoDim = int(h.VideoShape[1])
	}
	if h.FeatureShape == nil {
		return m, nil
	}
	info := h.infos[KeyInputFeatures]
	now, err := f.Info(KeyInputFeatures)
	if err != nil || now.DType != info.DType || !slices.Equal(now.Shape, info.Shape) {
		return nil, bad(h.Path, KeyInputFeatures, "changed since the dataset was opened")
	}
	A, mel, L := int(h.FeatureShape[0]), int(h.FeatureShape[1]), int(h.FeatureShape[2])
	m.Mel = mel
	es := int64(info.DType.Size())
	sec, err := f.Section(KeyInputFeatures)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInputs, err)
	}
	// Read only the real frames: row (a, bin) holds L values, of which the
	// first AudioLens[a] are real.
	var total int64
	for _, n := range h.AudioLens {
		total += n * int64(mel)
	}
	m.Features = make([]float32, 0, total)
	for a := range A {
		n := h.AudioLens[a]
		raw := make([]byte, n*es)
		row := make([]float32, n)
		for b := range mel {
			off := (int64(a)*int64(mel) + int64(b)) * int64(L) * es
			if _, err := sec.ReadAt(raw, off); err != nil {
				return nil, bad(h.Path, KeyInputFeatures, "reading audio %d: %v", a, err)
			}
			if err := safetensors.DecodeFloat32s(row, raw, info.DType); err != nil {
				return nil, bad(h.Path, KeyInputFeatures, "%v", err)
			}
			for i, x := range row {
				if x-x != 0 {
					return nil, bad(h.Path, KeyInputFeatures, "non-finite value %v (audio %d, bin %d, frame %d)", x, a, b, i)
				}
			}
			m.Features = append(m.Features, row...)
		}
	}
	return m, nil
}
