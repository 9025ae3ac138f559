package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/cas"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
)

// EncCache is the encoder-output stage of the data cache: what the frozen
// towers return for one sample (its audio, image and video embeddings, in
// the order Encode returns them) at <Store.Dir>/<key>.safetensors, key =
// SHA-256(the sample's content key — its processor cache key, or its
// "inputs" file's SHA-256 —, the towers' weights hash, the run dtype, the
// device type). Entries are float32 (a bfloat16 or float16 run's values
// round-trip exactly) with a payload checksum. An entry is used only when
// its checksum, its shapes (implied by the sample's grids and audio
// lengths) and its values (all finite) pass; a bad one is reported,
// removed and recomputed.
type EncCache struct {
	Store  cas.Store
	Towers string // omni.TowersHash of the model
	DType  torch.DType
	Device string // the device type: cpu or cuda
	Warn   func(string)
	// Off (data.encoder_cache false) reads and writes no entry: every row
	// is encoded alone, as for a miss, and nothing is stored.
	Off bool

	// Hits and Misses count rows served from and written to the cache.
	Hits, Misses atomic.Int64
}

// encNames are an entry's tensors, one per tower output.
var encNames = [3]string{"audio", "image", "video"}

// maxEncBytes bounds an entry read back: 2^28 float32 values per output.
const maxEncBytes = 3 * 4 << 28

// newEncCache is the encoder-output cache of c's recipe and model.
func (c *Stack) newEncCache() (*EncCache, error) {
	dir, err := DataCacheDir(c.Cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: data.cache_dir: %v", recipes.ErrRecipe, err)
	}
	towers, err := omni.TowersHash(c.Cfg.Model.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, c.Cfg.Model.Path, err)
	}
	dt, err := torch.ParseDType(c.Cfg.Model.DType)
	if err != nil {
		return nil, err
	}
	dev := "cpu"
	if c.Dev.IsCUDA() {
		dev = "cuda"
	}
	return &EncCache{Store: cas.Store{Dir: filepath.Join(dir, "enc")}, Towers: towers, DType: dt, Device: dev, Warn: DataHooks.Warn,
		Off: !c.Cfg.Data.EncoderCache}, nil
}

// Key is the entry key of a sample with content key content.
func (e *EncCache) Key(content string) string {
	h := cas.NewHasher("omni.enc/v1")
	h.String("content", content)
	h.String("towers", e.Towers)
	h.String("dtype", e.DType.String())
	h.String("device", e.Device)
	return h.Sum()
}

// Has reports whether the entry of the sample with content key content is
// there (not yet verified: a bad one is refused when read, and the
// sample's media are read then).
func (e *EncCache) Has(content string) bool {
	if e.Off {
		return false
	}
	st, err := os.Stat(e.Store.Path(e.Key(content)))
	return err == nil && st.Mode().IsRegular()
}

// rowShape is the encoder outputs one row's media give: rows of each of
// audio, image, video (0: none).
type rowShape [3]int64

// rowShapes are the encoder-output rows of each batch row's media.
func rowShapes(oc omni.Config, m *data.Media) ([]rowShape, error) {
	merge := int64(oc.Vision.SpatialMergeSize * oc.Vision.SpatialMergeSize)
	out := make([]rowShape, len(m.Rows))
	var a, im, v int
	for r, row := range m.Rows {
		if a+row.Audios > len(m.AudioLens) || im+row.Images > len(m.ImageGridTHW) || v+row.Videos > len(m.VideoGridTHW) {
			return nil, fmt.Errorf("stack: a batch's media rows disagree with its media")
		}
		for _, n := range m.AudioLens[a : a+row.Audios] {
			out[r][0] += omni.AudioTokens(n)
		}
		for _, g := range m.ImageGridTHW[im : im+row.Images] {
			out[r][1] += g[0] * g[1] * g[2] / merge
		}
		for _, g := range m.VideoGridTHW[v : v+row.Videos] {
			out[r][2] += g[0] * g[1] * g[2] / merge
		}
		a, im, v = a+row.Audios, im+row.Images, v+row.Videos
	}
	return out, nil
}

// outDims are the columns of the audio, image and video outputs.
func outDims(oc omni.Config) [3]int64 {
	return [3]int64{int64(oc.Audio.OutputDim), int64(oc.Vision.OutHiddenSize), int64(oc.Vision.OutHiddenSize)}
}

// load reads the entry of key, checking it against want; ok false (after
// removing a bad entry, with a warning) when it is missing or bad.
func (e *EncCache) load(key string, want rowShape, dims [3]int64) (vals [3][]float32, ok bool) {
	path := e.Store.Path(key)
	ts, _, err := cas.Read(path, maxEncBytes)
	if errors.Is(err, os.ErrNotExist) {
		return vals, false
	}
	if err == nil {
		err = checkEntry(ts, want, dims, &vals)
	}
	if err != nil {
		if e.Warn != nil {
			e.Warn(fmt.Sprintf("encoder cache: %s: %v: removed, recomputing", path, err))
		}
		os.Remove(path)
		return vals, false
	}
	return vals, true
}

