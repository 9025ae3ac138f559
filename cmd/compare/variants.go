package main

import "fmt"

// variant is one adapter configuration, as --set overrides of the base recipe.
type variant struct {
	Name string
	Desc string
	Sets []string
	// Matched makes the variant plain LoRA at the rank whose trainable
	// parameter count is closest to MoSE's (computed with `mose validate`).
	Matched bool
	// AR also evaluates the final checkpoint with Attention Reallocation.
	AR bool
}

var variants = []variant{
	{Name: "mose", Desc: "MoSE 3/3/1 experts, r=8 (the demo)", AR: true},
	{Name: "lora-r8", Desc: "plain LoRA at the demo rank (r=8, α=16)", Sets: []string{"adapters.method=lora"}},
	{Name: "lora-matched", Desc: "plain LoRA at MoSE's trainable parameters (α=2r)", Matched: true, AR: true},
	{Name: "mose-unrouted", Desc: "7 gated omni experts, no modality routing (same expert count)",
		Sets: []string{"adapters.experts.visual=0", "adapters.experts.nonvisual=0", "adapters.experts.omni=7"}},
	{Name: "mose-no-lb", Desc: "MoSE without the load-balancing loss (λ_lb=0)", Sets: []string{"loss.load_balance=0"}},
	{Name: "mose-token-balanced", Desc: "MoSE, token-balanced modality weights", Sets: []string{"adapters.modality_weights=token-balanced"}},
	{Name: "mose-contribution", Desc: "MoSE, contribution modality weights", Sets: []string{"adapters.modality_weights=contribution"}},
}

func variantNames() []string {
	out := make([]string, len(variants))
	for i, v := range variants {
		out[i] = v.Name
	}
	return out
}

func lookupVariant(name string) (variant, bool) {
	for _, v := range variants {
		if v.Name == name {
			return v, true
		}
	}
	return variant{}, false
}

// sets are the variant's overrides; rank is the matched LoRA rank.
func (v variant) sets(rank int) []string {
	if !v.Matched {
		return v.Sets
	}
	return append([]string{"adapters.method=lora", fmt.Sprint("adapters.rank=", rank), fmt.Sprint("adapters.alpha=", 2*rank)}, v.Sets...)
}

// knobNames are the synthetic-data knobs a study can vary (`mose synth-data` flags).
var knobNames = []string{"audio-signal", "visual-signal", "visual-fraction", "visual-tokens", "cue", "noise", "samples"}

func knownKnob(k string) bool {
	for _, n := range knobNames {
		if n == k {
			return true
		}
	}
	return false
}
