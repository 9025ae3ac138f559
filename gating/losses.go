package gating

import (
	"github.com/mose-llm/mose/internal/torch"
)

// groupStats are one gate's router statistics, per gated group, all reduced
// over that group's member tokens.
type groupStats struct {
	balance *torch.Tensor // (Gg) Switch loss K·Σ_k f_k P_k
	z       *torch.Tensor // (Gg) mean logsumexp(logits)²
	valid   *torch.Tensor // (Gg) 1 if the group had tokens, else 0
	tokens  *torch.Tensor // (Gg) member token count
	load    *torch.Tensor // (Gg,Kmax) f_k, fraction of routing slots sent to expert k
	prob    *torch.Tensor // (Gg,Kmax) P_k, mean gate probability
	entropy *torch.Tensor // (Gg) mean gate entropy (nats)
}

// routerStats computes the losses and telemetry of one gate.
//
//	logits (B,T,Gg,Kmax) after temperature, -inf in padding slots
//	p      (B,T,Gg,Kmax) softmax of logits
//	hard   (B,T,Gg,Kmax) 0/1 top-k selection, or nil for a dense gate
//	member (B,T,Gg) 1 for tokens the group routes, 0 otherwise (pad included)
//	K      (Gg) experts per group, as float
//	k      top-k (0 for dense)
//
// With N_g member tokens: P_k = Σ_t p_tk / N_g; f_k = Σ_t hard_tk / (k·N_g)
// (so f sums to 1), or f = P detached for a dense gate; balance = K·Σ_k f_k·P_k,
// which is 1 under uniform routing; z = Σ_t logsumexp_t² / N_g. A group with
// no member tokens gets 0 everywhere and valid = 0.
func routerStats(s *torch.Scope, logits, p, hard, member, K *torch.Tensor, k int) groupStats {
	bt := []int64{0, 1}
	m4 := s.Unsqueeze(member, -1)                                             // (B,T,Gg,1)
	n := s.SumDims(member, bt, false)                                         // (Gg)
	denom := s.ClampMin(n, 1)                                                 // (Gg)
	prob := s.Div(s.SumDims(s.Mul(p, m4), bt, false), s.Unsqueeze(denom, -1)) // (Gg,Kmax)
	var load *torch.Tensor
	if hard != nil {
		load = s.Div(s.SumDims(s.Mul(hard, m4), bt, false), s.Unsqueeze(s.MulScalar(denom, float64(k)), -1))
	} else {
		load = s.Detach(prob)
	}
	balance := s.Mul(K, s.SumDims(s.Mul(load, prob), []int64{-1}, false)) // (Gg)
	lse := s.LogSumExp(logits, []int64{-1}, false)                        // (B,T,Gg)
	z := s.Div(s.SumDims(s.Mul(s.Square(lse), member), bt, false), denom)
	logp := s.Log(s.ClampMin(p, 1e-12))
	ent := s.Neg(s.SumDims(s.Mul(p, logp), []int64{-1}, false))       // (B,T,Gg)
	entropy := s.Div(s.SumDims(s.Mul(ent, member), bt, false), denom) // (Gg)
	valid := s.To(s.GtScalar(n, 0), torch.Float32)
	return groupStats{balance: balance, z: z, valid: valid, tokens: n, load: load, prob: prob, entropy: entropy}
}
