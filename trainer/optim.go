package trainer

import (
	"fmt"
	"math"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/stack"
)

// AdamW is decoupled-weight-decay Adam written on libtorch ops, with float32
// moments per parameter (saved in checkpoints).
type AdamW struct {
	Params       []stack.Param
	Beta1, Beta2 float64
	Eps          float64
	WeightDecay  float64
	Step         int // completed updates

	m, v  []*torch.Tensor
	state *torch.Scope // owns m and v
}

// NewAdamW creates zeroed moments for params.
func NewAdamW(params []stack.Param, beta1, beta2, eps, wd float64) (*AdamW, error) {
	o := &AdamW{Params: params, Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: wd, state: torch.NewScope()}
	for _, p := range params {
		o.m = append(o.m, o.state.ZerosLike(p.T))
		o.v = append(o.v, o.state.ZerosLike(p.T))
	}
	if err := o.state.Err(); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

// Close frees the moments.
func (o *AdamW) Close() { o.state.Close() }

// Update applies one AdamW step with learning rate lr to every parameter
// that has a gradient:
//
//	m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
//	p ← p·(1 − lr·λ) − lr · (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)
//
// The new values of every parameter and moment are computed first and
// copied in only if all of them are finite; otherwise nothing changes and
// Update reports applied false (the step is to be skipped).
func (o *AdamW) Update(lr float64) (applied bool, err error) {
	t := o.Step + 1
	bc1 := 1 - math.Pow(o.Beta1, float64(t))
	bc2 := 1 - math.Pow(o.Beta2, float64(t))
	err = torch.NoGrad(func() error {
		s := torch.NewScope()
		defer s.Close()
		var copies []struct{ dst, src *torch.Tensor }
		var sums []*torch.Tensor
		for i, p := range o.Params {
			m, v, next, err := o.next(s, i, p, lr, bc1, bc2)
			if err != nil {
				return fmt.Errorf("adamw: %s: %w", p.Name, err)
			}
			if next == nil {
				continue
			}
			copies = append(copies, struct{ dst, src *torch.Tensor }{o.m[i], m}, struct{ dst, src *torch.Tensor }{o.v[i], v},
				struct{ dst, src *torch.Tensor }{p.T, next})
			sums = append(sums, s.Sum(m), s.Sum(v), s.Sum(next))
		}
		if len(sums) == 0 {
			applied = true
			return s.Err()
		}
		// One read: a NaN or Inf anywhere makes its sum non-finite.
		vals, err := s.Stack(sums, 0).Float64s()
		if err != nil {
			return fmt.Errorf("adamw: %w", err)
		}
		for _, x := range vals {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil
			}
		}
		for _, c := range copies {
			if err := c.dst.CopyFrom(c.src); err != nil {
				return fmt.Errorf("adamw: %w", err)
			}
		}
		applied = true
		return nil
	})
	if err == nil && applied {
		o.Step = t
	}
	return applied, err
}

// next computes parameter i's new moments and value (nil when it has no
// gradient).
func (o *AdamW) next(s *torch.Scope, i int, p stack.Param, lr, bc1, bc2 float64) (m, v, next *torch.Tensor, err error) {
	g := s.Grad(p.T)
	if g == nil {
		return nil, nil, nil, s.Err()
	}
	m = s.Lerp(o.m[i], g, 1-o.Beta1)
	v = s.Lerp(o.v[i], s.Square(g), 1-o.Beta2)
	denom := s.AddScalar(s.Sqrt(s.DivScalar(v, bc2)), o.Eps)
	step := s.MulScalar(s.Div(m, denom), lr/bc1)
	decay := 1.0
	if p.Decay {
		decay = 1 - lr*o.WeightDecay
	}
	next = s.Sub(s.MulScalar(p.T, decay), step)
	return m, v, next, s.Err()
}

// Moments returns the optimizer state under "<param>.exp_avg" and
// "<param>.exp_avg_sq" (the tensors themselves; do not free them).
func (o *AdamW) Moments() (names []string, ts []*torch.Tensor) {
	for i, p := range o.Params {
		names = append(names, p.Name+".exp_avg", p.Name+".exp_avg_sq")
		ts = append(ts, o.m[i], o.v[i])
	}
	return names, ts
}
