package omniproc

import (
	"math"
	"testing"

	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/safetensors"
)

// golden reads testdata/processor.safetensors, transformers 5.25's processor
// outputs written by scripts/fixtures/make_processor_fixtures.py.
type golden struct {
	t *testing.T
	f *safetensors.File
}

func openGolden(t *testing.T) *golden {
	f, err := safetensors.Open("testdata/processor.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &golden{t, f}
}

func (g *golden) raw(name string) ([]byte, []int64, safetensors.DType) {
	info, err := g.f.Info(name)
	if err != nil {
		g.t.Fatal(err)
	}
	b, err := g.f.Read(name)
	if err != nil {
		g.t.Fatal(err)
	}
	return b, info.Shape, info.DType
}

func (g *golden) floats(name string) []float32 {
	b, _, dt := g.raw(name)
	v := make([]float32, len(b)/4)
	if err := safetensors.DecodeFloat32s(v, b, dt); err != nil {
		g.t.Fatal(err)
	}
	return v
}

func (g *golden) ints(name string) []int64 {
	b, _, _ := g.raw(name)
	v, err := safetensors.BytesToInt64s(b)
	if err != nil {
		g.t.Fatal(err)
	}
	return v
}

// frames returns (n,) h, w, c uint8 frames.
func (g *golden) frames(name string) ([][]byte, int, int) {
	b, sh, _ := g.raw(name)
	if len(sh) == 3 {
		sh = append([]int64{1}, sh...)
	}
	n, h, w := int(sh[0]), int(sh[1]), int(sh[2])
	out := make([][]byte, n)
	for i := range out {
		out[i] = b[i*h*w*3 : (i+1)*h*w*3]
	}
	return out, h, w
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// smallBounds is the fixture's resize bounds (3136 to 12544 pixels).
func smallBounds(v Vision) Vision {
	v.MinPixels, v.MaxPixels = 3136, 12544
	return v
}

func TestGoldenVision(t *testing.T) {
	g := openGolden(t)
	for _, c := range []struct {
		name string
		v    Vision
	}{{"img_up", smallBounds(OmniImage)}, {"img_down", smallBounds(OmniImage)}, {"vid_up", smallBounds(OmniVideo)}, {"vid_down", smallBounds(OmniVideo)}} {
		frames, h, w := g.frames(c.name)
		got, err := c.v.Preprocess(frames, h, w)
		if err != nil {
			t.Fatal(err)
		}
		want, grid := g.floats(c.name+"_pixel_values"), g.ints(c.name+"_grid")
		if len(got.Values) != len(want) || got.Grid != [3]int64{grid[0], grid[1], grid[2]} {
			t.Errorf("%s: %d values, grid %v; want %d, %v", c.name, len(got.Values), got.Grid, len(want), grid)
			continue
		}
		if d := maxDiff(got.Values, want); d > 1e-3 {
			t.Errorf("%s: pixel values differ by %g (tolerance 1e-3)", c.name, d)
		}
	}
}

func TestGoldenProcessor(t *testing.T) {
	g := openGolden(t)
	tok, err := tokenizer.Load("omni-tiny-tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(tok)
	if err != nil {
		t.Fatal(err)
	}
	p.Video = smallBounds(p.Video)
	frames, h, w := g.frames("vid_up")
	o, err := p.Process(Sample{Video: &Frames{Width: w, Height: h, Frames: frames}, FPS: 2, Audio: g.floats("wave"),
		UseAudioInVideo: true, Text: "How?"})
	if err != nil {
		t.Fatal(err)
	}
	head, tail := g.floats("features_head"), g.floats("features_tail")[0]
	nh := len(head) / o.Bins
	var d float64
	for m := range o.Bins {
		for f := range o.Frames {
			want := tail
			if f < nh {
				want = head[m*nh+f]
			}
			d = math.Max(d, math.Abs(float64(o.Features[m*o.Frames+f]-want)))
		}
	}
	if d > 1e-4 {
		t.Errorf("input_features differ by %g (tolerance 1e-4)", d)
	}
	for name, pair := range map[string][2][]int64{"feature_attention_mask": {o.FeatureMask, g.ints("feature_mask")},
		"input_ids": {o.IDs, g.ints("input_ids")}, "video_grid_thw": {o.Video.Grid[:], g.ints("video_grid")}} {
		got, want := pair[0], pair[1]
		same := len(got) == len(want)
		for i := 0; same && i < len(got); i++ {
			same = got[i] == want[i]
		}
		if !same {
			t.Errorf("%s: %d values, differs from transformers' %d", name, len(got), len(want))
		}
	}
	t.Logf("input_features within %.2g; %d input_ids", d, len(o.IDs))
}
