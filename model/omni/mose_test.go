package omni

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
	"github.com/mose-llm/mose/model"
)

const inputsFile = "testdata/omni-a/inputs.safetensors"

// A processor-outputs file (video with its audio, an image, text) read by
// ReadBatch and run through the three towers and the decoder gives
// transformers' logits.
func TestReadBatchLogits(t *testing.T) {
	th := loadThinker(t, filepath.Join("testdata", "omni-a"), torch.Float32)
	fx := openFixture(t, "omni-a")
	want := fx.float32s("omni_prompt.logits")
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		b, err := ReadBatch(s, inputsFile)
		if err != nil {
			return err
		}
		if !b.Inputs.UseAudioInVideo || len(b.Inputs.AudioFeatureLens) != 1 || len(b.Inputs.VideoSecondPerGrid) != 1 {
			t.Fatalf("batch %+v", b.Inputs)
		}
		got, err := th.Logits(s, b.Inputs, th.Encode(s, b)).Float32s()
		if err == nil {
			err = s.Err()
		}
		if err != nil {
			return err
		}
		worst := maxAbs(got, want)
		t.Logf("max |logit - transformers| = %.3g", worst)
		if worst > 1e-4 {
			t.Errorf("max abs logit error %.3g", worst)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Processor-outputs files mose cannot read as such are refused by name.
func TestReadBatchRefusals(t *testing.T) {
	f, err := safetensors.Open(inputsFile)
	if err != nil {
		t.Fatal(err)
	}
	var base []safetensors.Tensor
	for _, info := range f.Tensors() {
		data, err := f.Read(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		base = append(base, safetensors.Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: data})
	}
	f.Close()
	for _, tc := range []struct {
		name string
		edit func([]safetensors.Tensor, map[string]string) []safetensors.Tensor
		want string
	}{
		{"unknown tensor", func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "audio_feature_lengths", DType: safetensors.I64, Shape: []int64{1}, Data: make([]byte, 8)})
		}, "audio_feature_lengths"},
		{"bad metadata", func(ts []safetensors.Tensor, m map[string]string) []safetensors.Tensor {
			m[MetaUseAudioInVideo] = "yes"
			return ts
		}, MetaUseAudioInVideo},
		{"unknown metadata", func(ts []safetensors.Tensor, m map[string]string) []safetensors.Tensor {
			m["fps"] = "2"
			return ts
		}, "fps"},
		{"no input_ids", func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor {
			return drop(ts, KeyInputIDs)
		}, KeyInputIDs},
		{"pixels without grid", func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor {
			return drop(ts, KeyImageGridTHW)
		}, KeyPixelValues},
		{"float ids", func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == KeyInputIDs {
					ts[i].DType = safetensors.F64
				}
			}
			return ts
		}, KeyInputIDs},
		{"mask of another shape", func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == KeyAttentionMask {
					ts[i].Shape = []int64{ts[i].Shape[1], ts[i].Shape[0]}
				}
			}
			return ts
		}, KeyAttentionMask},
		{"NaN pixels", func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == KeyPixelValues {
					copy(ts[i].Data, safetensors.Float32sToBytes([]float32{float32(math.NaN())}))
				}
			}
			return ts
		}, KeyPixelValues},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := make([]safetensors.Tensor, len(base))
			for i, x := range base {
				x.Data = append([]byte(nil), x.Data...)
				ts[i] = x
			}
			meta := map[string]string{MetaUseAudioInVideo: "true"}
			ts = tc.edit(ts, meta)
			path := filepath.Join(t.TempDir(), "in.safetensors")
			if err := safetensors.WriteFile(path, ts, meta); err != nil {
				t.Fatal(err)
			}
			err := torch.Run(func() error {
				s := torch.NewScope()
				defer s.Close()
				_, err := ReadBatch(s, path)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
			if !errors.Is(err, ErrInputs) {
				t.Errorf("err = %v, want ErrInputs", err)
			}
		})
	}
}

func drop(ts []safetensors.Tensor, name string) []safetensors.Tensor {
	var out []safetensors.Tensor
	for _, x := range ts {
		if x.Name != name {
			out = append(out, x)
		}
	}
	return out
}

