package omni

import (
	"fmt"
	"math"
	"slices"

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

// walker is get_rope_index's walk over the rows, with its media counters
// running across rows as transformers' do.
type walker struct {
	c                   Config
	in                  *Inputs
	image, video, audio int
}

// block is one appended run of positions, (3, n).
type block [3][]int64

// row walks one row's real tokens and returns their positions (3, len(ids)).
func (w *walker) row(ids []int64) ([3][]int64, error) {
	tok := w.c.Tokens
	in := w.in
	count := func(v int64) int {
		n := 0
		for _, x := range ids {
			if x == v {
				n++
			}
		}
		return n
	}
	audioNums := count(int64(tok.AudioStart))
	imageNums, videoNums := 0, 0
	for i, x := range ids {
		if x != int64(tok.VisionStart) {
			continue
		}
		if i+1 >= len(ids) {
			// input_ids[vision_start_indices + 1] is out of range in transformers.
			return [3][]int64{}, fmt.Errorf("%w: vision_start_token_id %d ends the sequence", ErrInputs, x)
		}
		switch next := ids[i+1]; {
		case next == int64(tok.Image):
			imageNums++
		case in.UseAudioInVideo && next == int64(tok.AudioStart):
			videoNums++
		case !in.UseAudioInVideo && next == int64(tok.Video):
			videoNums++
		}
	}
	var out [3][]int64
	var last block
	st := 0
	stIdx := func() int64 {
		if last[0] == nil {
			return 0
		}
		m := last[0][0]
		for a := range 3 {
			for _, v := range last[a] {
				m = max(m, v)
			}
		}
		return m + 1
	}
	push := func(bl block) {
		for a := range 3 {
			out[a] = append(out[a], bl[a]...)
		}
		last = bl
	}
	arange := func(n, start int64) block {
		var bl block
		for a := range 3 {
			bl[a] = make([]int64, n)
			for i := range bl[a] {
				bl[a][i] = start + int64(i)
			}
		}
		return bl
	}
	find := func(v int64, remain int) int {
		if remain <= 0 || !slices.Contains(ids, v) {
			return len(ids) + 1
		}
		for i := st; i < len(ids); i++ {
			if ids[i] == v {
				return i
			}
		}
		return -1 // list.index raises: reported below
	}
	remainImages, remainVideos, remainAudios := imageNums, videoNums, audioNums
	mm := imageNums + videoNums + audioNums
	if in.UseAudioInVideo {
		mm = imageNums + audioNums
	}
	for range mm {
		edImage, edVideo, edAudio := find(int64(tok.Image), remainImages), find(int64(tok.Video), remainVideos), find(int64(tok.Audio), remainAudios)
		if edImage < 0 || edVideo < 0 || edAudio < 0 {
			return out, fmt.Errorf("%w: a media token expected after position %d is missing (its bos token is there)", ErrInputs, st)
		}
		minEd := min(edImage, edVideo, edAudio)
		if minEd > len(ids) {
			return out, fmt.Errorf("%w: a media bos token without media tokens after position %d", ErrInputs, st)
		}
		text := func(bos int) (int64, error) {
			n := int64(minEd - st - bos)
			if n < 0 {
				return 0, fmt.Errorf("%w: media tokens at position %d are not preceded by their bos token(s)", ErrInputs, minEd)
			}
			if n != 0 {
				push(arange(n, stIdx()))
			}
			return n, nil
		}
		switch {
		case minEd == edAudio:
			n, err := text(1)
			if err != nil {
				return out, err
			}
			if w.audio >= len(in.AudioFeatureLens) {
				return out, fmt.Errorf("%w: more audios in the prompt than feature_attention_mask rows (%d)", ErrInputs, len(in.AudioFeatureLens))
			}
			push(arange(1, stIdx()))
			al := AudioTokens(in.AudioFeatureLens[w.audio])
			if err := placeholders(ids, minEd, map[int64]int64{int64(tok.Audio): al}); err != nil {
				return out, err
			}
			push(arange(al, stIdx()))
			push(arange(1, stIdx()))
			st += int(n + 1 + al + 1)
			w.audio++
			remainAudios--
		case minEd == edImage:
			n, err := text(1)
			if err != nil {
				return out, err
			}
			if w.image >= len(in.ImageGridTHW) {
				return out, fmt.Errorf("%w: more images in the prompt than image_grid_thw rows (%d)", ErrInputs, len(in.ImageGridTHW))
			}
			push(arange(1, stIdx()))
			g := in.ImageGridTHW[w.image]
			tIndex := make([]int64, g[0])
			for i := range tIndex {
				tIndex[i] = int64(i) * int64(w.c.PositionIDPerSeconds)
			}
			vis := w.vision(stIdx(), tIndex, g)
			if err := placeholders(ids, minEd, map[int64]int64{int64(tok.Image): int64(len(vis[0]))}); err != nil {
				return out, err
			}
			push(vis)
			push(arange(1, stIdx()))
			st += int(n+2) + len(vis[0])
			w.image++
			remainImages--
		case minEd == edVideo && !in.UseAudioInVideo:
			n, err := text(1)
			if err != nil {
				return out, err
			}
			if w.video >= len(in.VideoGridTHW) {
				return out, fmt.Errorf("%w: more videos in the prompt than video_grid_thw rows (%d)", ErrInputs, len(in.VideoGridTHW))
			}
			push(arange(1, stIdx()))
			vis := w.vision(stIdx(), w.videoTimes(), in.VideoGridTHW[w.video])
			if err := placeholders(ids, minEd, map[int64]int64{int64(tok.Video): int64(len(vis[0]))}); err != nil {
				return out, err
			}
			push(vis)
			push(arange(1, stIdx()))
			st += int(n+2) + len(vis[0])
			w.video++
			remainVideos--
		default: // a video with its audio
			n, err := text(2)
			if err != nil {
				return out, err
			}
			if w.video >= len(in.VideoGridTHW) || w.audio >= len(in.AudioFeatureLens) {
				return out, fmt.Errorf("%w: more videos with audio in the prompt than video_grid_thw rows (%d) or feature_attention_mask rows (%d)", ErrInputs, len(in.VideoGridTHW), len(in.AudioFeatureLens))
			}
			bos := arange(1, stIdx())
			push(bos)
			push(bos)
			start := stIdx()
			al := AudioTokens(in.AudioFeatureLens[w.audio])
			aud := arange(al, start)
			vid := w.vision(start, w.videoTimes(), in.VideoGridTHW[w.video])
			if err := placeholders(ids, minEd, map[int64]int64{int64(tok.Audio): al, int64(tok.Video): int64(len(vid[0]))}); err != nil {
				return out, err
			}
			per := int64(w.c.PositionIDPerSeconds * w.c.SecondsPerChunk)
			vc, ac := chunks(vid[0], per, start), chunks(aud[0], per, start)
			for j := range max(len(vc), len(ac)) {
				if j < len(vc) {
					push(vid.slice(vc[j]))
				}
				if j < len(ac) {
					push(aud.slice(ac[j]))
				}
			}
			eos := arange(1, stIdx())
			push(eos)
			push(eos)
			st += int(n+4+al) + len(vid[0])
			w.audio++
			w.video++
			remainVideos--
			remainAudios--
		}
	}
	if st < len(ids) {
		push(arange(int64(len(ids)-st), stIdx()))
	}
	if len(out[0]) != len(ids) {
		// transformers fails here too (the positions do not fill the row).
		return out, fmt.Errorf("%w: the media descriptions give %d positions for %d tokens (a grid or audio length disagrees with the placeholder tokens)", ErrInputs, len(out[0]), len(ids))
	}
	return out, nil
}

// placeholders checks that the run of placeholder tokens at ids[at:] holds
// exactly want[id] tokens of each id and is not followed by another: the
// grids and audio lengths must describe the prompt's own placeholders
// (transformers' walk would otherwise read the rest as text).
func placeholders(ids []int64, at int, want map[int64]int64) error {
	got := map[int64]int64{}
	i := at
	for ; i < len(ids); i++ {
		if _, ok := want[ids[i]]; !ok {
			break
		}
		got[ids[i]]++
	}
	for id, n := range want {
		if got[id] != n {
			return fmt.Errorf("%w: %d placeholder tokens %d at position %d, but the media description gives %d", ErrInputs, got[id], id, at, n)
		}
	}
	return nil
}

// videoTimes is the time index of the current video's temporal patches:
// (arange(t) · second_per_grid · position_id_per_seconds) in float32,
// truncated, as transformers computes it.
func (w *walker) videoTimes() []int64 {
	g := w.in.VideoGridTHW[w.video]
	spg := w.in.VideoSecondPerGrid[w.video]
	out := make([]int64, g[0])
	for i := range out {
		x := float32(float32(i) * spg)
		x = float32(x * float32(w.c.PositionIDPerSeconds))
		out[i] = int64(x)
	}
	return out
}

// vision lays a grid out after the spatial merge, T-major:
// (t_index[i], h, w) + start for each merged patch.
func (w *walker) vision(start int64, tIndex []int64, g [3]int64) block {
	m := int64(w.c.Vision.SpatialMergeSize)
	gh, gw := g[1]/m, g[2]/m
	var bl block
	for _, t := range tIndex {
		for h := range gh {
			for x := range gw {
				bl[0] = append(bl[0], t+start)
				bl[1] = append(bl[1], h+start)
				bl[2] = append(bl[2], x+start)
			}
		}
	}
	return bl
}

func (b block) slice(r [2]int) block {
	var out block
	for a := range 3 {
		out[a] = b[a][r[0]:r[1]]
	}
	return out
}

// chunks is get_chunked_index: split the increasing positions v (minus
// base) where they reach each next multiple of per, one boundary per token.
func chunks(v []int64, per, base int64) [][2]int {
	var out [][2]int
	start, cur := 0, int64(1)
	for i := range v {
		if v[i]-base >= cur*per {
			out = append(out, [2]int{start, i})
			start = i
			cur++
		}
	}
	return append(out, [2]int{start, len(v)})
}
