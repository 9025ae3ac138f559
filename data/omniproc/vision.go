package omniproc

import (
	"fmt"
	"math"

	"github.com/mose-llm/mose/internal/inputerr"
)

// Vision holds Qwen2-VL's image/video preprocessing settings.
type Vision struct {
	Patch, Merge, TemporalPatch int
	MinPixels, MaxPixels        int // the resize's bounds on height × width
	Mean, Std                   [3]float64
	Filter                      Filter // the resize's arithmetic (Pillow for images, Torch for videos)
	MaxValues                   int    // bound on the patches' values of one input (0: DefaultMaxValues)
}

// DefaultMaxValues bounds the float32 patch values of one image or video (1 GiB)
// when Vision.MaxValues is 0.
const DefaultMaxValues = 1 << 28

// CLIP's normalisation (OPENAI_CLIP_MEAN/STD).
var (
	clipMean = [3]float64{0.48145466, 0.4578275, 0.40821073}
	clipStd  = [3]float64{0.26862954, 0.26130258, 0.27577711}
)

// OmniImage is Qwen2.5-Omni's image preprocessing (preprocessor_config.json:
// min_pixels 3136, max_pixels 12845056); OmniVideo its video preprocessing, whose
// bounds the processor sets itself (128·28·28 to 768·28·28 pixels per frame).
var (
	OmniImage = Vision{Patch: 14, Merge: 2, TemporalPatch: 2, MinPixels: 3136, MaxPixels: 12845056, Mean: clipMean, Std: clipStd, Filter: Pillow}
	OmniVideo = Vision{Patch: 14, Merge: 2, TemporalPatch: 2, MinPixels: 128 * 28 * 28, MaxPixels: 768 * 28 * 28, Mean: clipMean, Std: clipStd, Filter: Torch}
)

// SmartResize returns the size Qwen2-VL resizes an h×w frame to: multiples of
// factor = patch·merge nearest to it (Python's round, half to even), scaled down
// or up to keep height × width within [MinPixels, MaxPixels]. An aspect ratio
// beyond 200 is refused, as transformers refuses it.
func (v Vision) SmartResize(h, w int) (int, int, error) {
	if h <= 0 || w <= 0 {
		return 0, 0, inputerr.Mark(fmt.Errorf("frame of %dx%d", w, h))
	}
	if float64(max(h, w))/float64(min(h, w)) > 200 {
		return 0, 0, inputerr.Mark(fmt.Errorf("frame of %dx%d: aspect ratio beyond 200", w, h))
	}
	f := float64(v.Patch * v.Merge)
	fh, fw := float64(h), float64(w)
	hb := int(math.RoundToEven(fh/f) * f)
	wb := int(math.RoundToEven(fw/f) * f)
	switch {
	case hb*wb > v.MaxPixels:
		beta := math.Sqrt(fh * fw / float64(v.MaxPixels))
		hb = max(int(f), int(math.Floor(fh/beta/f)*f))
		wb = max(int(f), int(math.Floor(fw/beta/f)*f))
	case hb*wb < v.MinPixels:
		beta := math.Sqrt(float64(v.MinPixels) / (fh * fw))
		hb = int(math.Ceil(fh*beta/f) * f)
		wb = int(math.Ceil(fw*beta/f) * f)
	}
	return hb, wb, nil
}

// Patches is a run of frames cut into flattened patches: Rows rows of
// C·TemporalPatch·Patch·Patch values, and the grid (t, h, w) in patches.
type Patches struct {
	Values []float32
	Rows   int
	Grid   [3]int64
}

// Preprocess resizes frames (each h×w×3 RGB24) with SmartResize and Pillow's
// bicubic filter (Pillow's or torch's fixed point, see Filter), rescales by 1/255, normalises with Mean/Std and cuts them into
// temporal×spatial patches in Qwen2-VL's order, merged groups of Merge×Merge
// patches contiguous. Frames are padded to a multiple of TemporalPatch by repeating
// the last (a single image is repeated TemporalPatch times).
func (v Vision) Preprocess(frames [][]byte, h, w int) (*Patches, error) {
	if len(frames) == 0 {
		return nil, inputerr.Mark(fmt.Errorf("no frames"))
	}
	rh, rw, err := v.SmartResize(h, w)
	if err != nil {
		return nil, err
	}
	p, m, tp := v.Patch, v.Merge, v.TemporalPatch
	limit := v.MaxValues
	if limit <= 0 {
		limit = DefaultMaxValues
	}
	if n := (len(frames) + tp - 1) / tp * tp * 3 * rh * rw; n > limit {
		return nil, inputerr.Mark(fmt.Errorf("%d frames of %dx%d resized to %dx%d: %d patch values, beyond the bound of %d",
			len(frames), w, h, rw, rh, n, limit))
	}
	norm := make([][]float32, len(frames)) // per frame, C×rh×rw
	for i, fr := range frames {
		if len(fr) != h*w*3 {
			return nil, fmt.Errorf("frame %d has %d bytes, want %d", i, len(fr), h*w*3)
		}
		rs := ResizeRGB(fr, h, w, rh, rw, v.Filter)
		out := make([]float32, 3*rh*rw)
		for y := range rh {
			for x := range rw {
				for c := range 3 {
					px := float64(float32(float64(rs[(y*rw+x)*3+c]) * (1.0 / 255)))
					out[(c*rh+y)*rw+x] = float32((px - float64(float32(v.Mean[c]))) / float64(float32(v.Std[c])))
				}
			}
		}
		norm[i] = out
	}
	for len(norm)%tp != 0 {
		norm = append(norm, norm[len(norm)-1])
	}
	gt, gh, gw := len(norm)/tp, rh/p, rw/p
	rows := gt * gh * gw
	cols := 3 * tp * p * p
	vals := make([]float32, rows*cols)
	r := 0
	for t := range gt {
		for bh := range gh / m {
			for bw := range gw / m {
				for mh := range m {
					for mw := range m {
						row := vals[r*cols:]
						i := 0
						for c := range 3 {
							for k := range tp {
								fr := norm[t*tp+k]
								for py := range p {
									y := (bh*m+mh)*p + py
									base := (c*rh+y)*rw + (bw*m+mw)*p
									copy(row[i:i+p], fr[base:base+p])
									i += p
								}
							}
						}
						r++
					}
				}
			}
		}
	}
	return &Patches{Values: vals, Rows: rows, Grid: [3]int64{int64(gt), int64(gh), int64(gw)}}, nil
}

// Tokens is the number of placeholder tokens of a grid: t·h·w / merge².
func (v Vision) Tokens(g [3]int64) int { return int(g[0] * g[1] * g[2] / int64(v.Merge*v.Merge)) }
