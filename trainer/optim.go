package trainer

import (
	"fmt"
	"math"

	"github.com/mose-llm/mose/internal/torch"
)

// Param is a trainable tensor under a stable name (for the optimizer state).
type Param struct {
	Name  string
	T     *torch.Tensor
	Decay bool // weight decay applies (matrices yes, biases no)
}

// AdamW is decoupled-weight-decay Adam written on libtorch ops, with float32
// moments per parameter (saved in checkpoints).
type AdamW struct {
	Params       []Param
	Beta1, Beta2 float64
	Eps          float64
	WeightDecay  float64
	Step         int // completed updates

	m, v  []*torch.Tensor
	state *torch.Scope // owns m and v
}

// NewAdamW creates zeroed moments for params.
func NewAdamW(params []Param, beta1, beta2, eps, wd float64) (*AdamW, error) {
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
func (o *AdamW) Update(lr float64) error {
	o.Step++
	bc1 := 1 - math.Pow(o.Beta1, float64(o.Step))
	bc2 := 1 - math.Pow(o.Beta2, float64(o.Step))
	return torch.NoGrad(func() error {
		for i, p := range o.Params {
			s := torch.NewScope()
			err := o.update(s, i, p, lr, bc1, bc2)
			s.Close()
			if err != nil {
				return fmt.Errorf("adamw: %s: %w", p.Name, err)
			}
		}
		return nil
	})
}

func (o *AdamW) update(s *torch.Scope, i int, p Param, lr, bc1, bc2 float64) error {
	g := s.Grad(p.T)
	if g == nil {
		return s.Err()
	}
	m := s.Lerp(o.m[i], g, 1-o.Beta1)
	v := s.Lerp(o.v[i], s.Square(g), 1-o.Beta2)
	denom := s.AddScalar(s.Sqrt(s.DivScalar(v, bc2)), o.Eps)
	step := s.MulScalar(s.Div(m, denom), lr/bc1)
	decay := 1.0
	if p.Decay {
		decay = 1 - lr*o.WeightDecay
	}
	next := s.Sub(s.MulScalar(p.T, decay), step)
	if err := s.Err(); err != nil {
		return err
	}
	for _, c := range []struct{ dst, src *torch.Tensor }{{o.m[i], m}, {o.v[i], v}, {p.T, next}} {
		if err := c.dst.CopyFrom(c.src); err != nil {
			return err
		}
	}
	return nil
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
