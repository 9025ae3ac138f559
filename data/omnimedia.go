package data

import (
	"fmt"

	"github.com/mose-llm/mose/data/procout"

	"github.com/mose-llm/mose/data/cas"
)

// An omni dataset's media samples (video, audio, image files instead of a
// processor-outputs file): their processor outputs made through
// Options.Media, the content keys of the encoder-output cache, and each
// batch row's share of a batch's media.

// MediaRow is one batch row's share of a batch's media and its sample's
// content key (Dataset.OmniKey; "" without one).
type MediaRow struct {
	Key                    string
	Images, Videos, Audios int

	load func() (*Media, error) // the row's sample's media alone (Row of a Deferred batch)
}

// sampleMedia is dataset sample i's media alone, as a one-row Media.
func (d *Dataset) sampleMedia(i int) (*Media, error) {
	h := d.omni[i].h
	got, err := h.Media()
	if err == nil {
		m := &Media{Rows: []MediaRow{{Key: d.omni[i].key, Images: len(h.ImageGridTHW), Videos: len(h.VideoGridTHW), Audios: len(h.AudioLens)}}}
		if err = m.add(h, got); err == nil {
			m.pad()
			return m, nil
		}
	}
	s := &d.Samples[i]
	return nil, &SampleError{File: d.Manifest, Line: s.Line, ID: s.ID, Path: s.samplePath(), Err: err}
}

// addLayout appends a sample's grids and audio lengths without its pixels
// and features (a Deferred batch).
func (m *Media) addLayout(h *procout.Header) {
	if len(h.VideoGridTHW) > 0 {
		m.UseAudioInVideo = h.UseAudioInVideo
	}
	m.ImageGridTHW = append(m.ImageGridTHW, h.ImageGridTHW...)
	m.VideoGridTHW = append(m.VideoGridTHW, h.VideoGridTHW...)
	m.VideoSecondPerGrid = append(m.VideoSecondPerGrid, h.VideoSecondPerGrid...)
	m.AudioLens = append(m.AudioLens, h.AudioLens...)
}

// prepareMedia makes the processor outputs of the media samples
// (opt.Media), adding each failure to probs; the result is indexed by
// sample (zero for an "inputs" sample).
func (d *Dataset) prepareMedia(opt Options, probs *Problems) ([]MediaResult, error) {
	var items []MediaFiles
	var idx []int
	out := make([]MediaResult, len(d.Samples))
	for i := range d.Samples {
		s := &d.Samples[i]
		if !s.HasMedia() {
			continue
		}
		f := MediaFiles{Subtitle: s.Subtitle}
		var err error
		for _, m := range []struct {
			rel string
			dst *string
		}{{s.Video, &f.Video}, {s.Audio, &f.Audio}, {s.Image, &f.Image}} {
			if m.rel == "" || err != nil {
				continue
			}
			*m.dst, err = d.root.Resolve(m.rel)
		}
		if err == nil && opt.Media == nil {
			err = fmt.Errorf("%w: a media sample needs a Qwen2.5-Omni model's processor", ErrSpec)
		}
		if err != nil {
			out[i].Err = err
			probs.Add(&SampleError{File: d.Manifest, Line: s.Line, ID: s.ID, Path: s.samplePath(), Err: err})
			continue
		}
		items = append(items, f)
		idx = append(idx, i)
	}
	if len(items) == 0 {
		return out, nil
	}
	for k, r := range opt.Media.Prepare(items) {
		i := idx[k]
		out[i] = r
		if r.Err != nil {
			s := &d.Samples[i]
			probs.Add(&SampleError{File: d.Manifest, Line: s.Line, ID: s.ID, Path: s.samplePath(), Err: r.Err})
		}
	}
	return out, nil
}

