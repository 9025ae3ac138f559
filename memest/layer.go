package memest

import (
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
)

// layerActs counts the bytes one decoder layer's training forward keeps
// alive until its backward, following model/layer.go op by op: every op
// result is owned by the step's scope (so it lives until the scope closes,
// whether autograd saved it or not), views (view, transpose, narrow,
// expand, unsqueeze) share their input's storage, and a few tensors that
// autograd saves without returning them are added (dropout's mask,
// attention's log-sum-exp).
type layerActs struct {
	cfg      *recipes.Config
	mc       model.Config
	N, B, T  int64 // N = B·T tokens
	e        int64 // bytes per element of the run dtype
	cuda     bool
	adapters []adapterShape
}

// forward is the layer's kept activations.
func (l layerActs) forward() int64 {
	mc, N, e := l.mc, l.N, l.e
	D, I := int64(mc.HiddenSize), int64(mc.IntermediateSize)
	H, KV, hd := int64(mc.NumHeads), int64(mc.NumKVHeads), int64(mc.HeadDim)
	q, kv := H*hd, KV*hd
	b := 2 * rmsBytes(N, D, e) // input and post-attention norms
	// Attention: projections, rotary on q and k (neg, cat, two muls, add:
	// 4.5 of its size), keys and values repeated for GQA.
	b += l.linear("q_proj", N, D, q) + l.linear("k_proj", N, D, kv) + l.linear("v_proj", N, D, kv)
	b += 9 * N * q * e / 2
	b += 9 * N * kv * e / 2
	if H != KV {
		b += 2 * N * q * e
	}
	b += N*q*e + N*H*4 // SDPA output and log-sum-exp
	if l.mathAttention() {
		b += 3*l.B*H*l.T*l.T*e + N*q*e // scores, masked, softmax; the output's copy back to (B,T,H·hd)
	}
	b += l.linear("o_proj", N, q, D)
	b += N * D * e // residual
	// SwiGLU MLP.
	b += l.linear("gate_proj", N, D, I) + l.linear("up_proj", N, D, I)
	b += 2 * N * I * e // silu, product
	b += l.linear("down_proj", N, I, D)
	b += N * D * e // residual
	return b
}

// backward is the working set of the layer's backward: the largest
// gradients alive together (the MLP's, intermediate-sized, and the
// residual stream's), in the run dtype.
func (l layerActs) backward() int64 {
	D, I := int64(l.mc.HiddenSize), int64(l.mc.IntermediateSize)
	b := 4*l.N*I*l.e + 4*l.N*D*l.e
	if l.mathAttention() {
		b += 2 * l.B * int64(l.mc.NumHeads) * l.T * l.T * l.e // the attention matrix's gradient
	}
	return b
}

// mathAttention reports whether attention materialises its B·H·T² scores:
// libtorch's fused SDPA kernels (flash on the CPU; flash or memory-efficient
// on CUDA) do not, the math fallback does. mose takes the fused path for
// plain causal attention and the math path for a sliding-window mask.
func (l layerActs) mathAttention() bool {
	for i := range l.mc.NumLayers {
		if w := l.mc.Window(i); w > 0 && l.T > int64(w) {
			return true
		}
	}
	return false
}

// linear is a frozen projection's output over N tokens (in -> out), plus
// its adapter's tensors when module is a target.
func (l layerActs) linear(module string, N, in, out int64) int64 {
	e := l.e
	b := N * out * e
	for _, a := range l.adapters {
		if a.module == module {
			b += l.delta(a, N) + N*out*e // the delta, and the sum
			if e != 4 {
				b += N * out * e // the delta cast to the run dtype
			}
		}
	}
	return b
}

// delta is experts.Mixture.Delta's tensors (float32) over N tokens.
func (l layerActs) delta(a adapterShape, N int64) int64 {
	f := int64(4)
	var b int64
	if l.e != 4 {
		b += N * a.in * f // input cast to float32
	}
	if p := l.cfg.Adapters.Dropout; p > 0 {
		b += N * a.in * f // dropped input
		if l.cuda {
			b += N * a.in // mask (bool) saved by the fused kernel
		} else {
			b += N * a.in * f // noise (float) kept by the CPU kernel
		}
	}
	b += N * a.groups * a.rank * f // x·Aᵀ
	b += N * a.slots * f           // modality coefficients
	if a.gated > 0 {
		b += l.gate(a, N)
	}
	if a.slots != a.groups {
		b += N * a.slots * a.rank * f // h per expert slot
	}
	b += N * a.slots * a.rank * f // times the coefficients
	b += N * a.out * f            // ·Bᵀ
	if l.cfg.Adapters.ModalityWeights == "contribution" {
		b += 3 * N * f // the norm measurement
	}
	return b
}

// gate is gating.Gate.Route's and its router statistics' tensors (float32,
// int64 top-k indices) over N tokens.
func (l layerActs) gate(a adapterShape, N int64) int64 {
	f := int64(4)
	Gg, SK, GK := a.gated, a.gatedSlots, a.gated*a.kmax
	u := Gg + SK // member, logits
	if a.tempered {
		u += SK
	}
	if a.noise {
		u += 3 * SK // noise, scaled, added
	}
	u += 1 + (SK + 1) + 2*GK // -inf column, padded cat, padded logits, softmax
	if a.topK > 0 {
		k := a.topK * Gg
		u += 3*k + k + 5*GK // top-k values and int64 indices, ones; zeros, scatter, sub, add, hard·member
	}
	u += 4*GK + 6*Gg                   // statistics: p·member, clamp, log, p·log p; lse, square, ·member, entropy sums, neg, ·member
	u += SK + 1 + (SK + 1) + 2*a.slots // coefficients back per expert, ones, cat, per slot, product
	return N * u * f
}
