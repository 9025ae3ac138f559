package omni

import (
	"fmt"
	"math"

	"github.com/mose-llm/mose/internal/inputerr"
)

// ErrInputs: a batch's ids, masks and media descriptions disagree.
var ErrInputs = inputerr.New("bad thinker inputs")

// Inputs is one batch as transformers' processor gives it, on the host.
type Inputs struct {
	B, T int
	IDs  []int64 // input_ids (B·T)
	// Mask is attention_mask (B·T), 1 real, 0 padding; nil: every token is real.
	Mask []int64
	// ImageGridTHW and VideoGridTHW are image_grid_thw and video_grid_thw:
	// one (t, h, w) patch grid per image / video, in prompt order.
	ImageGridTHW, VideoGridTHW [][3]int64
	// VideoSecondPerGrid is video_second_per_grid: seconds per temporal
	// patch, one per video (float32, as transformers reads it).
	VideoSecondPerGrid []float32
	// AudioFeatureLens are the mel frames of each audio (the row sums of
	// feature_attention_mask), in prompt order.
	AudioFeatureLens []int64
	// UseAudioInVideo: each video is followed by its own audio, the two
	// interleaved in time chunks (the processor's use_audio_in_video).
	UseAudioInVideo bool
}

// Positions are TMRoPE's position ids: Pos[a][b·T+t] for axis a (temporal,
// height, width), and each row's rope delta (the largest position + 1 −
// the row's real length), which continues the positions when decoding.
type Positions struct {
	Pos   [3][]int64
	Delta []int64
}

// AudioTokens is the number of audio tokens (encoder outputs) of an audio
// of n mel frames: the stride-2 convolution, then the stride-2 pooling.
// The divisions floor, as torch's // does (n ≤ 2 gives no token).
func AudioTokens(n int64) int64 { return floorDiv(floorDiv(n-1, 2)+1-2, 2) + 1 }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// RopeIndex computes the position ids exactly as transformers'
// get_rope_index (5.25): with image or video grids, each row is walked
// media by media (text and every special token one position on all axes;
// an image or video as a t×h×w grid after the spatial merge, its time axis
// in position_id_per_seconds units; audio one position per token; audio in
// video interleaved with its video in seconds_per_chunk chunks); without
// grids every axis is the cumulative count of real tokens. Padding gets
// position 1 (with grids) as transformers gives it. Inputs that
// transformers would reject, or that its walk would misread silently
// (media counts that disagree with the grids), are refused.
func (c Config) RopeIndex(in *Inputs) (Positions, error) {
	B, T := in.B, in.T
	if B <= 0 || T <= 0 || len(in.IDs) != B*T || (in.Mask != nil && len(in.Mask) != B*T) {
		return Positions{}, fmt.Errorf("%w: input_ids has %d values for (%d,%d), attention_mask %d", ErrInputs, len(in.IDs), B, T, len(in.Mask))
	}
	var p Positions
	for a := range p.Pos {
		p.Pos[a] = make([]int64, B*T)
	}
	p.Delta = make([]int64, B)
	real := func(i int) bool { return in.Mask == nil || in.Mask[i] == 1 }
	if len(in.ImageGridTHW) == 0 && len(in.VideoGridTHW) == 0 {
		for b := range B {
			n, maxPos := int64(0), int64(math.MinInt64)
			for t := range T {
				i := b*T + t
				v := int64(1) // masked_fill(mask == 0, 1)
				if real(i) {
					v = n
					n++
				}
				maxPos = max(maxPos, v)
				for a := range 3 {
					p.Pos[a][i] = v
				}
			}
			p.Delta[b] = maxPos + 1 - n
		}
		return p, nil
	}
	if err := c.checkMedia(in); err != nil {
		return Positions{}, err
	}
	w := &walker{c: c, in: in}
	for b := range B {
		var ids []int64
		var at []int
		for t := range T {
			if real(b*T + t) {
				ids = append(ids, in.IDs[b*T+t])
				at = append(at, b*T+t)
			}
		}
		pos, err := w.row(ids)
		if err != nil {
			return Positions{}, fmt.Errorf("row %d: %w", b, err)
		}
		for t := range T {
			for a := range 3 {
				p.Pos[a][b*T+t] = 1 // torch.ones: padding keeps 1
			}
		}
		maxPos := int64(0)
		for j, i := range at {
			for a := range 3 {
				p.Pos[a][i] = pos[a][j]
				maxPos = max(maxPos, pos[a][j])
			}
		}
		p.Delta[b] = maxPos + 1 - int64(len(ids))
	}
	if w.image != len(in.ImageGridTHW) || w.video != len(in.VideoGridTHW) || w.audio != len(in.AudioFeatureLens) {
		return Positions{}, fmt.Errorf("%w: the prompt places %d images, %d videos and %d audios; image_grid_thw has %d, video_grid_thw %d, feature_attention_mask %d",
			ErrInputs, w.image, w.video, w.audio, len(in.ImageGridTHW), len(in.VideoGridTHW), len(in.AudioFeatureLens))
	}
	return p, nil
}

// checkMedia bounds the media descriptions before any position is made.
func (c Config) checkMedia(in *Inputs) error {
	m := int64(c.Vision.SpatialMergeSize)
	for _, g := range [][][3]int64{in.ImageGridTHW, in.VideoGridTHW} {
		for i, thw := range g {
			for _, x := range thw {
				if x <= 0 || x > MaxGrid {
					return fmt.Errorf("%w: grid %d %v: each of t, h, w must be in [1, %d]", ErrInputs, i, thw, MaxGrid)
				}
			}
			if thw[1]%m != 0 || thw[2]%m != 0 {
				return fmt.Errorf("%w: grid %d %v: h and w must be multiples of spatial_merge_size %d", ErrInputs, i, thw, m)
			}
		}
	}
	if len(in.VideoSecondPerGrid) < len(in.VideoGridTHW) {
		return fmt.Errorf("%w: video_second_per_grid has %d values for %d videos", ErrInputs, len(in.VideoSecondPerGrid), len(in.VideoGridTHW))
	}
	for i, s := range in.VideoSecondPerGrid {
		if !(s >= 0 && s <= MaxSecondsPerGrid) {
			return fmt.Errorf("%w: video_second_per_grid[%d] = %g is outside [0, %d]", ErrInputs, i, s, MaxSecondsPerGrid)
		}
	}
	for i, n := range in.AudioFeatureLens {
		if n < 1 || n > MaxSourceFrames {
			return fmt.Errorf("%w: audio %d has %d mel frames, want [1, %d]", ErrInputs, i, n, MaxSourceFrames)
		}
	}
	return nil
}

// Bounds on media descriptions.
const (
	MaxGrid           = 1 << 12 // a grid dimension, in patches
	MaxSecondsPerGrid = 3600    // video_second_per_grid
)