// wireMoSE attaches MoSE experts to the decoder's targets, as the trainer
// attaches them to a LLaMA decoder.
func wireMoSE(t *testing.T, s *torch.Scope, d *model.Model, cfg experts.Config, rec *gating.Tracker) *experts.Set {
	t.Helper()
	var names []string
	byName := map[string]*model.Linear{}
	for _, l := range d.Linears() {
		names = append(names, l.Name)
		byName[l.Name] = l
	}
	sel, err := cfg.Select(names)
	if err != nil {
		t.Fatal(err)
	}
	var targets []experts.Target
	for _, n := range sel {
		targets = append(targets, experts.Target{Name: n, In: byName[n].In(), Out: byName[n].Out()})
	}
	rng := rand.New(rand.NewPCG(3, 3))
	set, err := experts.New(d.Device, targets, cfg, func(name string, in int64, groups []string, K []int) (experts.Gate, error) {
		return gating.NewGate(s, d.Device, name, in, groups, K, gating.Config{TopK: 1}, rng, 0.02, rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sel {
		byName[n].Adapter = set.Mixture(n)
	}
	t.Cleanup(func() {
		for _, n := range sel {
			byName[n].Adapter = nil
		}
	})
	return set
}

// MoSE on the thinker: image and video tokens are routed to the visual
// experts, audio and text tokens to the non-visual ones (the router
// telemetry counts them against the batch), and a few steps of training on
// the processor outputs lower the answer loss while the thinker stays
// frozen.
func TestMoSERoutesAndTrains(t *testing.T) {
	th := loadThinker(t, filepath.Join("testdata", "omni-a"), torch.Float32)
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		b, err := ReadBatch(s, inputsFile)
		if err != nil {
			return err
		}
		in := b.Inputs
		count := map[int64]float64{}
		for _, m := range th.Config.Modality(in) {
			count[m]++
		}
		if count[modality.Visual] == 0 || count[modality.Audio] == 0 {
			t.Fatalf("modality counts %v", count)
		}
		emb := th.Encode(s, b) // frozen towers: no grad reaches them
		rec := &gating.Tracker{}
		set := wireMoSE(t, s, th.Decoder, experts.Config{Method: "mose", Targets: []string{"q_proj", "v_proj"}, Rank: 4,
			Alpha: 8, VisualExperts: 3, NonVisualExperts: 2, OmniExperts: 1, Seed: 5}, rec)
		defer set.Close()

		// The answer: the last 3 text tokens, each predicted from the one before.
		T := int64(in.T)
		pos := s.FromInt64([]int64{T - 4, T - 3, T - 2}, 3)
		target := s.FromInt64(in.IDs[in.T-3:], 3)
		var losses []float64
		for step := range 8 {
			c := s.Child()
			rec.Reset()
			h := th.Forward(c, in, emb, true)
			loss := c.CrossEntropy(th.Decoder.Logits(c, h, pos), target, -100, torch.ReduceMean)
			if err := c.Err(); err != nil {
				c.Close()
				return err
			}
			if step == 0 {
				stats, err := rec.Snapshot(c)
				if err != nil {
					c.Close()
					return err
				}
				got := map[string]float64{}
				for _, g := range stats {
					got[g.Group] = g.Tokens
				}
				want := map[string]float64{experts.Visual: count[modality.Visual], experts.NonVisual: count[modality.Audio] + count[modality.Text]}
				for g, n := range want {
					if got[g] != n {
						t.Errorf("group %s routed %v tokens per instance, the batch has %v", g, got[g], n)
					}
				}
			}
			l, err := loss.Item()
			if err == nil {
				err = loss.Backward()
			}
			if err != nil {
				c.Close()
				return err
			}
			losses = append(losses, l)
			err = torch.NoGrad(func() error {
				u := s.Child()
				defer u.Close()
				for _, p := range set.Params() {
					g := u.Grad(p)
					if g == nil {
						continue
					}
					if err := p.CopyFrom(u.Sub(p, u.MulScalar(g, 0.5))); err != nil {
						return err
					}
					if err := p.ZeroGrad(); err != nil {
						return err
					}
				}
				return u.Err()
			})
			c.Close()
			if err != nil {
				return err
			}
		}
		t.Logf("answer loss over 8 steps: %.4f", losses)
		if !(losses[len(losses)-1] < 0.9*losses[0]) {
			t.Errorf("loss %v did not fall", losses)
		}
		for _, w := range []*torch.Tensor{th.Decoder.Layers[0].Q.Weight, th.Decoder.EmbedTokens, th.Audio["conv1.weight"], th.Vision["blocks.0.attn.q.weight"]} {
			if w.RequiresGrad() {
				t.Error("a frozen weight requires grad")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
