package experts_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
)

// naiveDelta is the reference: for every token, group and expert, in float64,
// with nothing fused.
func naiveDelta(t *testing.T, m *experts.Mixture, cfg experts.Config, gcfg gating.Config, wv, wn float64,
	x []float64, mods []int, B, T int) []float64 {
	in, out, r := int(m.In), int(m.Out), cfg.Rank
	A := floats(t, m.A)  // (G·r, in)
	Bm := floats(t, m.B) // (out, E·r)
	var gate []float64
	if m.Gate != nil {
		gate = floats(t, m.Gate.Weight()) // (ΣKg, in)
	}
	E := 0
	for _, k := range m.K {
		E += k
	}
	tau := gcfg.Temperature
	if tau == 0 {
		tau = 1
	}
	y := make([]float64, B*T*out)
	for tok := range B * T {
		xt := x[tok*in : (tok+1)*in]
		mod := mods[tok]
		slot, gateRow := 0, 0
		for gi, g := range m.Groups {
			K := m.K[gi]
			var w float64
			switch {
			case mod == modality.Pad:
			case g == experts.Visual && mod == modality.Visual:
				w = wv
			case g == experts.NonVisual && (mod == modality.Text || mod == modality.Audio):
				w = wn
			case g == experts.Omni:
				w = 1
			}
			coef := make([]float64, K)
			if K == 1 {
				coef[0] = 1
			} else {
				logits := make([]float64, K)
				for k := range K {
					for i := range in {
						logits[k] += gate[(gateRow+k)*in+i] * xt[i]
					}
					logits[k] /= tau
				}
				p := softmax(logits)
				if gcfg.TopK == 0 {
					coef = p
				} else {
					best := 0
					for k := range K {
						if p[k] > p[best] {
							best = k
						}
					}
					coef[best] = 1
				}
				gateRow += K
			}
			h := make([]float64, r) // A_g x
			for j := range r {
				for i := range in {
					h[j] += A[(gi*r+j)*in+i] * xt[i]
				}
			}
			for k := range K {
				for o := range out {
					var acc float64
					for j := range r {
						acc += Bm[o*E*r+(slot+k)*r+j] * h[j]
					}
					y[tok*out+o] += cfg.Scaling() * w * coef[k] * acc
				}
			}
			slot += K
		}
	}
	return y
}

func softmax(z []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v)
	}
	var sum float64
	p := make([]float64, len(z))
	for i, v := range z {
		p[i] = math.Exp(v - m)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// TestFusedMatchesNaive compares the two-matmul Delta with the loop
// reference on random inputs covering all modalities and padding, with
// unequal expert counts (so the gate pads), top-1 and dense gates.
func TestFusedMatchesNaive(t *testing.T) {
	cases := []struct {
		name string
		cfg  experts.Config
		gcfg gating.Config
	}{
		{"mose top-1", experts.Config{Method: "mose", Targets: []string{"q_proj"}, Rank: 3, Alpha: 6,
			VisualExperts: 3, NonVisualExperts: 2, OmniExperts: 1}, gating.Config{TopK: 1}},
		{"mose dense τ=0.7 rslora", experts.Config{Method: "mose", Targets: []string{"q_proj"}, Rank: 4, Alpha: 3, RSLoRA: true,
			VisualExperts: 2, NonVisualExperts: 3, OmniExperts: 2}, gating.Config{TopK: 0, Temperature: 0.7}},
		{"mose no omni", experts.Config{Method: "mose", Targets: []string{"q_proj"}, Rank: 2, Alpha: 2,
			VisualExperts: 1, NonVisualExperts: 2}, gating.Config{TopK: 1}},
		{"lora", experts.Config{Method: "lora", Targets: []string{"q_proj"}, Rank: 3, Alpha: 5}, gating.Config{}},
	}
	const B, T, in, out = 2, 6, 7, 5
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float64, B*T*in)
	for i := range x {
		x[i] = float64(float32(rng.NormFloat64()))
	}
	mods := []int{modality.Text, modality.Visual, modality.Visual, modality.Audio, modality.Text, modality.Pad, modality.Visual, modality.Text, modality.Audio, modality.Visual, modality.Pad, modality.Pad}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inTorch(t, func(s *torch.Scope) {
				rng := rand.New(rand.NewPCG(1, 1))
				set, err := experts.New(torch.CPU, []experts.Target{{Name: "l.q_proj", In: in, Out: out}}, c.cfg,
					func(name string, in int64, groups []string, K []int) (experts.Gate, error) {
						return gating.NewGate(s, torch.CPU, name, in, groups, K, c.gcfg, rng, 0.02, nil)
					})
				if err != nil {
					t.Fatal(err)
				}
				defer set.Close()
				randomize(t, s, set, 7, 0.5)
				const wv, wn = 1.3, 0.6
				if err := set.SetModalityWeights(wv, wn); err != nil {
					t.Fatal(err)
				}
				xf := make([]float32, len(x))
				for i, v := range x {
					xf[i] = float32(v)
				}
				ids := make([]int64, len(mods))
				for i, m := range mods {
					ids[i] = int64(m)
				}
				onehot := s.To(s.OneHot(s.FromInt64(ids, B, T), 4), torch.Float32)
				m := set.Mixtures[0]
				got := floats(t, m.Delta(s, s.FromFloat32(xf, B, T, in), onehot, false))
				want := naiveDelta(t, m, c.cfg, c.gcfg, wv, wn, x, mods, B, T)
				var worst float64
				for i := range want {
					worst = math.Max(worst, math.Abs(got[i]-want[i]))
				}
				t.Logf("max |fused - naive| = %.3g", worst)
				if worst > 1e-5 {
					t.Errorf("fused differs from the naive reference by %.3g", worst)
				}
				for tok, mod := range mods {
					for o := range out {
						if mod == modality.Pad && got[tok*out+o] != 0 {
							t.Fatalf("pad token %d got a delta", tok)
						}
					}
				}
			})
		})
	}
}
