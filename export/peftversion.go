package export

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"sync"
)

// patternRule is how a PEFT release picks a target's r and lora_alpha from
// rank_pattern and alpha_pattern (verified against PEFT's source at each
// release tag and against the committed fixtures of 0.13.2 and 0.21.2).
type patternRule int

const (
	// rule013 is PEFT ≤ 0.13: the first key of rank_pattern then
	// alpha_pattern matching `.*\.{key}$` decides both r and alpha, so a
	// rank_pattern key shadows an alpha_pattern key.
	rule013 patternRule = iota
	// rule014 is PEFT 0.14: each pattern looked up on its own (first
	// matching key of each), same regex.
	rule014
	// rule015 is PEFT ≥ 0.15 (0.21 included): each pattern on its own, a
	// key matching `(.*\.)?({key})$`, so a full module name matches too.
	rule015
)

// String names the rule's PEFT releases.
func (r patternRule) String() string {
	return [...]string{"PEFT <= 0.13", "PEFT 0.14", "PEFT >= 0.15"}[r]
}

// pattern compiles a rank_pattern/alpha_pattern key as the rule's PEFT
// matches it with re.match against the module name.
func (r patternRule) pattern(key string) (*regexp.Regexp, error) {
	if r == rule015 {
		return regexp.Compile(`^(?:(?:.*\.)?(?:` + key + `)$)`) // re.match(rf"(.*\.)?({key})$", module)
	}
	return regexp.Compile(`^(?:.*\.` + key + `$)`) // re.match(rf".*\.{key}$", module)
}

// fieldsSince014 and fieldsSince015 are LoraConfig fields PEFT added in 0.14
// and from 0.15 on: save_pretrained writes every field, so an
// adapter_config.json without peft_version (written before 0.18) that has
// one of them was written by that release or later.
var (
	fieldsSince014 = []string{"exclude_modules", "eva_config", "lora_bias"}
	fieldsSince015 = []string{"trainable_token_indices", "corda_config", "use_qalora", "qalora_group_size",
		"target_parameters", "alora_invocation_tokens", "arrow_config", "ensure_weight_tying"}
)

// peftVersionRe reads major and minor from peft_version ("0.21.2",
// "0.18.0.dev0@<commit>"); compiled once, its error returned rather than
// panicking.
var peftVersionRe = sync.OnceValues(func() (*regexp.Regexp, error) {
	return regexp.Compile(`^(\d{1,4})\.(\d{1,4})(?:[.+@\-a-zA-Z0-9]*)$`)
})

// writerRule finds the rank/alpha pattern rule of the PEFT that wrote the
// config: from peft_version (written since 0.18), else from which
// LoraConfig fields are present.
func writerRule(raw map[string]json.RawMessage) (patternRule, error) {
	if v, ok := raw["peft_version"]; ok && string(v) != "null" {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return 0, fmt.Errorf("peft_version: %s is not a string", v)
		}
		re, err := peftVersionRe()
		if err != nil {
			return 0, err
		}
		m := re.FindStringSubmatch(s)
		if m == nil {
			return 0, fmt.Errorf("peft_version: %q is not a PEFT version (want MAJOR.MINOR.PATCH)", s)
		}
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		switch {
		case major == 0 && minor <= 13:
			return rule013, nil
		case major == 0 && minor == 14:
			return rule014, nil
		default:
			return rule015, nil
		}
	}
	for _, k := range fieldsSince015 {
		if _, ok := raw[k]; ok {
			return rule015, nil
		}
	}
	for _, k := range fieldsSince014 {
		if _, ok := raw[k]; ok {
			return rule014, nil
		}
	}
	return rule013, nil
}
