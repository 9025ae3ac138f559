package model

import (
	"fmt"

	"github.com/mose-llm/mose/internal/torch"
)

// Sliding-window attention, as transformers 4.46.3 computes it in its eager
// and SDPA attention (the paths that run on CPU, and the reference of our
// tests):
//
//   - mistral: a non-null sliding_window W applies to every layer;
//   - qwen2: config.sliding_window is W only when use_sliding_window is true
//     (Qwen2Config sets it to None otherwise), and the causal mask then
//     applies W to every layer. max_window_layers is read only by
//     transformers' flash-attention path (which windows layers with index ≥
//     max_window_layers only, and with W+1 keys): the two paths disagree, so
//     mose accepts use_sliding_window only with max_window_layers 0 (every
//     layer windowed in both) and refuses other values by name;
//   - llama: LlamaConfig has no sliding window.
//
// A query at position p attends to keys at positions j with p−W < j ≤ p:
// W keys, itself included. The window is a banded causal mask, built only
// when some query can see past it (T > W), so that shorter sequences keep the
// fused causal SDPA path.

// qwen2MaxWindowLayersDefault is Qwen2Config's default max_window_layers.
const qwen2MaxWindowLayersDefault = 28

// Window returns the sliding-window size of layer (0: full causal attention).
func (c Config) Window(layer int) int {
	switch c.ModelType {
	case "mistral":
		if c.SlidingWindow != nil {
			return *c.SlidingWindow
		}
	case "qwen2":
		if c.UseSlidingWindow && c.SlidingWindow != nil {
			return *c.SlidingWindow
		}
	}
	return 0
}

// validateWindow refuses sliding-window settings mose does not implement.
func (c Config) validateWindow() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	switch c.ModelType {
	case "mistral":
		if c.SlidingWindow != nil && *c.SlidingWindow <= 0 {
			return bad("sliding_window", "%d, must be > 0 (or null for full attention)", *c.SlidingWindow)
		}
	case "qwen2":
		if !c.UseSlidingWindow {
			return nil
		}
		if c.SlidingWindow == nil || *c.SlidingWindow <= 0 {
			return bad("sliding_window", "use_sliding_window is true but sliding_window is not a positive window size")
		}
		mwl := qwen2MaxWindowLayersDefault
		if c.MaxWindowLayers != nil {
			mwl = *c.MaxWindowLayers
		}
		if mwl != 0 {
			return bad("max_window_layers", "%d with use_sliding_window: not supported: transformers windows every layer in its eager/SDPA attention but only layers ≥ max_window_layers in flash attention; mose supports max_window_layers 0 (every layer windowed)", mwl)
		}
	default:
		if c.UseSlidingWindow {
			return bad("use_sliding_window", "not supported for model_type %q", c.ModelType)
		}
	}
	return nil
}

// windowMask returns the (T,T) bool mask (true: attend) of causal attention
// within a window of w keys: key j for query i when i−w < j ≤ i.
func windowMask(s *torch.Scope, T, w int64, dev torch.Device) *torch.Tensor {
	ones := s.Ones([]int64{T, T}, torch.Bool, dev)
	return s.LogicalAnd(s.Tril(ones, 0), s.Triu(ones, -(w-1)))
}
