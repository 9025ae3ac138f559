package omni

import (
	"encoding/json"
	"math"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

// The presets write directories that read back as the same config and load
// and run: omni-tiny in float32 and bfloat16.
func TestWriteRandomPreset(t *testing.T) {
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.BF16} {
		t.Run(string(dt), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			want := Presets["omni-tiny"]
			if err := WriteRandom(dir, want, 3, 0.02, dt); err != nil {
				t.Fatal(err)
			}
			got, err := LoadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(want)
			if string(a) != string(b) {
				t.Fatalf("config read back as\n%s\nwant\n%s", a, b)
			}
			run := torch.Float32
			if dt == safetensors.BF16 {
				run = torch.BFloat16
			}
			th := loadThinker(t, dir, run)
			tok := th.Config.Tokens
			ids := []int64{1, 2, int64(tok.AudioStart), int64(tok.Audio), int64(tok.AudioEnd), 3, int64(tok.VisionStart),
				int64(tok.Image), int64(tok.VisionEnd), 4}
			in := &Inputs{B: 1, T: len(ids), IDs: ids, ImageGridTHW: [][3]int64{{1, 2, 2}}, AudioFeatureLens: []int64{4}}
			err = torch.Run(func() error {
				s := torch.NewScope()
				defer s.Close()
				D := int64(th.Config.Text.HiddenSize)
				emb := Embeds{Audio: s.Randn([]int64{1, D}, torch.Float32, torch.CPU), Image: s.Randn([]int64{1, D}, torch.Float32, torch.CPU)}
				v, err := s.To(th.Logits(s, in, emb), torch.Float32).Float32s()
				if err != nil {
					return err
				}
				for _, x := range v {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						t.Fatal("non-finite logits")
					}
				}
				return s.Err()
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// WriteRandom refuses what it cannot write and leaves nothing behind.
func TestWriteRandomRefusals(t *testing.T) {
	bad := Presets["omni-tiny"]
	bad.Text.MRopeSection = []int{1, 1, 1}
	for _, tc := range []struct {
		name string
		cfg  Config
		std  float64
		dt   safetensors.DType
	}{
		{"invalid config", bad, 0.02, safetensors.F32},
		{"dtype", Presets["omni-tiny"], 0.02, safetensors.I64},
		{"std", Presets["omni-tiny"], -1, safetensors.F32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			if err := WriteRandom(dir, tc.cfg, 1, tc.std, tc.dt); err == nil {
				t.Fatal("accepted")
			}
			if _, err := LoadConfig(dir); err == nil {
				t.Error("left a config behind")
			}
		})
	}
}
