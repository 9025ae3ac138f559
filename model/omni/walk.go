package omni

import (
	"fmt"
	"slices"
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
			if err := fits(ids, minEd, al); err != nil {
				return out, err
			}
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
			if err := fits(ids, minEd, w.gridTokens(g)); err != nil {
				return out, err
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
			if err := fits(ids, minEd, w.gridTokens(in.VideoGridTHW[w.video])); err != nil {
				return out, err
			}
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
			if err := fits(ids, minEd, al+w.gridTokens(in.VideoGridTHW[w.video])); err != nil {
				return out, err
			}
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

// fits refuses media that would place more tokens than the row has left
// after position at: checked before any of their positions is made, so
// that a grid of absurd size allocates nothing.
func fits(ids []int64, at int, n int64) error {
	if n < 0 || n > int64(len(ids)-at) {
		return fmt.Errorf("%w: media of %d tokens at position %d of a %d-token row", ErrInputs, n, at, len(ids))
	}
	return nil
}

// gridTokens is the number of merged patches of a grid.
func (w *walker) gridTokens(g [3]int64) int64 {
	m := int64(w.c.Vision.SpatialMergeSize)
	return g[0] * (g[1] / m) * (g[2] / m)
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
