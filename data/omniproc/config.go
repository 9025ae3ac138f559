package omniproc

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/mose-llm/mose/internal/inputerr"
)

// ErrConfig marks a preprocessor_config.json mose refuses; the message names the key.
var ErrConfig = inputerr.New("preprocessor_config.json")

// inertKeys are preprocessor_config.json keys that do not change the outputs.
var inertKeys = map[string]bool{"processor_class": true, "feature_extractor_type": true,
	"image_processor_type": true, "video_processor_type": true}

// ApplyConfig reads a model directory's preprocessor_config.json (Qwen2.5-Omni's:
// the Whisper feature extractor's and Qwen2-VL image processor's settings in one
// object) into p. The settings the Go processor implements for any value are applied
// (mel bins, n_fft, hop, chunk length, image min/max pixels, patch, temporal patch,
// merge, mean and std); the others must have the value the processor implements
// (16 kHz, zero padding on the right, the attention mask, no dither, bicubic resize,
// rescale by 1/255, every do_* on); an unknown key, or a value that differs, is
// refused by name. Sizes are bounded. path names the file in errors.
func (p *Processor) ApplyConfig(path string, b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bad := func(k string, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s: %s", ErrConfig, path, k, fmt.Sprintf(format, args...))
	}
	num := func(k string, lo, hi float64) (float64, error) {
		v, ok := m[k].(float64)
		if !ok || v < lo || v > hi || math.IsNaN(v) {
			return 0, bad(k, "%v, want a number in [%g, %g]", m[k], lo, hi)
		}
		return v, nil
	}
	integer := func(k string, lo, hi int) (int, error) {
		v, err := num(k, float64(lo), float64(hi))
		if err != nil || v != math.Trunc(v) {
			return 0, bad(k, "%v, want an integer in [%d, %d]", m[k], lo, hi)
		}
		return int(v), nil
	}
	triple := func(k string) ([3]float64, error) {
		var out [3]float64
		l, ok := m[k].([]any)
		if !ok || len(l) != 3 {
			return out, bad(k, "%v, want 3 numbers", m[k])
		}
		for i, x := range l {
			f, ok := x.(float64)
			if !ok || (k == "image_std" && f <= 0) {
				return out, bad(k, "%v, want 3 numbers (std > 0)", m[k])
			}
			out[i] = f
		}
		return out, nil
	}
	a, img, vid := p.Audio, p.Image, p.Video
	var err error
	var sizeMin, sizeMax int
	for _, k := range keys {
		v := m[k]
		switch {
		case inertKeys[k]:
		case k == "feature_size":
			a.Bins, err = integer(k, 1, 512)
		case k == "n_fft":
			a.NFFT, err = integer(k, 8, 4096)
		case k == "hop_length":
			a.Hop, err = integer(k, 1, 4096)
		case k == "chunk_length":
			a.ChunkSecs, err = integer(k, 1, 3600)
		case k == "sampling_rate":
			if v != float64(16000) {
				err = bad(k, "%v, mose decodes audio at 16000 Hz only", v)
			}
		case k == "padding_value" || k == "dither":
			if v != float64(0) {
				err = bad(k, "%v, only 0 is implemented", v)
			}
		case k == "padding_side":
			if v != "right" {
				err = bad(k, "%v, only \"right\" is implemented", v)
			}
		case k == "return_attention_mask" || k == "do_resize" || k == "do_rescale" || k == "do_normalize" || k == "do_convert_rgb":
			if v != true {
				err = bad(k, "%v, only true is implemented", v)
			}
		case k == "do_sample_frames":
			if v != false {
				err = bad(k, "%v, frames are sampled by FFmpeg at --fps", v)
			}
		case k == "resample":
			if v != float64(3) {
				err = bad(k, "%v, only 3 (bicubic) is implemented", v)
			}
		case k == "rescale_factor":
			if f, ok := v.(float64); !ok || math.Abs(f-1.0/255) > 1e-12 {
				err = bad(k, "%v, only 1/255 is implemented", v)
			}
		case k == "min_pixels":
			img.MinPixels, err = integer(k, 1, 1<<30)
		case k == "max_pixels":
			img.MaxPixels, err = integer(k, 1, 1<<30)
		case k == "size":
			s, ok := v.(map[string]any)
			if !ok {
				err = bad(k, "%v, want {shortest_edge, longest_edge}", v)
				break
			}
			for sk, sv := range s {
				f, ok := sv.(float64)
				switch {
				case !ok || f < 1 || f > 1<<30 || f != math.Trunc(f):
					err = bad(k+"."+sk, "%v, want a pixel count", sv)
				case sk == "shortest_edge":
					sizeMin = int(f)
				case sk == "longest_edge":
					sizeMax = int(f)
				default:
					err = bad(k+"."+sk, "not a key mose reads (want shortest_edge, longest_edge)")
				}
			}
		case k == "patch_size":
			img.Patch, err = integer(k, 1, 64)
		case k == "temporal_patch_size":
			img.TemporalPatch, err = integer(k, 1, 16)
		case k == "merge_size":
			img.Merge, err = integer(k, 1, 8)
		case k == "image_mean":
			img.Mean, err = triple(k)
		case k == "image_std":
			img.Std, err = triple(k)
		case k == "n_samples" || k == "nb_max_frames":
			// Derived: checked against chunk_length below.
		default:
			err = bad(k, "not a setting mose's processor knows; refusing rather than ignoring it")
		}
		if err != nil {
			return err
		}
	}
	if sizeMin > 0 {
		if _, ok := m["min_pixels"]; ok && sizeMin != img.MinPixels {
			return bad("size.shortest_edge", "%d, min_pixels says %d", sizeMin, img.MinPixels)
		}
		img.MinPixels = sizeMin
	}
	if sizeMax > 0 {
		if _, ok := m["max_pixels"]; ok && sizeMax != img.MaxPixels {
			return bad("size.longest_edge", "%d, max_pixels says %d", sizeMax, img.MaxPixels)
		}
		img.MaxPixels = sizeMax
	}
	if img.MinPixels > img.MaxPixels {
		return bad("min_pixels", "%d above max_pixels %d", img.MinPixels, img.MaxPixels)
	}
	if a.Hop > a.NFFT {
		return bad("hop_length", "%d above n_fft %d", a.Hop, a.NFFT)
	}
	if v, ok := m["n_samples"]; ok && v != float64(a.ChunkSecs*16000) {
		return bad("n_samples", "%v, chunk_length %d s at 16 kHz is %d", v, a.ChunkSecs, a.ChunkSecs*16000)
	}
	if v, ok := m["nb_max_frames"]; ok && v != float64(a.ChunkSecs*16000/a.Hop) {
		return bad("nb_max_frames", "%v, want %d", v, a.ChunkSecs*16000/a.Hop)
	}
	// The video processor shares the patching and normalisation; its pixel bounds
	// are the omni processor's own.
	vid.Patch, vid.TemporalPatch, vid.Merge, vid.Mean, vid.Std = img.Patch, img.TemporalPatch, img.Merge, img.Mean, img.Std
	p.Audio, p.Image, p.Video = a, img, vid
	return nil
}
