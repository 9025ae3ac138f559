package omni

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

// The fixtures under testdata/omni-* come from transformers 5.25
// (scripts/fixtures/make_omni_fixtures.py): a tiny random thinker each, and
// per case the processor-named inputs with transformers' position ids and,
// for some cases, its logits with given encoder outputs.
var fixtureDirs = []string{"omni-a", "omni-b", "omni-c"}

// fixture is one config's expected.safetensors.
type fixture struct {
	t    *testing.T
	dir  string
	f    *safetensors.File
	meta map[string]string
}

func openFixture(t *testing.T, name string) *fixture {
	t.Helper()
	dir := filepath.Join("testdata", name)
	f, err := safetensors.Open(filepath.Join(dir, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &fixture{t: t, dir: dir, f: f, meta: f.Metadata()}
}

// cases lists the fixture's case names, sorted.
func (fx *fixture) cases() []string {
	var out []string
	for k := range fx.meta {
		if c, ok := strings.CutSuffix(k, ".use_audio_in_video"); ok {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

func (fx *fixture) has(key string) bool {
	_, err := fx.f.Info(key)
	return err == nil
}

func (fx *fixture) shape(key string) []int64 {
	info, err := fx.f.Info(key)
	if err != nil {
		fx.t.Fatal(err)
	}
	return info.Shape
}

func (fx *fixture) int64s(key string) []int64 {
	raw, err := fx.f.Read(key)
	if err != nil {
		fx.t.Fatal(err)
	}
	v, err := safetensors.BytesToInt64s(raw)
	if err != nil {
		fx.t.Fatal(err)
	}
	return v
}

func (fx *fixture) float32s(key string) []float32 {
	raw, err := fx.f.Read(key)
	if err != nil {
		fx.t.Fatal(err)
	}
	v, err := safetensors.BytesToFloat32s(raw)
	if err != nil {
		fx.t.Fatal(err)
	}
	return v
}

// inputs rebuilds a case's Inputs from the processor-named tensors.
func (fx *fixture) inputs(c string) *Inputs {
	sh := fx.shape(c + ".input_ids")
	in := &Inputs{B: int(sh[0]), T: int(sh[1]), IDs: fx.int64s(c + ".input_ids"), Mask: fx.int64s(c + ".attention_mask"),
		UseAudioInVideo: fx.meta[c+".use_audio_in_video"] == "true"}
	grids := func(key string) [][3]int64 {
		if !fx.has(key) {
			return nil
		}
		v := fx.int64s(key)
		out := make([][3]int64, len(v)/3)
		for i := range out {
			out[i] = [3]int64{v[3*i], v[3*i+1], v[3*i+2]}
		}
		return out
	}
	in.ImageGridTHW = grids(c + ".image_grid_thw")
	in.VideoGridTHW = grids(c + ".video_grid_thw")
	if fx.has(c + ".video_second_per_grid") {
		in.VideoSecondPerGrid = fx.float32s(c + ".video_second_per_grid")
	}
	if key := c + ".feature_attention_mask"; fx.has(key) {
		fam, L := fx.int64s(key), int(fx.shape(key)[1])
		for i := 0; i < len(fam); i += L {
			n := int64(0)
			for _, x := range fam[i : i+L] {
				n += x
			}
			in.AudioFeatureLens = append(in.AudioFeatureLens, n)
		}
	}
	return in
}

// audio returns a case's input_features and feature_attention_mask, or
// ok false when the case gives audio embeddings instead.
func (fx *fixture) audio(s *torch.Scope, c string) (AudioFeatures, bool) {
	if !fx.has(c + ".input_features") {
		return AudioFeatures{}, false
	}
	sh := fx.shape(c + ".input_features")
	return AudioFeatures{Features: s.FromFloat32(fx.float32s(c+".input_features"), sh...), Mask: fx.int64s(c + ".feature_attention_mask")}, true
}

// embeds returns a case's encoder outputs: the fixture's, or the audio
// tower's on the fixture's input_features.
func (fx *fixture) embeds(s *torch.Scope, th *Thinker, c string) Embeds {
	D := int64(th.Config.Text.HiddenSize)
	var emb Embeds
	for _, e := range []struct {
		key string
		dst **torch.Tensor
	}{{".audio_embeds", &emb.Audio}, {".image_embeds", &emb.Image}, {".video_embeds", &emb.Video}} {
		if fx.has(c + e.key) {
			v := fx.float32s(c + e.key)
			*e.dst = s.FromFloat32(v, int64(len(v))/D, D)
		}
	}
	if f, ok := fx.audio(s, c); ok {
		emb.Audio = th.AudioForward(s, f)
	}
	if px, g := fx.pixels(s, c, ".pixel_values", ".image_grid_thw"); px != nil {
		emb.Image = th.VisionForward(s, px, g)
	}
	if px, g := fx.pixels(s, c, ".pixel_values_videos", ".video_grid_thw"); px != nil {
		emb.Video = th.VisionForward(s, px, g)
	}
	return emb
}

// pixels returns a case's pixel values and grids, or nil.
func (fx *fixture) pixels(s *torch.Scope, c, key, grid string) (*torch.Tensor, [][3]int64) {
	if !fx.has(c + key) {
		return nil, nil
	}
	v := fx.int64s(c + grid)
	g := make([][3]int64, len(v)/3)
	for i := range g {
		g[i] = [3]int64{v[3*i], v[3*i+1], v[3*i+2]}
	}
	return s.FromFloat32(fx.float32s(c+key), fx.shape(c+key)...), g
}
