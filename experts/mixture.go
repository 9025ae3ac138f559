package experts

import (
	"fmt"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
)

// Gate routes among the experts of a target's gated groups (those with more
// than one expert). gating.Gate implements it.
type Gate interface {
	// Route returns per-token expert coefficients: x (B,T,in) and group
	// membership member (B,T,Gg) -> (B,T,ΣK), experts of gated group 0 first.
	Route(s *torch.Scope, x, member *torch.Tensor, train bool) *torch.Tensor
	// Weight is the gate matrix (ΣK, in): gated group g's rows are its gate.
	Weight() *torch.Tensor
}

// GateMaker makes the gate of one target for its gated groups and their
// expert counts.
type GateMaker func(target string, in int64, groups []string, K []int) (Gate, error)

// Mixture holds the expert groups of one target linear and computes their
// delta. It implements the model's Adapter interface.
//
// Parameters are stored fused: A stacks every group's A_g (r rows each) and
// B stacks every expert's B_{g,k} (r columns each, in slot order: the groups
// in order, each group's experts in order). Delta then costs two matmuls
// whatever the number of groups and experts.
type Mixture struct {
	Name    string
	In, Out int64
	Groups  []string      // enabled groups, in order
	K       []int         // experts per group
	A       *torch.Tensor // (G·r, in) float32 leaf
	B       *torch.Tensor // (out, E·r) float32 leaf, zero at init
	Gate    Gate          // nil when no group has more than one expert

	set       *Set
	rank      int64         // r of this target (Config.Rank unless the Target overrode it)
	alpha     float64       // α of this target
	scaling   float64       // s = α/r, or α/√r with RSLoRA
	slots     int64         // E = ΣK
	gatedIdx  []int         // groups with K > 1
	slotGroup *torch.Tensor // (E) int64: group of each slot; nil when E == G
	gateMap   *torch.Tensor // (E) int64: slot -> column of [gate output, 1]
	member    *torch.Tensor // (modality.Count, Gg) float32: tokens each gated group routes
	mix       *torch.Tensor // (modality.Count, E) float32: scaling · modality weight · routing mask
}

// Delta computes the experts' contribution for x (B,T,in) given the one-hot
// modality (B,T,modality.Count) (nil: every token is text) -> (B,T,out) float32:
//
//	h   = dropout(x)·Aᵀ                               one matmul, every group's A
//	c_e = s · w_{m(t)} · mask_{g(e)}(t) · gate_e(t)    per token and slot, elementwise
//	y   = [c_e · h_{g(e)}]_e · Bᵀ                      one matmul, every expert's B
func (m *Mixture) Delta(s *torch.Scope, x, onehot *torch.Tensor, train bool) *torch.Tensor {
	sh := x.Shape()
	if len(sh) != 3 {
		s.Fail(fmt.Errorf("%w: %s: adapter input must be (B,T,in), got %v", ErrConfig, m.Name, sh))
		return nil
	}
	B, T := sh[0], sh[1]
	G, r := int64(len(m.Groups)), m.rank
	if x.DType() != torch.Float32 {
		x = s.To(x, torch.Float32) // adapters are float32 whatever the frozen dtype
	}
	if onehot == nil {
		onehot = s.To(s.OneHot(s.Zeros([]int64{B, T}, torch.Int64, x.Device()), modality.Count), torch.Float32)
	}
	h := s.Linear(s.Dropout(x, m.set.Config.Dropout, train), m.A, nil) // (B,T,G·r)
	coef := s.Matmul(onehot, m.mix)                                    // (B,T,E)
	if m.Gate != nil {
		member := s.Matmul(onehot, m.member)    // (B,T,Gg)
		gc := m.Gate.Route(s, x, member, train) // (B,T,ΣKg)
		ones := s.Ones([]int64{B, T, 1}, torch.Float32, x.Device())
		g := s.IndexSelect(s.Cat([]*torch.Tensor{gc, ones}, -1), -1, m.gateMap) // (B,T,E)
		coef = s.Mul(coef, g)
	}
	hs := s.View(h, B, T, G, r) // (B,T,G,r)
	if m.slotGroup != nil {
		hs = s.IndexSelect(hs, 2, m.slotGroup) // (B,T,E,r)
	}
	if m.set.coefs != nil && !train {
		m.set.coefs.record(s, m, coef, onehot)
	}
	u := s.View(s.Mul(hs, s.Unsqueeze(coef, -1)), B, T, m.slots*r) // (B,T,E·r)
	y := s.Linear(u, m.B, nil)                                     // (B,T,out)
	if m.set.norms != nil && train {
		m.set.norms.record(s, y, onehot)
	}
	return y
}

// Rank is the target's r.
func (m *Mixture) Rank() int { return int(m.rank) }

// Alpha is the target's α.
func (m *Mixture) Alpha() float64 { return m.alpha }

// Scaling is the target's s: α/r, or α/√r with RSLoRA.
func (m *Mixture) Scaling() float64 { return m.scaling }

// buildMix sets mix from the target's scaling and the modality weights: the visual
// group acts on visual tokens with w_visual, the nonvisual group on text and
// audio tokens with w_nonvisual, omni on every non-pad token with 1.
func (m *Mixture) buildMix(owner *torch.Scope, wVisual, wNonVisual float64) error {
	scaling := m.scaling
	mix := make([]float32, modality.Count*int(m.slots))
	e := 0
	for gi, g := range m.Groups {
		var w [modality.Count]float64
		switch g {
		case Visual:
			w[modality.Visual] = wVisual
		case NonVisual:
			w[modality.Text], w[modality.Audio] = wNonVisual, wNonVisual
		case Omni:
			w[modality.Text], w[modality.Visual], w[modality.Audio] = 1, 1, 1
		}
		for range m.K[gi] {
			for mod := range modality.Count {
				mix[mod*int(m.slots)+e] = float32(scaling * w[mod])
			}
			e++
		}
	}
	c := owner.Child()
	defer c.Close()
	t := c.ToDevice(c.FromFloat32(mix, modality.Count, m.slots), m.set.dev)
	if err := c.Err(); err != nil {
		return err
	}
	m.mix.Free()
	m.mix = c.Keep(t) // owned by the mixture: freed on rebuild and by Set.Close
	return nil
}
