package stack

import (
	"strings"
	"testing"
)

// checkPEFTFields: PEFTConfig's own fields pass; 0.13.2's other fields and
// later PEFT's pass at their inert values and are refused by name otherwise.
func TestCheckPEFTFields(t *testing.T) {
	cases := []struct {
		name, config, refuse string
	}{
		{"mose's own fields", `{"peft_type":"LORA","r":4,"lora_alpha":8,"rank_pattern":{}}`, ""},
		{"PEFT 0.21.2 at its defaults", `{"peft_type":"LORA","peft_version":"0.21.2","kasa_config":null,"use_bdlora":null,
			"lora_ga_config":null,"velora_config":null,"monteclora_config":null,"exclude_modules":null,"lora_bias":false,
			"use_qalora":false,"qalora_group_size":16,"target_parameters":null,"arrow_config":null,"ensure_weight_tying":false,
			"alora_invocation_tokens":null,"trainable_token_indices":null,"eva_config":null,"corda_config":null,
			"auto_mapping":null,"megatron_core":"megatron.core","megatron_config":null,"loftq_config":{},"layer_replication":null,
			"runtime_config":{"ephemeral_gpu_offload":false}}`, ""},
		{"kasa_config {}", `{"kasa_config":{}}`, "kasa_config"},
		{"use_bdlora set", `{"use_bdlora":{"nblocks":2}}`, "use_bdlora"},
		{"lora_bias true", `{"lora_bias":true}`, "lora_bias"},
		{"layer_replication", `{"layer_replication":[[0,2]]}`, "layer_replication"},
		{"loftq_config", `{"loftq_config":{"loftq_bits":4}}`, "loftq_config"},
		{"megatron_config", `{"megatron_config":{}}`, "megatron_config"},
		{"unknown field", `{"lora_magic":1}`, "lora_magic (unknown)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkPEFTFields([]byte(c.config), "adapter_config.json")
			if c.refuse == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.refuse) {
				t.Fatalf("want an error naming %q, got %v", c.refuse, err)
			}
		})
	}
}
