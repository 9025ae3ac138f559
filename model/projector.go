package model

import "github.com/mose-llm/mose/internal/torch"

// Projector maps one modality input's features into the hidden size:
// linear (W, b) or mlp2 (Linear, GELU, Linear).
type Projector struct {
	Name   string
	Kind   string
	W1, B1 *torch.Tensor // (D,F), (D)
	W2, B2 *torch.Tensor // (D,D), (D); mlp2 only
}

// Params returns the projector's tensors (for training them).
func (p *Projector) Params() []*torch.Tensor {
	if p.Kind == ProjectorMLP2 {
		return []*torch.Tensor{p.W1, p.B1, p.W2, p.B2}
	}
	return []*torch.Tensor{p.W1, p.B1}
}

// Forward projects features. x: (B,N,F) -> (B,N,D), in the weights' dtype.
func (p *Projector) Forward(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	if dt := p.W1.DType(); x.DType() != dt {
		x = s.To(x, dt)
	}
	y := s.Linear(x, p.W1, p.B1)
	if p.Kind == ProjectorMLP2 {
		y = s.Linear(s.Gelu(y), p.W2, p.B2)
	}
	return y
}
