package model

import "fmt"

// TensorShape is one weight the config calls for, with its HF name.
type TensorShape struct {
	Name  string
	Shape []int64
}

// Tensors lists every weight a checkpoint must hold for this config, in HF
// names and layer order: embeddings, layers, final norm, head (unless tied),
// then the modality projectors.
func (c Config) Tensors() []TensorShape {
	D, I, V := int64(c.HiddenSize), int64(c.IntermediateSize), int64(c.VocabSize)
	q := int64(c.NumHeads * c.HeadDim)
	kv := int64(c.NumKVHeads * c.HeadDim)
	var ts []TensorShape
	add := func(name string, shape ...int64) { ts = append(ts, TensorShape{name, shape}) }
	add("model.embed_tokens.weight", V, D)
	for i := range c.NumLayers {
		p := fmt.Sprintf("model.layers.%d.", i)
		add(p+"input_layernorm.weight", D)
		add(p+"self_attn.q_proj.weight", q, D)
		add(p+"self_attn.k_proj.weight", kv, D)
		add(p+"self_attn.v_proj.weight", kv, D)
		add(p+"self_attn.o_proj.weight", D, q)
		if c.qkvBias() {
			add(p+"self_attn.q_proj.bias", q)
			add(p+"self_attn.k_proj.bias", kv)
			add(p+"self_attn.v_proj.bias", kv)
		}
		if c.oBias() {
			add(p+"self_attn.o_proj.bias", D)
		}
		add(p+"post_attention_layernorm.weight", D)
		add(p+"mlp.gate_proj.weight", I, D)
		add(p+"mlp.up_proj.weight", I, D)
		add(p+"mlp.down_proj.weight", D, I)
		if c.MLPBias {
			add(p+"mlp.gate_proj.bias", I)
			add(p+"mlp.up_proj.bias", I)
			add(p+"mlp.down_proj.bias", D)
		}
	}
	add("model.norm.weight", D)
	if !c.TieWordEmbeddings {
		add("lm_head.weight", V, D)
	}
	for _, pc := range c.Projectors {
		for _, t := range pc.tensors(D) {
			ts = append(ts, t)
		}
	}
	return ts
}

// qkvBias: LLaMA with attention_bias, and Qwen2 always, bias q, k and v.
func (c Config) qkvBias() bool { return c.AttentionBias || c.ModelType == "qwen2" }

// oBias: only LLaMA's attention_bias also biases o_proj (Qwen2 does not).
func (c Config) oBias() bool { return c.AttentionBias && c.ModelType != "qwen2" }

// tensors lists a projector's weights: "projectors.<name>.weight|bias" for a
// linear projector, "projectors.<name>.{0,2}.weight|bias" (Linear, GELU,
// Linear, as an nn.Sequential) for mlp2.
func (pc ProjectorConfig) tensors(D int64) []TensorShape {
	p := "projectors." + pc.Name + "."
	F := int64(pc.Dim)
	if pc.Kind == ProjectorMLP2 {
		return []TensorShape{
			{p + "0.weight", []int64{D, F}}, {p + "0.bias", []int64{D}},
			{p + "2.weight", []int64{D, D}}, {p + "2.bias", []int64{D}},
		}
	}
	return []TensorShape{{p + "weight", []int64{D, F}}, {p + "bias", []int64{D}}}
}

// ParamCount is the number of weights the config calls for.
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
