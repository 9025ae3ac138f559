package model

import (
	"fmt"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
)

// Embed assembles the input sequence: token embeddings with each modality
// input's projected features spliced in at its positions.
// ids (B,T), features (B,N_i,F_i) -> (B,T,D) in the run dtype.
func (m *Model) Embed(s *torch.Scope, in *Inputs) *torch.Tensor {
	x := s.Embedding(m.EmbedTokens, in.IDs) // (B,T,D)
	if len(in.Features) == 0 || x == nil {
		return x
	}
	if len(in.Features) != len(m.Projectors) {
		s.Fail(fmt.Errorf("model: %d feature inputs for %d projectors: %w", len(in.Features), len(m.Projectors), ErrConfig))
		return nil
	}
	sh := x.Shape()
	if len(sh) != 3 {
		s.Fail(fmt.Errorf("model: ids must be (B,T), got embeddings of shape %v: %w", sh, ErrConfig))
		return nil
	}
	D := sh[2]
	flat := s.View(x, -1, D) // (B·T,D)
	for i, f := range in.Features {
		p := s.Reshape(m.Projectors[i].Forward(s, f.Data), -1, D) // (B·N,D)
		if p != nil && p.DType() != m.DType {
			p = s.To(p, m.DType)
		}
		flat = s.IndexCopy(flat, 0, f.Positions, p)
	}
	return s.View(flat, sh...)
}

// Forward runs the decoder over a batch and returns the final normalised
// hidden states. (B,T) -> (B,T,D)
func (m *Model) Forward(s *torch.Scope, in *Inputs, train bool) *torch.Tensor {
	return m.ForwardEach(s, in, train, nil)
}

// routing is what the adapters see of in's tokens.
func (m *Model) routing(s *torch.Scope, in *Inputs, train bool) *Routing {
	r := &Routing{Modality: in.Modality, Train: train}
	if in.Modality != nil {
		r.OneHot = s.To(s.OneHot(in.Modality, modality.Count), torch.Float32) // (B,T,4)
	}
	return r
}

// decode runs the layers and the final norm. x: (B,T,D) -> (B,T,D)
func (m *Model) decode(s *torch.Scope, x *torch.Tensor, a *attnCtx, r *Routing) *torch.Tensor {
	return m.decodeEach(s, x, a, r, nil)
}

// decodeEach is decode calling before(i) (when not nil) ahead of layer i.
func (m *Model) decodeEach(s *torch.Scope, x *torch.Tensor, a *attnCtx, r *Routing, before func(int) error) *torch.Tensor {
	for i := range m.Layers {
		if before != nil && s.Err() == nil {
			if err := before(i); err != nil {
				s.Fail(err)
			}
		}
		x = m.Layers[i].forward(s, m, x, a, r)
	}
	if m.AR != nil && m.AR.Stats != nil && s.Err() == nil {
		if err := m.AR.Stats.collect(s, len(m.Layers), m.Config.NumHeads); err != nil {
			s.Fail(err)
		}
	}
	return rmsNorm(s, x, m.Norm, m.Config.RMSNormEps)
}

// Logits computes the head only where needed: h (B,T,D) at the flattened
// positions pos (N) int64 -> (N,V) float32. A nil pos means every position,
// returned as (B,T,V).
func (m *Model) Logits(s *torch.Scope, h, pos *torch.Tensor) *torch.Tensor {
	if pos == nil {
		return s.To(s.Linear(h, m.Head, nil), torch.Float32)
	}
	flat := s.View(h, -1, h.Size(-1))                                              // (B·T,D)
	return s.To(s.Linear(s.IndexSelect(flat, 0, pos), m.Head, nil), torch.Float32) // (N,V)
}