// checkEntry checks an entry's tensors against the shapes the sample's
// media imply (rows × dims, float32, finite) and decodes them into vals.
func checkEntry(ts []safetensors.Tensor, want rowShape, dims [3]int64, vals *[3][]float32) error {
	seen := 0
	for _, t := range ts {
		k := slices.Index(encNames[:], t.Name)
		if k < 0 {
			return fmt.Errorf("%w: tensor %q is not an encoder output", cas.ErrCorrupt, t.Name)
		}
		if t.DType != safetensors.F32 || !slices.Equal(t.Shape, []int64{want[k], dims[k]}) {
			return fmt.Errorf("%w: %s is %s %v, the sample's media give F32 [%d %d]", cas.ErrCorrupt, t.Name, t.DType, t.Shape, want[k], dims[k])
		}
		v, err := safetensors.BytesToFloat32s(t.Data)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", cas.ErrCorrupt, t.Name, err)
		}
		for i, x := range v {
			if x-x != 0 {
				return fmt.Errorf("%w: %s: non-finite value %v at element %d", cas.ErrCorrupt, t.Name, x, i)
			}
		}
		vals[k] = v
		seen++
	}
	for k, n := range want {
		if n > 0 && vals[k] == nil {
			return fmt.Errorf("%w: no %s output, the sample's media give %d rows", cas.ErrCorrupt, encNames[k], n)
		}
	}
	return nil
}

// store writes one row's outputs (vals[k]: want[k] × dims[k] values).
func (e *EncCache) store(key string, want rowShape, dims [3]int64, vals [3][]float32) error {
	return cas.Write(e.Store.Path(key), entryTensors(want, dims, vals), map[string]string{"format": "pt"})
}

// omniEmbeds is the towers' outputs for batch b. With the encoder-output
// cache (every row with a content key), each row's outputs come from its
// entry when it is there and sound, else from the towers run on that
// sample alone (under no-grad), written to its entry: a sample's outputs
// never depend on the batch it came in. Without it, the towers run on the
// whole batch. The outputs are owned by s.
func (c *Stack) omniEmbeds(s *torch.Scope, b *data.Batch, in *omni.Inputs) (omni.Embeds, error) {
	var emb omni.Embeds
	m := b.Media
	e := c.Enc
	cached := e != nil && len(m.Rows) == b.B
	for _, r := range m.Rows {
		cached = cached && r.Key != ""
	}
	if !cached {
		err := torch.NoGrad(func() error {
			emb = c.Omni.Encode(s, omniMediaBatch(s, in, m, c.Dev))
			return s.Err()
		})
		return emb, err
	}
	oc := c.Omni.Config
	shapes, err := rowShapes(oc, m)
	if err != nil {
		return emb, err
	}
	dims := outDims(oc)
	var parts [3][]float32
	done := map[string][3][]float32{} // score rows share their sample's outputs
	for r, row := range m.Rows {
		key := e.Key(row.Key)
		vals, ok := done[key]
		if !ok {
			if !e.Off {
				vals, ok = e.load(key, shapes[r], dims)
			}
			switch {
			case ok:
				e.Hits.Add(1)
			case e.Off:
				if vals, err = c.encodeRow(m, r); err != nil {
					return emb, err
				}
			default:
				if vals, err = c.encodeRow(m, r); err != nil {
					return emb, err
				}
				if err := checkEntry(entryTensors(shapes[r], dims, vals), shapes[r], dims, &[3][]float32{}); err != nil {
					return emb, fmt.Errorf("the towers' outputs for sample row %d: %w", r, err)
				}
				if err := e.store(key, shapes[r], dims, vals); err != nil {
					return emb, fmt.Errorf("encoder cache: %w", err)
				}
				e.Misses.Add(1)
			}
			done[key] = vals
		}
		for k := range parts {
			parts[k] = append(parts[k], vals[k]...)
		}
	}
	for k, dst := range []**torch.Tensor{&emb.Audio, &emb.Image, &emb.Video} {
		if len(parts[k]) == 0 {
			continue
		}
		t := s.FromFloat32(parts[k], int64(len(parts[k]))/dims[k], dims[k])
		if e.DType != torch.Float32 {
			t = s.To(t, e.DType)
		}
		if c.Dev != torch.CPU {
			t = s.ToDevice(t, c.Dev)
		}
		*dst = t
	}
	return emb, s.Err()
}

// encodeRow runs the towers on batch row r's media alone: its outputs as
// float32 (audio, image, video).
func (c *Stack) encodeRow(m *data.Media, r int) ([3][]float32, error) {
	var out [3][]float32
	rm, err := m.Row(r)
	if err != nil {
		return out, err
	}
	s := torch.NewScope()
	defer s.Close()
	in := &omni.Inputs{B: 1, ImageGridTHW: rm.ImageGridTHW, VideoGridTHW: rm.VideoGridTHW, VideoSecondPerGrid: rm.VideoSecondPerGrid,
		AudioFeatureLens: rm.AudioLens, UseAudioInVideo: rm.UseAudioInVideo}
	var emb omni.Embeds
	if err := torch.NoGrad(func() error {
		emb = c.Omni.Encode(s, omniMediaBatch(s, in, rm, c.Dev))
		return s.Err()
	}); err != nil {
		return out, err
	}
	for k, t := range []*torch.Tensor{emb.Audio, emb.Image, emb.Video} {
		if t == nil {
			continue
		}
		if out[k], err = t.Float32s(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// entryTensors are an entry's tensors: vals[k] as want[k] × dims[k].
func entryTensors(want rowShape, dims [3]int64, vals [3][]float32) []safetensors.Tensor {
	var ts []safetensors.Tensor
	for k, n := range want {
		if n == 0 {
			continue
		}
		ts = append(ts, safetensors.Tensor{Name: encNames[k], DType: safetensors.F32, Shape: []int64{n, dims[k]},
			Data: safetensors.Float32sToBytes(vals[k])})
	}
	return ts
}
