package model

import (
	"fmt"
	"math"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
)

// AR configures Attention Reallocation (inference only; our reading of the
// MoSEAR paper's AR, see the README). In each layer of [First, Last] and for
// each head, with α the post-softmax attention of a query,
//
//	M_A = Σ_audio α,  M_V = Σ_visual α,  ρ = M_A / (M_A + M_V + ε)
//
// heads with ρ > τ — τ fixed (TauValue) or, when Adaptive, mean + κ·std of ρ
// over the layer's heads for that query — move a share β of their audio mass
// to the visual tokens, in proportion to the attention those already get. The
// row still sums to 1; there are no parameters.
type AR struct {
	First, Last int     // layer range, inclusive
	Beta        float64 // share of the audio mass moved
	Adaptive    bool    // τ = mean + Kappa·std over heads (else TauValue)
	TauValue    float64
	Kappa       float64
	// Stats, when set, receives per-layer audio and visual attention mass.
	Stats *ARStats
}

// ARStats accumulates, per layer and head, the attention mass on audio and
// on visual tokens (summed over queries and batches) and how often a head was
// flagged, so that users can see where audio dominates.
type ARStats struct {
	Audio, Visual, Flagged, Queries [][]float64 // [layer][head]
	pending                         []arPending
}

type arPending struct {
	layer                  int
	audio, visual, flagged *torch.Tensor // (H)
	queries                float64
}

// Validate checks the configuration against a model with n layers.
func (a *AR) Validate(n int) error {
	switch {
	case a.First < 0 || a.Last < a.First || a.Last >= n:
		return fmt.Errorf("%w: AR layers [%d, %d] outside the model's %d layers", ErrConfig, a.First, a.Last, n)
	case a.Beta < 0 || a.Beta > 1:
		return fmt.Errorf("%w: AR beta %g outside [0, 1]", ErrConfig, a.Beta)
	}
	return nil
}

// reallocate computes attention with AR: q (B,H,T,hd), k and v (B,H,Lk,hd)
// (Lk = T without a cache, cached + new keys with one), keyHot the keys'
// modality one-hot (B,Lk,modality.Count), am the attention mask -> (B,H,T,hd).
func (a *AR) reallocate(s *torch.Scope, layer int, q, k, v, keyHot *torch.Tensor, am attnMask) *torch.Tensor {
	T, hd := q.Size(2), q.Size(3)
	const eps = 1e-6
	scores := s.MulScalar(s.Matmul(q, s.Transpose(k, 2, 3)), 1/math.Sqrt(float64(hd))) // (B,H,T,Lk)
	switch {
	case am.mask != nil:
		scores = s.MaskedFill(scores, s.LogicalNot(am.mask), math.Inf(-1))
	case am.causal:
		scores = s.MaskedFill(scores, s.Triu(s.Ones([]int64{T, k.Size(2)}, torch.Bool, q.Device()), 1), math.Inf(-1))
	}
	alpha := s.Softmax(s.To(scores, torch.Float32), -1) // (B,H,T,Lk) float32
	onehot := keyHot
	key := func(mod int64) *torch.Tensor { // (B,T,modality.Count) -> (B,1,1,T)
		return s.Unsqueeze(s.Transpose(s.Narrow(onehot, -1, mod, 1), 1, 2), 1)
	}
	audio, visual := key(modality.Audio), key(modality.Visual)
	mA := s.SumDims(s.Mul(alpha, audio), []int64{-1}, true)  // (B,H,T,1)
	mV := s.SumDims(s.Mul(alpha, visual), []int64{-1}, true) // (B,H,T,1)
	rho := s.Div(mA, s.AddScalar(s.Add(mA, mV), eps))
	var tau *torch.Tensor
	if a.Adaptive {
		mean := s.MeanDims(rho, []int64{1}, true) // (B,1,T,1)
		std := s.Sqrt(s.MeanDims(s.Square(s.Sub(rho, mean)), []int64{1}, true))
		tau = s.Add(mean, s.MulScalar(std, a.Kappa))
	} else {
		tau = s.Full([]int64{1}, a.TauValue, torch.Float32, q.Device())
	}
	// Flag heads above τ that also attend to some visual token (a destination).
	flag := s.To(s.LogicalAnd(s.Gt(rho, tau), s.GtScalar(mV, eps)), torch.Float32)   // (B,H,T,1)
	move := s.MulScalar(flag, a.Beta)                                                // β where flagged
	keep := s.Sub(s.Ones([]int64{1}, torch.Float32, q.Device()), s.Mul(move, audio)) // audio keys × (1−β)
	gain := s.Div(s.Mul(move, mA), s.AddScalar(mV, eps))                             // visual keys × (1 + β·M_A/M_V)
	alpha = s.Add(s.Mul(alpha, keep), s.Mul(s.Mul(alpha, visual), gain))
	if a.Stats != nil {
		hs := []int64{0, 2, 3}
		a.Stats.pending = append(a.Stats.pending, arPending{layer: layer,
			audio: s.SumDims(mA, hs, false), visual: s.SumDims(mV, hs, false), flagged: s.SumDims(flag, hs, false),
			queries: float64(q.Size(0) * T)})
	}
	return s.Matmul(s.To(alpha, v.DType()), v)
}

// collect reads the pending statistics back to the host (one read per
// forward); call it before the forward's scope closes.
func (st *ARStats) collect(s *torch.Scope, layers, heads int) error {
	if len(st.pending) == 0 {
		return nil
	}
	if st.Audio == nil {
		for _, p := range []*[][]float64{&st.Audio, &st.Visual, &st.Flagged, &st.Queries} {
			*p = make([][]float64, layers)
			for i := range *p {
				(*p)[i] = make([]float64, heads)
			}
		}
	}
	var parts []*torch.Tensor
	for _, p := range st.pending {
		parts = append(parts, p.audio, p.visual, p.flagged)
	}
	v, err := s.Cat(parts, 0).Float64s()
	if err != nil {
		return err
	}
	for i, p := range st.pending {
		row := v[i*3*heads : (i+1)*3*heads]
		for h := range heads {
			st.Audio[p.layer][h] += row[h]
			st.Visual[p.layer][h] += row[heads+h]
			st.Flagged[p.layer][h] += row[2*heads+h]
			st.Queries[p.layer][h] += p.queries
		}
	}
	st.pending = st.pending[:0]
	return nil
}
