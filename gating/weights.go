package gating

import (
	"fmt"
	"math"
)

// Modality-weight modes (our reading of the paper's "dynamic modality
// weights"; see the README).
const (
	// WeightsStatic keeps w_visual = w_nonvisual = 1.
	WeightsStatic = "static"
	// WeightsTokenBalanced sets w_m = N / (2·N_m) from the batch's visual and
	// non-visual token counts, so that Σ_m w_m·N_m = N: each modality gets the
	// same total adapter weight however many tokens it has.
	WeightsTokenBalanced = "token-balanced"
	// WeightsContribution (OGM-GE-like) measures the adapter's mean output norm
	// on visual and on audio tokens and moves the weights, damped, towards equal
	// contributions: w_v ← clip(w_v·(a_a/a_v)^(β/2)), w_n ← clip(w_n·(a_v/a_a)^(β/2)),
	// clipped to [ClipMin, ClipMax].
	WeightsContribution = "contribution"
)

// ModalityWeights are the scales w_visual and w_nonvisual applied to the
// routed (visual / non-visual) expert groups' output; omni is never scaled.
type ModalityWeights struct {
	Mode      string
	Visual    float64
	NonVisual float64
	Damping   float64 // β of the contribution mode (default 0.1)
	ClipMin   float64 // default 0.5
	ClipMax   float64 // default 2
}

// NewModalityWeights returns weights in the given mode, starting at (1, 1).
func NewModalityWeights(mode string) (*ModalityWeights, error) {
	switch mode {
	case "", WeightsStatic:
		mode = WeightsStatic
	case WeightsTokenBalanced, WeightsContribution:
	default:
		return nil, fmt.Errorf("%w: modality weights %q (want %s, %s or %s)", ErrConfig, mode,
			WeightsStatic, WeightsTokenBalanced, WeightsContribution)
	}
	return &ModalityWeights{Mode: mode, Visual: 1, NonVisual: 1, Damping: 0.1, ClipMin: 0.5, ClipMax: 2}, nil
}

// Observation is what a step tells the weights.
type Observation struct {
	VisualTokens, NonVisualTokens int     // in the batch (pad excluded)
	VisualNorm, AudioNorm         float64 // mean adapter output norm on visual / audio tokens
}

// NeedsNorms reports whether Update uses the adapter output norms, which cost
// a little extra work per forward.
func (w *ModalityWeights) NeedsNorms() bool { return w.Mode == WeightsContribution }

// Update moves the weights for the next step.
func (w *ModalityWeights) Update(o Observation) {
	switch w.Mode {
	case WeightsTokenBalanced:
		nv, nn := float64(o.VisualTokens), float64(o.NonVisualTokens)
		if nv == 0 || nn == 0 {
			w.Visual, w.NonVisual = 1, 1
			return
		}
		w.Visual, w.NonVisual = (nv+nn)/(2*nv), (nv+nn)/(2*nn)
	case WeightsContribution:
		// The measured norms already include the current weights; the update
		// is multiplicative, so it converges where the weighted norms agree.
		if !(o.VisualNorm > 0) || !(o.AudioNorm > 0) || math.IsInf(o.VisualNorm+o.AudioNorm, 0) {
			return
		}
		r := math.Pow(o.AudioNorm/o.VisualNorm, w.Damping/2)
		w.Visual = clip(w.Visual*r, w.ClipMin, w.ClipMax)
		w.NonVisual = clip(w.NonVisual/r, w.ClipMin, w.ClipMax)
	}
}

func clip(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }
