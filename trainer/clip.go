package trainer

import (
	"cmp"
	"math"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/stack"
)

// gradNorm returns the global L2 norm of the parameters' gradients, read
// back to the host once (so it doubles as the per-step finiteness check).
func gradNorm(params []stack.Param) (float64, error) {
	s := torch.NewScope()
	defer s.Close()
	var norms []*torch.Tensor
	for _, p := range params {
		if g := s.Grad(p.T); g != nil {
			norms = append(norms, s.Norm(g))
		}
	}
	if len(norms) == 0 {
		return 0, s.Err()
	}
	total := s.Norm(s.Stack(norms, 0))
	if err := s.Err(); err != nil {
		return 0, err
	}
	return total.Item()
}

// clipGrads scales every gradient by max/norm when norm exceeds max.
func clipGrads(params []stack.Param, norm, max float64) error {
	if max <= 0 || norm <= max || math.IsNaN(norm) {
		return nil
	}
	coef := max / (norm + 1e-6)
	return torch.NoGrad(func() error {
		for _, p := range params {
			s := torch.NewScope()
			g := s.Grad(p.T)
			var err error
			if g != nil {
				scaled := s.MulScalar(g, coef)
				if err = s.Err(); err == nil {
					err = g.CopyFrom(scaled)
				}
			}
			err = cmp.Or(err, s.Err())
			s.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// zeroGrads zeroes every parameter's gradient in place.
func zeroGrads(params []stack.Param) error {
	for _, p := range params {
		if err := p.T.ZeroGrad(); err != nil {
			return err
		}
	}
	return nil
}
