package experts_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/internal/torch"
)

// A Target's Rank and Alpha override the Config's (PEFT's rank_pattern and
// alpha_pattern): shapes follow the target's rank, the delta its scaling
// (α/r, or α/√r with RSLoRA), computed here by hand as s·B·A·x.
func TestPerTargetRankAndAlpha(t *testing.T) {
	for _, rs := range []bool{false, true} {
		inTorch(t, func(s *torch.Scope) {
			cfg := experts.Config{Method: "lora", Targets: []string{"q_proj", "v_proj"}, Rank: 4, Alpha: 8, RSLoRA: rs}
			targets := []experts.Target{{Name: "l.q_proj", In: 6, Out: 5}, {Name: "l.v_proj", In: 6, Out: 3, Rank: 2, Alpha: 3}}
			set, err := experts.New(torch.CPU, targets, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			randomize(t, s, set, 5, 0.5)
			x := s.Randn([]int64{1, 2, 6}, torch.Float32, torch.CPU)
			for i, want := range []struct {
				r     int
				alpha float64
			}{{4, 8}, {2, 3}} {
				m := set.Mixtures[i]
				sc := want.alpha / float64(want.r)
				if rs {
					sc = want.alpha / math.Sqrt(float64(want.r))
				}
				if m.Rank() != want.r || m.Alpha() != want.alpha || math.Abs(m.Scaling()-sc) > 1e-12 {
					t.Fatalf("%s: rank %d alpha %g scaling %g, want %d %g %g", m.Name, m.Rank(), m.Alpha(), m.Scaling(), want.r, want.alpha, sc)
				}
				if got := m.A.Shape(); got[0] != int64(want.r) {
					t.Fatalf("%s: A is %v, want rank %d", m.Name, got, want.r)
				}
				ref := floats(t, s.MulScalar(s.Linear(s.Linear(x, m.A, nil), m.B, nil), sc))
				got := floats(t, m.Delta(s, x, nil, false))
				for j := range ref {
					if math.Abs(got[j]-ref[j]) > 1e-5 {
						t.Fatalf("%s (rslora=%v): delta %v, want %v", m.Name, rs, got[j], ref[j])
					}
				}
				if _, coef := m.Exact(); math.Abs(coef[0]-sc) > 1e-12 {
					t.Fatalf("%s: Exact coefficient %g, want %g", m.Name, coef[0], sc)
				}
			}
		})
	}
}

// A tensor of the wrong shape is refused with both shapes in the message
// (they used to be printed after the tensors were freed, as []).
func TestImportShapeMismatchNamesShapes(t *testing.T) {
	inTorch(t, func(s *torch.Scope) {
		cfg := experts.Config{Method: "lora", Targets: []string{"q_proj"}, Rank: 4, Alpha: 8}
		set, err := experts.New(torch.CPU, []experts.Target{{Name: "l.q_proj", In: 6, Out: 5}}, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		err = set.Import(s, func(s *torch.Scope, name string) *torch.Tensor {
			if strings.Contains(name, "lora_A") {
				return s.Zeros([]int64{2, 6}, torch.Float32, torch.CPU)
			}
			return s.Zeros([]int64{5, 2}, torch.Float32, torch.CPU)
		})
		if !errors.Is(err, experts.ErrConfig) || !strings.Contains(err.Error(), "shape [2 6], the adapter wants [4 6]") {
			t.Fatalf("want the two shapes named, got %v", err)
		}
	})
}
