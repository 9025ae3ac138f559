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
func (l *Layer) forward(s *torch.Scope, m *Model, x *torch.Tensor, a *attnCtx, r *Routing) *torch.Tensor {
	eps := m.Config.RMSNormEps
	h := s.Add(x, l.attention(s, m, rmsNorm(s, x, l.InputNorm, eps), a, r))
	return s.Add(h, l.mlp(s, rmsNorm(s, h, l.PostNorm, eps), r))
}

// attnCtx is what attention needs besides the layer input: rotary tables
// for the queries' positions, the masks, and the KV cache (nil: attention
// over this forward's tokens only).
type attnCtx struct {
	cos, sin *torch.Tensor // (T,hd), or (B,1,T,hd) at per-row positions
	masks    map[int]attnMask
	keyHot   *torch.Tensor // (B,Lk,modality.Count) float32 modality of every key (AR)
	cache    *Cache
	appendKV bool
}

// attnMask is the masking of one window size: mask (B|1,1,T,Lk) bool, true
// where a query may attend; nil with causal true is plain causal attention
// (the fused SDPA path), nil with causal false attends to every key.
type attnMask struct {
	mask   *torch.Tensor
	causal bool
}

// attention is causal grouped-query self-attention with rotary positions,
// over the cached keys (if any) and this forward's.
// x: (B,T,D) -> (B,T,D)
func (l *Layer) attention(s *torch.Scope, m *Model, x *torch.Tensor, a *attnCtx, r *Routing) *torch.Tensor {
	c := &m.Config
	B, T := x.Size(0), x.Size(1)
	H, KV, hd := int64(c.NumHeads), int64(c.NumKVHeads), int64(c.HeadDim)
	q := s.Transpose(s.View(l.Q.Forward(s, x, r), B, T, H, hd), 1, 2)  // (B,H,T,hd)
	k := s.Transpose(s.View(l.K.Forward(s, x, r), B, T, KV, hd), 1, 2) // (B,KV,T,hd)
	v := s.Transpose(s.View(l.V.Forward(s, x, r), B, T, KV, hd), 1, 2) // (B,KV,T,hd)
	q, k = applyRope(s, q, a.cos, a.sin, hd), applyRope(s, k, a.cos, a.sin, hd)
	if a.cache != nil {
		k, v = a.cache.join(s, l.Index, k, v, a.appendKV) // (B,KV,L+T,hd)
	}
	k, v = repeatKV(s, k, H/KV), repeatKV(s, v, H/KV) // (B,H,Lk,hd)
	am := a.masks[c.Window(l.Index)]
	var o *torch.Tensor // (B,H,T,hd)
	if ar := m.AR; ar != nil && !r.Train && a.keyHot != nil && l.Index >= ar.First && l.Index <= ar.Last {
		o = ar.reallocate(s, l.Index, q, k, v, a.keyHot, am)
	} else {
		o = s.Attention(q, k, v, am.mask, am.mask == nil && am.causal, 0)
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
