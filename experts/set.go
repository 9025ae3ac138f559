package experts

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
)

// Target is a linear adapters attach to. Rank and Alpha override the
// Config's for this target (PEFT's rank_pattern and alpha_pattern); 0 keeps
// the Config's value. The scaling follows from them as Config.Scaling does.
type Target struct {
	Name    string // HF module name, e.g. "model.layers.3.self_attn.q_proj"
	In, Out int64
	Rank    int     // 0: Config.Rank
	Alpha   float64 // 0: Config.Alpha
}

// Set is every Mixture of a model, sharing one configuration and the
// modality weights.
type Set struct {
	Config   Config
	Mixtures []*Mixture

	owner               *torch.Scope
	dev                 torch.Device
	wVisual, wNonVisual float64
	norms               *normRecorder // nil unless RecordNorms
	coefs               *coefRecorder // nil unless RecordCoefficients
}

// New creates a Mixture for each target on device dev. A is Kaiming-uniform
// (U(±1/√in), as PEFT) from a generator seeded with cfg.Seed, B is zero, so
// the model's output is unchanged until training moves B. newGate makes the
// gates of targets with a multi-expert group; it may be nil when no group has
// more than one expert.
func New(dev torch.Device, targets []Target, cfg Config, newGate GateMaker) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	groups, K := cfg.Groups()
	set := &Set{Config: cfg, owner: torch.NewScope(), dev: dev, wVisual: 1, wNonVisual: 1}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x65787065727473))
	for _, t := range targets {
		m, err := set.newMixture(t, groups, K, rng, newGate)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
		set.Mixtures = append(set.Mixtures, m)
	}
	return set, nil
}

func (set *Set) newMixture(t Target, groups []string, K []int, rng *rand.Rand, newGate GateMaker) (*Mixture, error) {
	tc := set.Config
	if t.Rank != 0 {
		tc.Rank = t.Rank
	}
	if t.Alpha != 0 {
		tc.Alpha = t.Alpha
	}
	if tc.Rank <= 0 || tc.Alpha <= 0 {
		return nil, fmt.Errorf("%w: rank %d and alpha %g must be > 0", ErrConfig, tc.Rank, tc.Alpha)
	}
	r := int64(tc.Rank)
	m := &Mixture{Name: t.Name, In: t.In, Out: t.Out, Groups: slices.Clone(groups), K: slices.Clone(K), set: set,
		rank: r, alpha: tc.Alpha, scaling: tc.Scaling()}
	var slotGroup []int64
	var gatedGroups []string
	var gatedK []int
	for gi, k := range K {
		m.slots += int64(k)
		for range k {
			slotGroup = append(slotGroup, int64(gi))
		}
		if k > 1 {
			m.gatedIdx = append(m.gatedIdx, gi)
			gatedGroups = append(gatedGroups, groups[gi])
			gatedK = append(gatedK, k)
		}
	}
	s := set.owner
	bound := 1 / math.Sqrt(float64(t.In)) // kaiming_uniform_(a=√5): U(±1/√fan_in)
	a := make([]float32, int64(len(groups))*r*t.In)
	for i := range a {
		a[i] = float32((2*rng.Float64() - 1) * bound)
	}
	build := s.Child()
	defer build.Close()
	m.A = s.Own(build.Keep(build.ToDevice(build.FromFloat32(a, int64(len(groups))*r, t.In), set.dev)))
	m.B = s.Zeros([]int64{t.Out, m.slots * r}, torch.Float32, set.dev)
	if m.slots != int64(len(groups)) {
		m.slotGroup = s.Own(build.Keep(build.ToDevice(build.FromInt64(slotGroup, m.slots), set.dev)))
	}
	if len(gatedGroups) > 0 {
		if newGate == nil {
			return nil, fmt.Errorf("%w: groups %v have several experts but no gate maker was given", ErrConfig, gatedGroups)
		}
		g, err := newGate(t.Name, t.In, gatedGroups, gatedK)
		if err != nil {
			return nil, err
		}
		m.Gate = g
		// slot -> column of [gate output (ΣKg), 1]; member[mod][g] = 1 if gated group g routes mod.
		var gateMap []int64
		ones := int64(0)
		for _, k := range gatedK {
			ones += int64(k)
		}
		col := int64(0)
		member := make([]float32, modality.Count*len(gatedGroups))
		for gi, k := range K {
			for j := range k {
				if k > 1 {
					gateMap = append(gateMap, col+int64(j))
				} else {
					gateMap = append(gateMap, ones)
				}
			}
			if k > 1 {
				col += int64(k)
				gg := slices.Index(gatedGroups, groups[gi])
				for _, mod := range routes(groups[gi]) {
					member[mod*len(gatedGroups)+gg] = 1
				}
			}
		}
		m.gateMap = s.Own(build.Keep(build.ToDevice(build.FromInt64(gateMap, m.slots), set.dev)))
		m.member = s.Own(build.Keep(build.ToDevice(build.FromFloat32(member, modality.Count, int64(len(gatedGroups))), set.dev)))
	}
	if err := build.Err(); err != nil {
		return nil, err
	}
	if err := m.buildMix(s, set.wVisual, set.wNonVisual); err != nil {
		return nil, err
	}
	for _, p := range []*torch.Tensor{m.A, m.B} {
		if err := p.SetRequiresGrad(true); err != nil {
			return nil, err
		}
	}
	return m, s.Err()
}

// routes lists the modality ids a group acts on.
func routes(group string) []int {
	switch group {
	case Visual:
		return []int{modality.Visual}
	case NonVisual:
		return []int{modality.Text, modality.Audio}
	}
	return []int{modality.Text, modality.Visual, modality.Audio}
}

// Close frees every tensor of the set. Gates are owned by whoever made them.
func (set *Set) Close() {
	for _, m := range set.Mixtures {
		m.mix.Free()
	}
	set.owner.Close()
}

// Mixture returns the mixture of the target called name, or nil.
func (set *Set) Mixture(name string) *Mixture {
	for _, m := range set.Mixtures {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// ModalityWeights returns the current w_visual and w_nonvisual.
func (set *Set) ModalityWeights() (visual, nonVisual float64) { return set.wVisual, set.wNonVisual }

// SetModalityWeights changes w_visual and w_nonvisual for the next forward.
func (set *Set) SetModalityWeights(visual, nonVisual float64) error {
	if visual == set.wVisual && nonVisual == set.wNonVisual {
		return nil
	}
	set.wVisual, set.wNonVisual = visual, nonVisual
	for _, m := range set.Mixtures {
		if err := m.buildMix(set.owner, visual, nonVisual); err != nil {
			return err
		}
	}
	return nil
}

// Params returns every trainable tensor, in a fixed order: for each target,
// A, B, then its gate's weight.
func (set *Set) Params() []*torch.Tensor {
	var ps []*torch.Tensor
	for _, m := range set.Mixtures {
		ps = append(ps, m.A, m.B)
		if m.Gate != nil {
			ps = append(ps, m.Gate.Weight())
		}
	}
	return ps
}
