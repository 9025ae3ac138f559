package stack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// PEFTNewerFields are the LoraConfig fields of PEFT releases after 0.13.2 (up
// to 0.21.2), each with the value at which it leaves plain LoRA unchanged
// (PEFTFieldAtDefault): adapters carrying them are accepted at that value and
// refused by name otherwise. peft_version (0.18+) is any string here; the
// importer reads it for the rank/alpha pattern rule.
var PEFTNewerFields = map[string]string{
	"exclude_modules": "empty", "lora_bias": "false", "use_qalora": "false", "eva_config": "null",
	"corda_config": "null", "trainable_token_indices": "null", "target_parameters": "empty",
	"alora_invocation_tokens": "null", "arrow_config": "null", "ensure_weight_tying": "false",
	"lora_ga_config": "null", "velora_config": "null", "monteclora_config": "null", "use_bdlora": "null",
	"kasa_config":       "null",
	"qalora_group_size": "any", // used only with use_qalora
	"peft_version":      "any",
}

// PEFTFieldAtDefault reports whether a JSON value is the given default:
// "null" is JSON null only (PEFT builds a sub-config, enabling its variant,
// from an empty object), "empty" is null or an empty list or object, "any"
// is anything, else the literal JSON text.
func PEFTFieldAtDefault(v json.RawMessage, def string) bool {
	s := string(bytes.TrimSpace(v))
	switch def {
	case "any":
		return true
	case "empty":
		return s == "null" || s == "[]" || s == "{}"
	default:
		return s == def
	}
}

// peft013Other are the fields of PEFT 0.13.2's LoraConfig that PEFTConfig
// does not decode, with the value at which LoadExport accepts them.
var peft013Other = map[string]string{
	"auto_mapping": "any", "megatron_core": "any", "runtime_config": "any",
	"layer_replication": "empty", "loftq_config": "empty", "megatron_config": "null",
}

// checkPEFTFields refuses, by name, an adapter_config.json field that
// PEFTConfig does not read unless it is one that has no effect at the value
// it has: a PEFT adapter with DoRA's successors, KaSA or a QA-LoRA pooling is
// not read as plain LoRA.
func checkPEFTFields(b []byte, path string) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	known := map[string]bool{}
	rt := reflect.TypeFor[PEFTConfig]()
	for i := range rt.NumField() {
		known[strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		def, newer := PEFTNewerFields[k]
		if !newer {
			def, newer = peft013Other[k]
		}
		switch {
		case known[k]:
		case !newer:
			bad = append(bad, fmt.Sprintf("%s (unknown)", k))
		case !PEFTFieldAtDefault(raw[k], def):
			bad = append(bad, fmt.Sprintf("%s: %s (accepted only as %s)", k, raw[k], def))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: %s: not supported (mose reads plain LoRA adapters)", path, strings.Join(bad, "; "))
	}
	return nil
}
