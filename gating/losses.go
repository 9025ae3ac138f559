package gating

import (
	"github.com/mose-llm/mose/internal/torch"
)

// groupStats are one gate's router sums, per gated group, over that group's
// member tokens. They are sums, not means, so that the sums of several
// passes (micro-batch slices on several ranks, or the layers of a
// checkpointed forward) can be added before the losses are normalised.
type groupStats struct {
	n    *torch.Tensor // (Gg) member token count
	hard *torch.Tensor // (Gg,Kmax) Σ_t hard_tk (top-k), or Σ_t p_tk detached (dense)
	p    *torch.Tensor // (Gg,Kmax) Σ_t p_tk, with grad
	lse  *torch.Tensor // (Gg) Σ_t logsumexp(logits_t)², with grad
	ent  *torch.Tensor // (Gg) Σ_t entropy(p_t) (nats), detached
	K    *torch.Tensor // (Gg) experts per group, as float
	k    float64       // divisor of hard: top-k (1 for a dense gate)
}

// routerStats computes the router sums of one gate.
//
//	logits (B,T,Gg,Kmax) after temperature, -inf in padding slots
//	p      (B,T,Gg,Kmax) softmax of logits
//	hard   (B,T,Gg,Kmax) 0/1 top-k selection, or nil for a dense gate
//	member (B,T,Gg) 1 for tokens the group routes, 0 otherwise (pad included)
//	K      (Gg) experts per group, as float
//	k      top-k (0 for dense)
func routerStats(s *torch.Scope, logits, p, hard, member, K *torch.Tensor, k int) groupStats {
	bt := []int64{0, 1}
	m4 := s.Unsqueeze(member, -1) // (B,T,Gg,1)
	st := groupStats{K: K, k: float64(max(k, 1))}
	st.n = s.SumDims(member, bt, false)       // (Gg)
	st.p = s.SumDims(s.Mul(p, m4), bt, false) // (Gg,Kmax)
	if hard != nil {
		st.hard = s.SumDims(s.Mul(hard, m4), bt, false) // (Gg,Kmax)
	} else {
		st.hard = s.Detach(st.p)
	}
	lse := s.LogSumExp(logits, []int64{-1}, false)              // (B,T,Gg)
	st.lse = s.SumDims(s.Mul(s.Square(lse), member), bt, false) // (Gg)
	logp := s.Log(s.ClampMin(p, 1e-12))
	ent := s.Neg(s.SumDims(s.Mul(p, logp), []int64{-1}, false)) // (B,T,Gg)
	st.ent = s.Detach(s.SumDims(s.Mul(ent, member), bt, false)) // (Gg)
	return st
}

// totals are the router sums a group's losses are normalised by: this
// pass's own (local), or those of every pass that makes up one loss
// (SetGlobal). All detached.
type totals struct {
	n, hard, p, lse, ent *torch.Tensor // (Gg), (Gg,Kmax), (Gg,Kmax), (Gg), (Gg)
}

// local are st's own sums as totals.
func (st groupStats) local(s *torch.Scope) totals {
	return totals{n: st.n, hard: st.hard, p: s.Detach(st.p), lse: s.Detach(st.lse), ent: st.ent}
}

// losses are this pass's share of the group's Switch and z losses under the
// totals tot. With N_g = tot.n member tokens: f_k = tot.hard_k / (k·N_g)
// (so f sums to 1), P_k = Σ_t p_tk / N_g over this pass's tokens;
// balance = K·Σ_k f_k·P_k (1 under uniform routing when the pass is all of
// the tokens), z = Σ_t logsumexp_t² / N_g. The shares of the passes that
// make up tot add up to the losses of all their tokens together, and so do
// their gradients. valid is 1 where the group had tokens in tot.
func (st groupStats) losses(s *torch.Scope, tot totals) (balance, z, valid *torch.Tensor) {
	denom := s.ClampMin(tot.n, 1)                                           // (Gg)
	prob := s.Div(st.p, s.Unsqueeze(denom, -1))                             // (Gg,Kmax)
	load := s.Div(tot.hard, s.Unsqueeze(s.MulScalar(denom, st.k), -1))      // (Gg,Kmax)
	balance = s.Mul(st.K, s.SumDims(s.Mul(load, prob), []int64{-1}, false)) // (Gg)
	z = s.Div(st.lse, denom)                                                // (Gg)
	valid = s.To(s.GtScalar(tot.n, 0), torch.Float32)                       // (Gg)
	return balance, z, valid
}

// telemetry are the group's statistics under tot (detached): the losses as
// if this pass were all of tot's tokens, f (load), P (prob) and the mean
// entropy.
type telemetry struct {
	valid, tokens, balance, z, entropy *torch.Tensor // (Gg)
	load, prob                         *torch.Tensor // (Gg,Kmax)
}

func (st groupStats) telemetry(s *torch.Scope, tot totals) telemetry {
	denom := s.ClampMin(tot.n, 1)
	d2 := s.Unsqueeze(denom, -1)
	tm := telemetry{valid: s.To(s.GtScalar(tot.n, 0), torch.Float32), tokens: tot.n}
	tm.prob = s.Div(tot.p, d2)
	tm.load = s.Div(tot.hard, s.Unsqueeze(s.MulScalar(denom, st.k), -1))
	tm.balance = s.Mul(st.K, s.SumDims(s.Mul(tm.load, tm.prob), []int64{-1}, false))
	tm.z = s.Div(tot.lse, denom)
	tm.entropy = s.Div(tot.ent, denom)
	return tm
}
