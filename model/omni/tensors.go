package omni

import (
	"fmt"

	"github.com/mose-llm/mose/model"
)

// Tensor name prefixes of the thinker's parts, as transformers saves them
// (relative to Config.Prefix).
const (
	audioPrefix  = "audio_tower."
	visionPrefix = "visual."
)

// unusedTensors are thinker tensors the forward never reads: derived rotary
// buffers, and the audio tower's bos/eos embedding (which
// Qwen2_5OmniAudioEncoder holds but never calls).
var unusedTensors = map[string]bool{"audio_tower.audio_bos_eos_token.weight": true}

// Tensors lists every weight the thinker needs, named as in a thinker-only
// save: the decoder's (model.*, lm_head.weight), the audio tower's
// (audio_tower.*) and the vision tower's (visual.*).
func (c Config) Tensors() []model.TensorShape {
	ts := c.Decoder().Tensors()
	ts = append(ts, c.Audio.tensors()...)
	return append(ts, c.Vision.tensors()...)
}

// tensors lists the audio tower's weights.
func (a AudioConfig) tensors() []model.TensorShape {
	D, F, M, O := int64(a.DModel), int64(a.FFNDim), int64(a.NumMelBins), int64(a.OutputDim)
	var ts []model.TensorShape
	add := func(name string, shape ...int64) {
		ts = append(ts, model.TensorShape{Name: audioPrefix + name, Shape: shape})
	}
	add("conv1.weight", D, M, 3)
	add("conv1.bias", D)
	add("conv2.weight", D, D, 3)
	add("conv2.bias", D)
	for i := range a.Layers {
		p := fmt.Sprintf("layers.%d.", i)
		for _, n := range []string{"q_proj", "k_proj", "v_proj", "out_proj"} {
			add(p+"self_attn."+n+".weight", D, D)
			if n != "k_proj" { // Whisper's key projection has no bias
				add(p+"self_attn."+n+".bias", D)
			}
		}
		for _, n := range []string{"self_attn_layer_norm", "final_layer_norm"} {
			add(p+n+".weight", D)
			add(p+n+".bias", D)
		}
		add(p+"fc1.weight", F, D)
		add(p+"fc1.bias", F)
		add(p+"fc2.weight", D, F)
		add(p+"fc2.bias", D)
	}
	add("ln_post.weight", D)
	add("ln_post.bias", D)
	add("proj.weight", O, D)
	add("proj.bias", O)
	return ts
}

// tensors lists the vision tower's weights.
func (v VisionConfig) tensors() []model.TensorShape {
	H, I, O := int64(v.HiddenSize), int64(v.IntermediateSize), int64(v.OutHiddenSize)
	P, TP, C := int64(v.PatchSize), int64(v.TemporalPatchSize), int64(v.InChannels)
	M := H * int64(v.SpatialMergeSize*v.SpatialMergeSize)
	var ts []model.TensorShape
	add := func(name string, shape ...int64) {
		ts = append(ts, model.TensorShape{Name: visionPrefix + name, Shape: shape})
	}
	add("patch_embed.proj.weight", H, C, TP, P, P)
	for i := range v.Depth {
		p := fmt.Sprintf("blocks.%d.", i)
		add(p+"norm1.weight", H)
		add(p+"norm2.weight", H)
		for _, n := range []string{"q", "k", "v", "proj"} {
			add(p+"attn."+n+".weight", H, H)
			add(p+"attn."+n+".bias", H)
		}
		add(p+"mlp.gate_proj.weight", I, H)
		add(p+"mlp.gate_proj.bias", I)
		add(p+"mlp.up_proj.weight", I, H)
		add(p+"mlp.up_proj.bias", I)
		add(p+"mlp.down_proj.weight", H, I)
		add(p+"mlp.down_proj.bias", H)
	}
	add("merger.ln_q.weight", H)
	add("merger.mlp.0.weight", M, M)
	add("merger.mlp.0.bias", M)
	add("merger.mlp.2.weight", O, M)
	add("merger.mlp.2.bias", O)
	return ts
}

// ParamCount is the number of weights the thinker needs.
func (c Config) ParamCount() int64 {
	var n int64
	for _, t := range c.Tensors() {
		m := int64(1)
		for _, d := range t.Shape {
			m *= d
		}
		n += m
	}
	return n
}
