package experts_test

import (
	"math"
	"testing"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/torch"
)

// Folding plain LoRA into W gives the adapted output exactly (non-pad tokens).
func TestDeltaWeightExactForLoRA(t *testing.T) {
	inTorch(t, func(s *torch.Scope) {
		cfg := experts.Config{Method: "lora", Targets: []string{"q_proj"}, Rank: 3, Alpha: 5, RSLoRA: true}
		set, err := experts.New(torch.CPU, []experts.Target{{Name: "l.q_proj", In: 6, Out: 4}}, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		randomize(t, s, set, 3, 0.5)
		m := set.Mixtures[0]
		exact, coef := m.Exact()
		if len(exact) != 1 || !exact[0] || math.Abs(coef[0]-cfg.Scaling()) > 1e-12 {
			t.Fatalf("Exact() = %v, %v", exact, coef)
		}
		w := s.Randn([]int64{4, 6}, torch.Float32, torch.CPU)
		x := s.Randn([]int64{2, 3, 6}, torch.Float32, torch.CPU)
		want := floats(t, s.Add(s.Linear(x, w, nil), m.Delta(s, x, nil, false)))
		got := floats(t, s.Linear(x, s.Add(w, m.DeltaWeight(s, coef)), nil))
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-5 {
				t.Fatalf("element %d: merged %v, adapted %v", i, got[i], want[i])
			}
		}
	})
}

// Calibration: omni's mean coefficient is the scaling; over visual tokens a
// top-1 visual group's coefficients sum to s·w_visual.
func TestMeanCoefficients(t *testing.T) {
	inTorch(t, func(s *torch.Scope) {
		cfg := experts.Config{Method: "mose", Targets: []string{"q_proj"}, Rank: 2, Alpha: 4,
			VisualExperts: 3, NonVisualExperts: 2, OmniExperts: 1}
		set, err := experts.New(torch.CPU, []experts.Target{{Name: "l.q_proj", In: 5, Out: 3}}, cfg,
			func(name string, in int64, groups []string, K []int) (experts.Gate, error) {
				return gating.NewGate(s, torch.CPU, name, in, groups, K, gating.Config{TopK: 1}, nil2(), 0.5, nil)
			})
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		if err := set.SetModalityWeights(1.5, 0.5); err != nil {
			t.Fatal(err)
		}
		set.RecordCoefficients(true)
		x := s.Randn([]int64{2, 4, 5}, torch.Float32, torch.CPU)
		mods := []int64{1, 1, 1, 3, 1, 1, 3, 3} // visual tokens and padding only
		onehot := s.To(s.OneHot(s.FromInt64(mods, 2, 4), 4), torch.Float32)
		set.Mixtures[0].Delta(s, x, onehot, false)
		sums, tokens, err := set.TakeCoefficients(s)
		if err != nil {
			t.Fatal(err)
		}
		if tokens != 5 {
			t.Fatalf("%v non-pad tokens recorded, want 5", tokens)
		}
		c := sums["l.q_proj"] // slots: visual×3, nonvisual×2, omni×1
		for i := range c {
			c[i] /= tokens
		}
		sc := cfg.Scaling()
		visual := c[0] + c[1] + c[2]
		if math.Abs(visual-sc*1.5) > 1e-5 || c[3] != 0 || c[4] != 0 || math.Abs(c[5]-sc) > 1e-5 {
			t.Errorf("mean coefficients %v; want visual sum %v, nonvisual 0, omni %v", c, sc*1.5, sc)
		}
	})
}
