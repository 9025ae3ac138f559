package experts_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
	"github.com/mose-llm/mose/model"
)

// loopMixture computes the same delta as Mixture.Delta the naive way: one
// matmul per group's A, and per expert a gate column and a matmul with its B.
// It exists to measure what fusing saves.
type loopMixture struct {
	m       *experts.Mixture
	scaling float64
}

func (l *loopMixture) Delta(s *torch.Scope, x, onehot *torch.Tensor, train bool) *torch.Tensor {
	m, r := l.m, int64(l.m.A.Size(0))/int64(len(l.m.Groups))
	var y *torch.Tensor
	slot, gateRow := int64(0), int64(0)
	for gi, g := range m.Groups {
		var mask *torch.Tensor // (B,T,1)
		switch g {
		case experts.Visual:
			mask = s.Narrow(onehot, -1, modality.Visual, 1)
		case experts.NonVisual:
			mask = s.Add(s.Narrow(onehot, -1, modality.Text, 1), s.Narrow(onehot, -1, modality.Audio, 1))
		default:
			mask = s.Sub(s.Ones([]int64{1}, torch.Float32, torch.CPU), s.Narrow(onehot, -1, modality.Pad, 1))
		}
		h := s.Linear(x, s.Narrow(m.A, 0, int64(gi)*r, r), nil) // (B,T,r)
		K := int64(m.K[gi])
		var p, hard *torch.Tensor
		if K > 1 {
			p = s.Softmax(s.Linear(x, s.Narrow(m.Gate.Weight(), 0, gateRow, K), nil), -1) // (B,T,K)
			_, idx := s.TopK(p, 1, -1)
			hard = s.OneHot(s.Squeeze(idx, -1), K)
			gateRow += K
		}
		for k := range K {
			d := s.Linear(h, s.Narrow(m.B, 1, (slot+k)*r, r), nil) // (B,T,out)
			c := s.MulScalar(mask, l.scaling)
			if K > 1 {
				pk := s.Narrow(p, -1, k, 1)
				c = s.Mul(c, s.Add(s.Sub(s.To(s.Narrow(hard, -1, k, 1), torch.Float32), s.Detach(pk)), pk))
			}
			d = s.Mul(d, c)
			if y == nil {
				y = d
			} else {
				y = s.Add(y, d)
			}
		}
		slot += K
	}
	return y
}

// BenchmarkStep times a forward and backward of a (2,256) batch (512 tokens:
// per row 64 visual, 1 audio, the rest text) through the `small` model on
// CPU float32, with adapters on q_proj and v_proj at r=16: plain LoRA, MoSE
// with K = 3/3/1 fused (two matmuls per target), and the same MoSE computed
// with a loop over groups and experts. scripts/bench/bench_mose.sh prints the ratios.
func BenchmarkStep(b *testing.B) {
	dir := os.Getenv("MOSE_BENCH_MODEL")
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "small")
		cfg := model.Config{ModelType: "llama", HiddenSize: 512, IntermediateSize: 1376, NumLayers: 8,
			NumHeads: 8, NumKVHeads: 4, RMSNormEps: 1e-5, RopeTheta: 10000, VocabSize: 670,
			MaxPositionEmbeddings: 2048, HiddenAct: "silu"}
		if err := model.WriteRandom(dir, cfg, model.RandomOptions{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	const B, T = 2, 256
	ids := make([]int64, B*T)
	mods := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64((i*7919 + 13) % 600)
		switch t := i % T; {
		case t >= 20 && t < 84:
			mods[i] = modality.Visual
		case t == 90:
			mods[i] = modality.Audio
		}
	}
	lora := experts.Config{Method: "lora", Targets: []string{"q_proj", "v_proj"}, Rank: 16, Alpha: 32}
	mose := experts.Config{Method: "mose", Targets: []string{"q_proj", "v_proj"}, Rank: 16, Alpha: 32,
		VisualExperts: 3, NonVisualExperts: 3, OmniExperts: 1}
	for _, c := range []struct {
		name string
		cfg  experts.Config
		loop bool
	}{{"lora", lora, false}, {"mose-fused", mose, false}, {"mose-loop", mose, true}} {
		b.Run(c.name, func(b *testing.B) {
			err := torch.Run(func() error {
				m, err := model.Load(dir, model.Options{})
				if err != nil {
					return err
				}
				defer m.Close()
				gates := torch.NewScope()
				defer gates.Close()
				rec := &gating.Tracker{}
				set := wire(b, gates, m, c.cfg, gating.Config{TopK: 1}, rec)
				defer set.Close()
				randomize(b, gates, set, 1, 0.02)
				if c.loop {
					for _, l := range m.Linears() {
						if mx, ok := l.Adapter.(*experts.Mixture); ok {
							l.Adapter = &loopMixture{m: mx, scaling: c.cfg.Scaling()}
						}
					}
				}
				in := torch.NewScope()
				defer in.Close()
				inputs := &model.Inputs{IDs: in.FromInt64(ids, B, T), Modality: in.FromInt64(mods, B, T)}
				step := func() error {
					s := torch.NewScope()
					defer s.Close()
					rec.Reset()
					h := m.Forward(s, inputs, true)
					loss := s.Mean(s.Square(m.Logits(s, s.Narrow(h, 1, T-8, 8), nil)))
					lb, z := rec.Losses(s, torch.CPU)
					loss = s.Add(loss, s.Add(s.MulScalar(lb, 0.01), s.MulScalar(z, 0.001)))
					if err := s.Err(); err != nil {
						return err
					}
					if err := loss.Backward(); err != nil {
						return err
					}
					for _, p := range set.Params() {
						if err := p.ZeroGrad(); err != nil {
							return err
						}
					}
					return nil
				}
				if err := step(); err != nil {
					return err
				}
				b.ResetTimer()
				for b.Loop() {
					if err := step(); err != nil {
						return err
					}
				}
				b.ReportMetric(float64(B*T)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}

// The loop variant must compute what the fused one does, or the benchmark
// compares different things.
func TestLoopMatchesFused(t *testing.T) {
	inTorch(t, func(s *torch.Scope) {
		cfg := experts.Config{Method: "mose", Targets: []string{"q_proj"}, Rank: 3, Alpha: 6,
			VisualExperts: 3, NonVisualExperts: 2, OmniExperts: 1}
		set, err := experts.New(torch.CPU, []experts.Target{{Name: "l.q_proj", In: 6, Out: 5}}, cfg,
			func(name string, in int64, groups []string, K []int) (experts.Gate, error) {
				return gating.NewGate(s, torch.CPU, name, in, groups, K, gating.Config{TopK: 1}, nil2(), 0.5, nil)
			})
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		randomize(t, s, set, 5, 0.5)
		x := s.Randn([]int64{2, 4, 6}, torch.Float32, torch.CPU)
		onehot := s.To(s.OneHot(s.FromInt64([]int64{0, 1, 2, 3, 1, 1, 0, 2}, 2, 4), 4), torch.Float32)
		fused := floats(t, set.Mixtures[0].Delta(s, x, onehot, false))
		loop := floats(t, (&loopMixture{m: set.Mixtures[0], scaling: cfg.Scaling()}).Delta(s, x, onehot, false))
		for i := range fused {
			if d := fused[i] - loop[i]; d > 1e-5 || d < -1e-5 {
				t.Fatalf("element %d: fused %v, loop %v", i, fused[i], loop[i])
			}
		}
	})
}
