// Package experts implements Modality-Specific LoRA Experts (MoSE): for each
// target linear, expert groups visual, nonvisual and omni, each with a shared
// down-projection A and K up-projections B, routed by token modality and, when
// a group has several experts, by a learned gate. All groups and experts of a
// target are computed with two matmuls (see Mixture.Delta). `method: lora`
// (one omni group with one expert) is plain PEFT LoRA.
package experts

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Expert groups.
const (
	Visual    = "visual"    // routes visual tokens
	NonVisual = "nonvisual" // routes audio and text tokens
	Omni      = "omni"      // routes every non-pad token
)

// Methods.
const (
	MethodMoSE = "mose"
	MethodLoRA = "lora"
)

// ErrConfig reports an invalid adapter configuration.
var ErrConfig = errors.New("bad adapter config")

// Config describes the adapters injected into every target linear.
type Config struct {
	Method  string   // MethodMoSE or MethodLoRA
	Targets []string // module names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj
	Rank    int      // r of every group's A and B (a Target may override it)
	Alpha   float64  // scaling α/r (α/√r with RSLoRA); a Target may override it
	RSLoRA  bool
	Dropout float64 // on the adapter input, training only
	// Experts per group (K_g); 0 disables a group. Ignored for MethodLoRA.
	VisualExperts, NonVisualExperts, OmniExperts int
	Seed                                         uint64 // of A's Kaiming-uniform init
}

// TargetModules are the module names adapters may attach to.
var TargetModules = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// Scaling is s = α/r, or α/√r with RSLoRA.
func (c Config) Scaling() float64 {
	if c.RSLoRA {
		return c.Alpha / math.Sqrt(float64(c.Rank))
	}
	return c.Alpha / float64(c.Rank)
}

// Groups returns the enabled groups and their expert counts, in the fixed
// order visual, nonvisual, omni.
func (c Config) Groups() (names []string, K []int) {
	if c.Method == MethodLoRA {
		return []string{Omni}, []int{1}
	}
	for _, g := range []struct {
		name string
		k    int
	}{{Visual, c.VisualExperts}, {NonVisual, c.NonVisualExperts}, {Omni, c.OmniExperts}} {
		if g.k > 0 {
			names = append(names, g.name)
			K = append(K, g.k)
		}
	}
	return names, K
}

// Validate checks the configuration.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	if c.Method != MethodMoSE && c.Method != MethodLoRA {
		return bad("method", "%q (want %s or %s)", c.Method, MethodMoSE, MethodLoRA)
	}
	if len(c.Targets) == 0 {
		return bad("targets", "no target modules")
	}
	for _, t := range c.Targets {
		if !slices.Contains(TargetModules, t) {
			return bad("targets", "%q is not one of %s", t, strings.Join(TargetModules, ", "))
		}
	}
	if c.Rank <= 0 {
		return bad("rank", "%d, must be > 0", c.Rank)
	}
	if c.Alpha <= 0 {
		return bad("alpha", "%g, must be > 0", c.Alpha)
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		return bad("dropout", "%g, must be in [0, 1)", c.Dropout)
	}
	if c.Method == MethodMoSE {
		for _, k := range []int{c.VisualExperts, c.NonVisualExperts, c.OmniExperts} {
			if k < 0 {
				return bad("experts", "negative expert count %d", k)
			}
		}
		if names, _ := c.Groups(); len(names) == 0 {
			return bad("experts", "every group is disabled")
		}
	}
	return nil
}

// Select returns the linears among names (HF module names, such as
// "model.layers.3.self_attn.q_proj") whose last component is a target. A target
// that matches nothing is an error listing the module names found.
func (c Config) Select(names []string) ([]string, error) {
	var out []string
	found := map[string]bool{}
	for _, n := range names {
		leaf := n[strings.LastIndex(n, ".")+1:]
		found[leaf] = true
		if slices.Contains(c.Targets, leaf) {
			out = append(out, n)
		}
	}
	for _, t := range c.Targets {
		if !found[t] {
			leaves := make([]string, 0, len(found))
			for l := range found {
				leaves = append(leaves, l)
			}
			slices.Sort(leaves)
			return nil, fmt.Errorf("%w: target module %q matches no linear of the model (found: %s)",
				ErrConfig, t, strings.Join(leaves, ", "))
		}
	}
	return out, nil
}