// hashInputs sets the content key of every "inputs" sample: the SHA-256
// of its file.
func (d *Dataset) hashInputs(workers int) error {
	errs := eachSample(len(d.Samples), workers, func(i int, _ *featureScratch) error {
		if d.omni[i].key != "" {
			return nil
		}
		k, err := cas.HashFile("omni.inputs", d.paths[i][0])
		if err != nil {
			s := &d.Samples[i]
			return &SampleError{File: d.Manifest, Line: s.Line, ID: s.ID, Path: s.Inputs, Err: err}
		}
		d.omni[i].key = k
		return nil
	})
	var p Problems
	for _, err := range errs {
		p.Add(err)
	}
	return p.Err()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ContentFingerprint extends fp (the SHA-256 of the manifest) with the
// content key of every media sample, which covers its files' bytes and the
// processing settings a manifest names only by path: a changed clip or
// data.fps changes the fingerprint. fp is returned as is without media
// samples.
func (d *Dataset) ContentFingerprint(fp string) string {
	var h *cas.Hasher
	for i := range d.Samples {
		if d.omni == nil || !d.Samples[i].HasMedia() {
			continue
		}
		if h == nil {
			h = cas.NewHasher("data.fingerprint/v1")
			h.String("manifest", fp)
		}
		h.String("sample", d.omni[i].key)
	}
	if h == nil {
		return fp
	}
	return h.Sum()
}

// Row is batch row r's media alone (Rows[r]'s images, videos and audios;
// the audios padded to their own longest), for running the towers on one
// sample.
func (m *Media) Row(r int) (*Media, error) {
	if r < 0 || r >= len(m.Rows) {
		return nil, fmt.Errorf("data: Media.Row %d of %d", r, len(m.Rows))
	}
	if m.Deferred {
		if m.Rows[r].load == nil {
			return nil, fmt.Errorf("data: Media.Row %d: the batch's media were not read", r)
		}
		return m.Rows[r].load()
	}
	var im, v, a int
	var pix, vid int64
	rows := func(gs [][3]int64) (n int64) {
		for _, g := range gs {
			n += g[0] * g[1] * g[2]
		}
		return n
	}
	for _, row := range m.Rows[:r] {
		pix += rows(m.ImageGridTHW[im : im+row.Images])
		vid += rows(m.VideoGridTHW[v : v+row.Videos])
		im, v, a = im+row.Images, v+row.Videos, a+row.Audios
	}
	row := m.Rows[r]
	if im+row.Images > len(m.ImageGridTHW) || v+row.Videos > len(m.VideoGridTHW) || a+row.Audios > len(m.AudioLens) {
		return nil, fmt.Errorf("data: a batch's media rows disagree with its media")
	}
	out := &Media{PixelDim: m.PixelDim, VideoDim: m.VideoDim, Mel: m.Mel, UseAudioInVideo: m.UseAudioInVideo,
		ImageGridTHW: m.ImageGridTHW[im : im+row.Images], VideoGridTHW: m.VideoGridTHW[v : v+row.Videos],
		AudioLens: m.AudioLens[a : a+row.Audios], Rows: []MediaRow{row}}
	if row.Videos > 0 {
		out.VideoSecondPerGrid = m.VideoSecondPerGrid[v : v+row.Videos]
	}
	if n := rows(out.ImageGridTHW); n > 0 {
		out.Pixels = m.Pixels[pix*int64(m.PixelDim) : (pix+n)*int64(m.PixelDim)]
	}
	if n := rows(out.VideoGridTHW); n > 0 {
		out.Videos = m.Videos[vid*int64(m.VideoDim) : (vid+n)*int64(m.VideoDim)]
	}
	if row.Audios > 0 {
		L := int64(0)
		for _, n := range out.AudioLens {
			L = max(L, n)
		}
		out.Frames = int(L)
		out.Features = make([]float32, int64(row.Audios)*int64(m.Mel)*L)
		for k, n := range out.AudioLens {
			for b := range m.Mel {
				src := ((a+k)*m.Mel + b) * m.Frames
				dst := (k*m.Mel + b) * out.Frames
				copy(out.Features[dst:dst+int(n)], m.Features[src:src+int(n)])
			}
		}
	}
	return out, nil
}
