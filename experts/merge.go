package experts

import (
	"fmt"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
)

// Merging folds a target's experts into its frozen weight, W' = W + ΔW with
//
//	ΔW = Σ_e c_e · B_e · A_{g(e)}     (out, in)
//
// where c_e is the coefficient of slot e. For the omni group with a single
// expert c_e is the scaling s for every non-pad token, so its ΔW is exact
// (plain LoRA is this case). Routed groups and gated experts have per-token
// coefficients; merging them needs their expected values (Calibration).

// Exact reports, per slot, whether its coefficient is the same for every
// non-pad token (an omni group with one expert), and that coefficient.
func (m *Mixture) Exact() (exact []bool, coef []float64) {
	s := m.scaling
	for gi, g := range m.Groups {
		for range m.K[gi] {
			ok := g == Omni && m.K[gi] == 1
			exact = append(exact, ok)
			if ok {
				coef = append(coef, s)
			} else {
				coef = append(coef, 0)
			}
		}
	}
	return exact, coef
}

// DeltaWeight returns Σ_e coef[e]·B_e·A_{g(e)}: (out, in) float32.
func (m *Mixture) DeltaWeight(s *torch.Scope, coef []float64) *torch.Tensor {
	if int64(len(coef)) != m.slots {
		s.Fail(fmt.Errorf("%w: %s: %d coefficients for %d expert slots", ErrConfig, m.Name, len(coef), m.slots))
		return nil
	}
	r := m.rank
	rep := make([]float32, m.slots*r) // each slot's coefficient on its r columns of B
	for e, c := range coef {
		for j := range r {
			rep[int64(e)*r+j] = float32(c)
		}
	}
	c := s.FromFloat32(rep, m.slots*r)
	if m.set.dev != torch.CPU {
		c = s.ToDevice(c, m.set.dev)
	}
	a := s.Detach(m.A) // (G·r, in)
	if m.slotGroup != nil {
		a = s.Reshape(s.IndexSelect(s.View(a, int64(len(m.Groups)), r, m.In), 0, m.slotGroup), m.slots*r, m.In) // (E·r, in)
	}
	return s.Matmul(s.Mul(s.Detach(m.B), c), a) // (out,E·r)·(E·r,in)
}

// coefRecorder sums each slot's coefficient over the non-pad tokens of
// evaluation forwards (calibration for approximate merging).
type coefRecorder struct {
	sums   map[*Mixture][]*torch.Tensor // (E) per forward
	tokens []*torch.Tensor              // () non-pad tokens per forward, once per pass
	last   *torch.Tensor
}

func (r *coefRecorder) record(s *torch.Scope, m *Mixture, coef, onehot *torch.Tensor) {
	r.sums[m] = append(r.sums[m], s.SumDims(coef, []int64{0, 1}, false))
	if onehot != r.last { // the same one-hot for every target of a forward
		r.last = onehot
		pad := s.Narrow(onehot, -1, modality.Pad, 1)
		r.tokens = append(r.tokens, s.Sub(s.Sum(s.Ones(pad.Shape(), torch.Float32, m.set.dev)), s.Sum(pad)))
	}
}

// RecordCoefficients turns on (or off) the calibration of expert
// coefficients over evaluation (non-training) forwards.
func (set *Set) RecordCoefficients(on bool) {
	if on {
		set.coefs = &coefRecorder{sums: map[*Mixture][]*torch.Tensor{}}
	} else {
		set.coefs = nil
	}
}

// TakeCoefficients returns, per target, each slot's coefficient summed over
// the non-pad tokens of the evaluation forwards recorded since the last call,
// and the number of those tokens; the mean E[c_e] = sum/tokens is what an
// approximate merge uses. It reads the sums back to the host and starts a new
// record: call it before the scope of the recorded forwards closes.
func (set *Set) TakeCoefficients(s *torch.Scope) (sums map[string][]float64, tokens float64, err error) {
	r := set.coefs
	if r == nil || len(r.tokens) == 0 {
		return nil, 0, nil
	}
	c := s.Child()
	defer c.Close()
	if tokens, err = c.Sum(c.Stack(r.tokens, 0)).Item(); err != nil {
		return nil, 0, err
	}
	sums = map[string][]float64{}
	for _, m := range set.Mixtures {
		if sums[m.Name], err = c.SumDims(c.Stack(r.sums[m], 0), []int64{0}, false).Float64s(); err != nil {
			return nil, 0, err
		}
	}
	set.RecordCoefficients(true) // a fresh record
	return sums, tokens, nil
}
