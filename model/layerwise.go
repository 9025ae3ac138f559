package model

import "github.com/mose-llm/mose/internal/torch"

// Pass is one forward pass taken apart at the decoder-layer boundaries, for
// callers that run the layers themselves: per-layer seeding of dropout and
// gate noise, and activation checkpointing (a forward under no-grad that
// keeps only each layer's input, then each layer recomputed with grad during
// backward). Its tables (routing, rotary, masks) live in the scope given to
// Begin and must outlive every Layer call.
type Pass struct {
	m *Model
	a *attnCtx
	r *Routing
}

// Begin prepares a forward over in: the routing the adapters see, the rotary
// tables and the attention masks, all in s. in.IDs: (B,T).
func (m *Model) Begin(s *torch.Scope, in *Inputs, train bool) *Pass {
	r := m.routing(s, in, train)
	a := &attnCtx{keyHot: r.OneHot, masks: map[int]attnMask{}}
	if in.IDs == nil || s.Err() != nil {
		return &Pass{m: m, a: a, r: r}
	}
	T := in.IDs.Size(1)
	a.cos, a.sin = m.rope.tables(s, T, m.DType, m.Device)
	for i := range m.Layers {
		w := m.Config.Window(i)
		if _, ok := a.masks[w]; ok {
			continue
		}
		am := attnMask{causal: true}
		if w > 0 && T > int64(w) {
			am.mask = windowMask(s, T, int64(w), m.Device) // (T,T)
		}
		a.masks[w] = am
	}
	return &Pass{m: m, a: a, r: r}
}

// Layers is the number of decoder layers.
func (p *Pass) Layers() int { return len(p.m.Layers) }

// Layer runs decoder layer i, its temporaries in s. x: (B,T,D) -> (B,T,D)
func (p *Pass) Layer(s *torch.Scope, i int, x *torch.Tensor) *torch.Tensor {
	return p.m.Layers[i].forward(s, p.m, x, p.a, p.r)
}

// Norm is the final RMSNorm after the last layer. x: (B,T,D) -> (B,T,D)
func (p *Pass) Norm(s *torch.Scope, x *torch.Tensor) *torch.Tensor {
	return rmsNorm(s, x, p.m.Norm, p.m.Config.RMSNormEps)
}

// ForwardEach is Forward with before(i) called ahead of decoder layer i (a
// training step reseeds libtorch's generator there, so that a recompute of
// layer i alone draws the same dropout masks and gate noise). An error from
// before is recorded in s. (B,T) -> (B,T,D)
func (m *Model) ForwardEach(s *torch.Scope, in *Inputs, train bool, before func(layer int) error) *torch.Tensor {
	p := m.Begin(s, in, train)
	x := m.Embed(s, in)
	return m.decodeEach(s, x, p.a, p.r, before)
}
