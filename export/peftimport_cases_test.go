package export

import "github.com/mose-llm/mose/internal/safetensors"

// peftImportCase is one row of docs/export.md's LoraConfig table: an adapter
// written by PEFT (variant), optionally edited, and either PEFT's own logits
// for it (golden) or the refusal's words (refuse). It runs on every fixture
// set that has the variant, or on the set named by only.
type peftImportCase struct {
	name      string
	variant   string                                             // dir under the fixture set
	only      string                                             // run on this set only ("": every set)
	set       map[string]string                                  // adapter_config.json fields to replace (raw JSON; "" deletes)
	tensors   func(ts []safetensors.Tensor) []safetensors.Tensor // edit adapter_model.safetensors
	golden    string                                             // expected.safetensors key
	goldenSet string                                             // the set whose expected.safetensors has golden ("": this one)
	refuse    string                                             // words the error must contain
}

// fieldsSince014Deleted deletes every LoraConfig field PEFT added after
// 0.13.2 (peft_version included): a 0.21 adapter_config.json as 0.13.2 wrote it.
var fieldsSince014Deleted = func() map[string]string {
	m := map[string]string{}
	for k := range newerFields {
		m[k] = ""
	}
	return m
}()

var peftImportCases = []peftImportCase{
	// Supported: plain LoRA arithmetic, checked against PEFT's logits.
	{name: "r/lora_alpha", variant: "plain", golden: "logits_plain"},
	{name: "use_rslora", variant: "rslora", golden: "logits_rslora"},
	{name: "alpha_pattern", variant: "alpha_pattern", golden: "logits_alpha_pattern"},
	{name: "rank_pattern", variant: "rank_pattern", golden: "logits_rank_pattern"},
	{name: "rank_pattern+use_rslora", variant: "rank_pattern_rslora", golden: "logits_rank_pattern_rslora"},
	{name: "rank_pattern/alpha_pattern key order", variant: "pattern_order", golden: "logits_pattern_order"},
	{name: "rank_pattern/alpha_pattern regex keys", variant: "pattern_regex", golden: "logits_pattern_regex"},
	{name: "rank_pattern full module name", variant: "pattern_full_key", golden: "logits_pattern_full_key"},
	{name: "layers_to_transform+layers_pattern", variant: "layers_to_transform", golden: "logits_layers_to_transform"},
	{name: "layers_to_transform int", variant: "layers_to_transform_int", golden: "logits_layers_to_transform_int"},
	{name: "target_modules regex", variant: "target_regex", golden: "logits_target_regex"},
	{name: "target_modules full names", variant: "target_full_names", golden: "logits_target_full_names"},
	{name: "target_modules all-linear (expanded)", variant: "all_linear", golden: "logits_all_linear"},
	{name: "target_modules all-linear", variant: "all_linear", set: map[string]string{"target_modules": `"all-linear"`}, golden: "logits_all_linear"},
	{name: "target_modules null", variant: "target_default", golden: "logits_target_default"},
	{name: "bias all", variant: "bias_all", golden: "logits_bias_all"},
	{name: "bias lora_only", variant: "bias_lora_only", golden: "logits_bias_lora_only"},
	{name: "modules_to_save lm_head", variant: "save_lm_head", golden: "logits_save_lm_head"},
	{name: "modules_to_save embed_tokens", variant: "save_embed", golden: "logits_save_embed"},
	{name: "modules_to_save lm_head (tied)", variant: "tied_save_lm_head", golden: "logits_tied_save_lm_head"},
	{name: "modules_to_save embed_tokens (tied)", variant: "tied_save_embed", golden: "logits_tied_save_embed"},

	// Accepted: no effect on a trained adapter's forward (PEFT's logits all the same).
	{name: "lora_dropout/init gaussian/inference_mode/layers_pattern alone", variant: "no_effect", golden: "logits_no_effect"},
	{name: "fan_in_fan_out", variant: "no_effect", set: map[string]string{"fan_in_fan_out": "true"}, golden: "logits_no_effect"},
	{name: "init_lora_weights false", variant: "init_false", golden: "logits_init_false"},
	{name: "init_lora_weights orthogonal", variant: "init_orthogonal", golden: "logits_init_orthogonal"},
	{name: "task_type null", variant: "plain", set: map[string]string{"task_type": "null"}, golden: "logits_plain"},
	{name: "informational fields", variant: "plain", set: map[string]string{"base_model_name_or_path": `"/elsewhere"`,
		"revision": `"main"`, "auto_mapping": `{"base_model_class":"LlamaForCausalLM","parent_library":"transformers.models.llama.modeling_llama"}`,
		"megatron_core": `"megatron.core"`, "runtime_config": `{"ephemeral_gpu_offload":false}`}, golden: "logits_plain"},
	{name: "newer fields at their defaults", variant: "plain", set: map[string]string{"lora_bias": "false", "exclude_modules": "null",
		"use_qalora": "false", "qalora_group_size": "16", "eva_config": "null", "target_parameters": "[]", "kasa_config": "null",
		"lora_ga_config": "null", "velora_config": "null", "monteclora_config": "null", "use_bdlora": "null",
		"peft_version": `"0.21.2"`}, golden: "logits_plain"},

	// The rank/alpha pattern rule of the PEFT that wrote the adapter: from
	// peft_version, else from the fields its LoraConfig had.
	{name: "0.13 files read with PEFT 0.21's rule", variant: "pattern_order", only: "0.13", set: map[string]string{"peft_version": `"0.21.2"`},
		golden: "logits_pattern_order", goldenSet: "0.21"},
	{name: "0.13 files read with PEFT 0.14's rule (lora_bias, no peft_version)", variant: "pattern_order", only: "0.13",
		set: map[string]string{"lora_bias": "false"}, golden: "logits_pattern_order", goldenSet: "0.21"},
	{name: "0.13 files read with PEFT 0.15's rule (corda_config, no peft_version)", variant: "pattern_order", only: "0.13",
		set: map[string]string{"corda_config": "null"}, golden: "logits_pattern_order", goldenSet: "0.21"},
	{name: "0.21 files read with PEFT 0.13's rule (peft_version 0.13.2)", variant: "pattern_order", only: "0.21",
		set: map[string]string{"peft_version": `"0.13.2"`}, golden: "logits_pattern_order", goldenSet: "0.13"},
	{name: "0.21 files read with PEFT 0.13's rule (0.13.2's fields only)", variant: "pattern_order", only: "0.21",
		set: fieldsSince014Deleted, golden: "logits_pattern_order", goldenSet: "0.13"},
	{name: "0.21 regex keys read with PEFT 0.13's rule", variant: "pattern_regex", only: "0.21",
		set: fieldsSince014Deleted, refuse: "the adapter wants"},
	{name: "peft_version dev build", variant: "pattern_order", only: "0.21", set: map[string]string{"peft_version": `"0.22.0.dev0@0123abc"`},
		golden: "logits_pattern_order"},
	{name: "peft_version not a version", variant: "plain", set: map[string]string{"peft_version": `"latest"`}, refuse: "peft_version"},
	{name: "peft_version not a string", variant: "plain", set: map[string]string{"peft_version": "21"}, refuse: "peft_version"},

	// Refused, naming the field.
	{name: "peft_type IA3", variant: "plain", set: map[string]string{"peft_type": `"IA3"`}, refuse: "peft_type"},
	{name: "peft_type missing", variant: "plain", set: map[string]string{"peft_type": ""}, refuse: "peft_type"},
	{name: "task_type SEQ_CLS", variant: "plain", set: map[string]string{"task_type": `"SEQ_CLS"`}, refuse: "task_type"},
	{name: "use_dora", variant: "plain", set: map[string]string{"use_dora": "true"}, refuse: "use_dora"},
	{name: "init_lora_weights pissa", variant: "plain", set: map[string]string{"init_lora_weights": `"pissa_niter_4"`}, refuse: "init_lora_weights"},
	{name: "init_lora_weights olora", variant: "plain", set: map[string]string{"init_lora_weights": `"olora"`}, refuse: "init_lora_weights"},
	{name: "init_lora_weights loftq", variant: "plain", set: map[string]string{"init_lora_weights": `"loftq"`}, refuse: "init_lora_weights"},
	{name: "init_lora_weights corda", variant: "plain", set: map[string]string{"init_lora_weights": `"corda"`}, refuse: "init_lora_weights"},
	{name: "init_lora_weights lora_ga", variant: "plain", set: map[string]string{"init_lora_weights": `"lora_ga"`}, refuse: "init_lora_weights"},
	{name: "init_lora_weights mica", variant: "plain", set: map[string]string{"init_lora_weights": `"mica"`}, refuse: "init_lora_weights"},
	{name: "init_lora_weights eva", variant: "plain", set: map[string]string{"init_lora_weights": `"eva"`}, refuse: "init_lora_weights"},
	{name: "loftq_config", variant: "plain", set: map[string]string{"loftq_config": `{"loftq_bits":4,"loftq_iter":1}`}, refuse: "loftq_config"},
	{name: "layer_replication", variant: "plain", set: map[string]string{"layer_replication": `[[0,2],[1,3]]`}, refuse: "layer_replication"},
	{name: "megatron_config", variant: "plain", set: map[string]string{"megatron_config": `{}`}, refuse: "megatron_config"},
	{name: "modules_to_save norm", variant: "plain", set: map[string]string{"modules_to_save": `["norm"]`}, refuse: "modules_to_save"},
	{name: "target_modules embed_tokens", variant: "plain", set: map[string]string{"target_modules": `["embed_tokens"]`}, refuse: "model.embed_tokens"},
	{name: "target_modules lm_head", variant: "plain", set: map[string]string{"target_modules": `["q_proj","lm_head"]`}, refuse: "lm_head"},
	{name: "target_modules mlp", variant: "plain", set: map[string]string{"target_modules": `["mlp"]`}, refuse: "target_modules"},
	{name: "target_modules regex matching the root", variant: "plain", set: map[string]string{"target_modules": `".*"`}, refuse: "target_modules"},
	{name: "target_modules matching nothing", variant: "plain", set: map[string]string{"target_modules": `["qkv_proj"]`}, refuse: "matches no module"},
	{name: "target_modules regex outside RE2", variant: "plain", set: map[string]string{"target_modules": `"(?!k).*q_proj"`}, refuse: "RE2"},
	{name: "layers_to_transform with a regex", variant: "target_regex", set: map[string]string{"layers_to_transform": "[0]"}, refuse: "layers_to_transform"},
	{name: "layers_to_transform out of range", variant: "plain", set: map[string]string{"layers_to_transform": "[7]"}, refuse: "matches no module"},
	{name: "bias unknown", variant: "plain", set: map[string]string{"bias": `"some"`}, refuse: "bias"},
	{name: "r 0", variant: "plain", set: map[string]string{"r": "0"}, refuse: "r: 0"},
	{name: "lora_alpha negative", variant: "plain", set: map[string]string{"lora_alpha": "-2"}, refuse: "lora_alpha"},
	{name: "lora_dropout 1.5", variant: "plain", set: map[string]string{"lora_dropout": "1.5"}, refuse: "lora_dropout"},
	{name: "rank_pattern 0", variant: "plain", set: map[string]string{"rank_pattern": `{"q_proj":0}`}, refuse: "rank_pattern"},
	{name: "unknown field", variant: "plain", set: map[string]string{"lora_magic": "1"}, refuse: "lora_magic"},
	{name: "lora_bias (newer PEFT)", variant: "plain", set: map[string]string{"lora_bias": "true"}, refuse: "lora_bias"},
	{name: "use_qalora (newer PEFT)", variant: "plain", set: map[string]string{"use_qalora": "true"}, refuse: "use_qalora"},
	{name: "exclude_modules (newer PEFT)", variant: "plain", set: map[string]string{"exclude_modules": `["q_proj"]`}, refuse: "exclude_modules"},
	{name: "kasa_config (PEFT 0.21)", variant: "plain", set: map[string]string{"kasa_config": `{}`}, refuse: "kasa_config"},
	{name: "lora_ga_config (PEFT 0.21)", variant: "plain", set: map[string]string{"lora_ga_config": `{"direction":"ArB2r"}`}, refuse: "lora_ga_config"},
	{name: "velora_config (PEFT 0.21)", variant: "plain", set: map[string]string{"velora_config": `{"rank":4}`}, refuse: "velora_config"},
	{name: "monteclora_config (PEFT 0.21)", variant: "plain", set: map[string]string{"monteclora_config": `{}`}, refuse: "monteclora_config"},
	{name: "use_bdlora (PEFT 0.21)", variant: "plain", set: map[string]string{"use_bdlora": `{"nblocks":2}`}, refuse: "use_bdlora"},
	{name: "arrow_config (PEFT 0.21)", variant: "plain", set: map[string]string{"arrow_config": `{}`}, refuse: "arrow_config"},
	{name: "alora_invocation_tokens (PEFT 0.21)", variant: "plain", set: map[string]string{"alora_invocation_tokens": `[]`}, refuse: "alora_invocation_tokens"},
	{name: "ensure_weight_tying (PEFT 0.21)", variant: "plain", set: map[string]string{"ensure_weight_tying": "true"}, refuse: "ensure_weight_tying"},
	{name: "trainable_token_indices (PEFT 0.21)", variant: "plain", set: map[string]string{"trainable_token_indices": `[3]`}, refuse: "trainable_token_indices"},
	{name: "target_parameters (PEFT 0.21)", variant: "plain", set: map[string]string{"target_parameters": `["mlp.experts.down_proj"]`}, refuse: "target_parameters"},

	// Tensors: every one is used or refused.
	{name: "rank_pattern the file disagrees with", variant: "plain", set: map[string]string{"rank_pattern": `{"v_proj":2}`}, refuse: "shape [4 32], the adapter wants [2 32]"},
	{name: "extra tensor (DoRA magnitude)", variant: "plain", tensors: addTensor("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", 32), refuse: "lora_magnitude_vector"},
	{name: "missing lora_B", variant: "plain", tensors: dropTensor("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"), refuse: "v_proj.lora_B"},
	{name: "bias of a bias-less linear", variant: "tied_save_lm_head", tensors: addTensor("base_model.model.model.layers.0.self_attn.k_proj.bias", 16), refuse: "k_proj.bias"},
	{name: "modules_to_save without its tensor", variant: "save_lm_head", tensors: dropTensor("base_model.model.lm_head.weight"), refuse: "modules_to_save"},
	{name: "NaN in lora_B", variant: "plain", tensors: nanTensor("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"), refuse: "NaN"},
	{name: "r beyond the dimensions", variant: "plain", set: map[string]string{"r": "1000000000000"}, refuse: "beyond"},
}
