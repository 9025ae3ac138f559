package omni

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

func loadFixtureConfig(t *testing.T, name string) Config {
	t.Helper()
	cfg, err := LoadConfig(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// RopeIndex gives transformers' get_rope_index position ids and deltas
// exactly, for every layout of every fixture.
func TestRopeIndexMatchesTransformers(t *testing.T) {
	for _, name := range fixtureDirs {
		cfg := loadFixtureConfig(t, name)
		fx := openFixture(t, name)
		cs := fx.cases()
		if len(cs) < 8 {
			t.Fatalf("%s: %d cases", name, len(cs))
		}
		for _, c := range cs {
			if !fx.has(c + ".position_ids") {
				continue
			}
			t.Run(name+"/"+c, func(t *testing.T) {
				in := fx.inputs(c)
				got, err := cfg.RopeIndex(in)
				if err != nil {
					t.Fatal(err)
				}
				want := fx.int64s(c + ".position_ids") // (3,B,T)
				n := in.B * in.T
				for a := range 3 {
					if !slices.Equal(got.Pos[a], want[a*n:(a+1)*n]) {
						t.Errorf("axis %d:\n got %v\nwant %v", a, got.Pos[a], want[a*n:(a+1)*n])
					}
				}
				if d := fx.int64s(c + ".rope_deltas"); !slices.Equal(got.Delta, d) {
					t.Errorf("rope deltas %v, want %v", got.Delta, d)
				}
			})
		}
	}
}

// The check above can fail: a changed time scale, chunk size or grid
// moves the positions.
func TestRopeIndexDetectsChanges(t *testing.T) {
	cfg := loadFixtureConfig(t, "omni-a")
	fx := openFixture(t, "omni-a")
	for _, tc := range []struct {
		name string
		c    string
		edit func(*Config, *Inputs)
	}{
		{"position_id_per_seconds", "video", func(c *Config, _ *Inputs) { c.PositionIDPerSeconds = 24 }},
		{"seconds_per_chunk", "audio_in_video_long", func(c *Config, _ *Inputs) { c.SecondsPerChunk = 1 }},
		{"second_per_grid", "video_frac", func(_ *Config, in *Inputs) { in.VideoSecondPerGrid[0] = 0.71 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, in := cfg, fx.inputs(tc.c)
			tc.edit(&c, in)
			got, err := c.RopeIndex(in)
			if err != nil {
				return // refused: also a detection
			}
			want := fx.int64s(tc.c + ".position_ids")
			if slices.Equal(slices.Concat(got.Pos[0], got.Pos[1], got.Pos[2]), want) {
				t.Error("positions unchanged")
			}
		})
	}
}

// Inputs whose media descriptions disagree with the tokens are refused.
func TestRopeIndexRefusesBadInputs(t *testing.T) {
	cfg := loadFixtureConfig(t, "omni-a")
	fx := openFixture(t, "omni-a")
	for _, tc := range []struct {
		name string
		c    string
		edit func(*Inputs)
	}{
		{"no grid for the image", "image", func(in *Inputs) { in.ImageGridTHW = [][3]int64{{1, 2, 2}, {1, 2, 2}} }},
		{"grid too small", "image", func(in *Inputs) { in.ImageGridTHW[0] = [3]int64{1, 2, 2} }},
		{"odd grid", "image", func(in *Inputs) { in.ImageGridTHW[0] = [3]int64{1, 3, 6} }},
		{"huge grid", "video", func(in *Inputs) { in.VideoGridTHW[0] = [3]int64{1 << 40, 4, 4} }},
		{"grid of 2^34 patches", "image", func(in *Inputs) { in.ImageGridTHW[0] = [3]int64{MaxGrid, MaxGrid, MaxGrid} }},
		{"audio of 2^20 frames", "audio_image", func(in *Inputs) { in.AudioFeatureLens[0] = MaxSourceFrames }},
		{"no second_per_grid", "video", func(in *Inputs) { in.VideoSecondPerGrid = nil }},
		{"negative second_per_grid", "video", func(in *Inputs) { in.VideoSecondPerGrid[0] = -1 }},
		{"audio length disagrees", "audio_image", func(in *Inputs) { in.AudioFeatureLens[0] += 8 }},
		{"missing audio length", "audio_image", func(in *Inputs) { in.AudioFeatureLens = nil }},
		{"extra audio length", "audio_image", func(in *Inputs) { in.AudioFeatureLens = append(in.AudioFeatureLens, 20) }},
		{"ids of the wrong length", "text", func(in *Inputs) { in.IDs = in.IDs[1:] }},
		{"vision bos at the end", "image", func(in *Inputs) { in.IDs[len(in.IDs)-1] = int64(cfg.Tokens.VisionStart) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := fx.inputs(tc.c)
			tc.edit(in)
			if _, err := cfg.RopeIndex(in); !errors.Is(err, ErrInputs) {
				t.Fatalf("err = %v, want ErrInputs", err)
			}
		})
	}
}

// AudioTokens floors as torch does (a clip of 1 or 2 frames gives none).
func TestAudioTokens(t *testing.T) {
	for _, tc := range []struct{ n, want int64 }{{1, 0}, {2, 0}, {3, 1}, {4, 1}, {7, 2}, {100, 25}, {3000, 750}} {
		if got := AudioTokens(tc.n); got != tc.want {
			t.Errorf("AudioTokens(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}
