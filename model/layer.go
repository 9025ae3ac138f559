package model

import "github.com/mose-llm/mose/internal/torch"

// Layer is one pre-norm decoder block: attention and a SwiGLU MLP, each
// behind an RMSNorm and a residual connection.
type Layer struct {
	Index               int
	InputNorm, PostNorm *torch.Tensor // (D)
	Q, K, V, O          Linear
	Gate, Up, Down      Linear
}

// Linears returns the layer's seven projections in HF order.
func (l *Layer) Linears() []*Linear {
	return []*Linear{&l.Q, &l.K, &l.V, &l.O, &l.Gate, &l.Up, &l.Down}
}

// rmsNorm is transformers' LlamaRMSNorm: statistics in float32, the
// normalised value cast back to x's dtype before the weight multiplies it.
// x: (…,D) -> (…,D)
func rmsNorm(s *torch.Scope, x, w *torch.Tensor, eps float64) *torch.Tensor {
	dt := x.DType()
	x32 := x
	if dt != torch.Float32 {
		x32 = s.To(x, torch.Float32)
	}
	v := s.MeanDims(s.Square(x32), []int64{-1}, true)
	y := s.Mul(x32, s.Rsqrt(s.AddScalar(v, eps)))
	if dt != torch.Float32 {
		y = s.To(y, dt)
	}
	return s.Mul(w, y)
}

// forward runs the block. x: (B,T,D) -> (B,T,D)
func (l *Layer) forward(s *torch.Scope, m *Model, x, cos, sin *torch.Tensor, r *Routing) *torch.Tensor {
	eps := m.Config.RMSNormEps
	h := s.Add(x, l.attention(s, m, rmsNorm(s, x, l.InputNorm, eps), cos, sin, r))
	return s.Add(h, l.mlp(s, rmsNorm(s, h, l.PostNorm, eps), r))
}

// attention is causal grouped-query self-attention with rotary positions.
// x: (B,T,D) -> (B,T,D)
func (l *Layer) attention(s *torch.Scope, m *Model, x, cos, sin *torch.Tensor, r *Routing) *torch.Tensor {
	c := &m.Config
	B, T := x.Size(0), x.Size(1)
	H, KV, hd := int64(c.NumHeads), int64(c.NumKVHeads), int64(c.HeadDim)
	q := s.Transpose(s.View(l.Q.Forward(s, x, r), B, T, H, hd), 1, 2)  // (B,H,T,hd)
	k := s.Transpose(s.View(l.K.Forward(s, x, r), B, T, KV, hd), 1, 2) // (B,KV,T,hd)
	v := s.Transpose(s.View(l.V.Forward(s, x, r), B, T, KV, hd), 1, 2) // (B,KV,T,hd)
	q, k = applyRope(s, q, cos, sin, hd), applyRope(s, k, cos, sin, hd)
	k, v = repeatKV(s, k, H/KV), repeatKV(s, v, H/KV) // (B,H,T,hd)
	var o *torch.Tensor                               // (B,H,T,hd)
	if ar := m.AR; ar != nil && !r.Train && r.OneHot != nil && l.Index >= ar.First && l.Index <= ar.Last {
		o = ar.reallocate(s, l.Index, q, k, v, r.OneHot)
	} else {
		o = s.Attention(q, k, v, nil, true, 0)
	}
	o = s.Reshape(s.Transpose(o, 1, 2), B, T, H*hd) // (B,T,H·hd)
	return l.O.Forward(s, o, r)
}

// repeatKV shares each key/value head with rep query heads.
// x: (B,KV,T,hd) -> (B,KV·rep,T,hd)
func repeatKV(s *torch.Scope, x *torch.Tensor, rep int64) *torch.Tensor {
	if rep == 1 || x == nil {
		return x
	}
	sh := x.Shape()
	e := s.Expand(s.Unsqueeze(x, 2), sh[0], sh[1], rep, sh[2], sh[3])
	return s.Reshape(e, sh[0], sh[1]*rep, sh[2], sh[3])
}

// mlp is SwiGLU: down(silu(gate(x)) ⊙ up(x)). x: (B,T,D) -> (B,T,D)
func (l *Layer) mlp(s *torch.Scope, x *torch.Tensor, r *Routing) *torch.Tensor {
	return l.Down.Forward(s, s.Mul(s.Silu(l.Gate.Forward(s, x, r)), l.Up.Forward(s, x, r)), r)
}
