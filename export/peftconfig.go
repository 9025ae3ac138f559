package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/mose-llm/mose/stack"
)

// loraImport is an external adapter_config.json (PEFT 0.13.2's to 0.21.2's
// LoraConfig) reduced to what mose computes: every field is either used,
// accepted because it has no effect on a trained adapter's forward, or
// refused by name (docs/export.md: "PEFT adapters from elsewhere").
type loraImport struct {
	R             int
	Alpha         float64
	RSLoRA        bool
	targetList    []string         // target_modules as a list (all-linear expanded)
	targetRegex   *regexp.Regexp   // target_modules as a string: full-match regex
	layers        []int            // layers_to_transform (nil: every layer)
	layerRes      []*regexp.Regexp // layers_pattern, compiled (empty: any "<name>.<index>.")
	rankKeys      []string         // rank_pattern keys, in file order
	alphaKeys     []string         // alpha_pattern keys, in file order
	patternRes    []*regexp.Regexp // rankKeys then alphaKeys, compiled
	rule          patternRule      // the writer's rank/alpha pattern rule
	rankPattern   map[string]int
	alphaPattern  map[string]float64
	bias          string
	modulesToSave []string
}

// allLinear is PEFT's shorthand for every linear but the output layer.
const allLinear = "all-linear"

// defaultTargets is PEFT's target_modules for a null value
// (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING) for the families mose runs.
var defaultTargets = map[string][]string{"llama": {"q_proj", "v_proj"}, "mistral": {"q_proj", "v_proj"}, "qwen2": {"q_proj", "v_proj"}}

// newerFields are the LoraConfig fields of PEFT after 0.13.2, with the value
// at which each is accepted (stack.PEFTFieldAtDefault); writerRule reads
// peft_version.
var newerFields = stack.PEFTNewerFields

// parseLoRAConfig reads adapter_config.json's bytes for a model of the
// given model_type. Errors name the field.
func parseLoRAConfig(b []byte, modelType string) (*loraImport, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...))
	}
	isNull := func(k string) bool {
		v, ok := raw[k]
		return !ok || string(bytes.TrimSpace(v)) == "null"
	}
	get := func(k string, dst any) error {
		if isNull(k) {
			return nil
		}
		if err := strictUnmarshal(raw[k], dst); err != nil {
			return bad(k, "%s: %v", raw[k], err)
		}
		return nil
	}
	// Unknown fields first: nothing is dropped silently.
	known := map[string]bool{}
	for _, k := range peftFields {
		known[k] = true
	}
	var unknown []string
	for k := range raw {
		if !known[k] && newerFields[k] == "" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("%s: unknown LoraConfig field(s) (mose reads PEFT 0.13.2's to 0.21.2's LoraConfig and refuses what it does not implement)",
			strings.Join(unknown, ", "))
	}
	for _, k := range slices.Sorted(maps.Keys(newerFields)) {
		if v, ok := raw[k]; ok && !stack.PEFTFieldAtDefault(v, newerFields[k]) {
			return nil, bad(k, "%s is not supported (a field of PEFT after 0.13.2; mose accepts it only as %s)", v, newerFields[k])
		}
	}
	rule, err := writerRule(raw)
	if err != nil {
		return nil, err
	}

	var peftType, taskType string
	if err := get("peft_type", &peftType); err != nil {
		return nil, err
	}
	if peftType != "LORA" {
		return nil, bad("peft_type", "%q is not supported (mose imports LORA adapters only)", peftType)
	}
	if err := get("task_type", &taskType); err != nil {
		return nil, err
	}
	if taskType != "" && taskType != "CAUSAL_LM" {
		return nil, bad("task_type", "%q is not supported (want CAUSAL_LM or null: mose runs causal LMs)", taskType)
	}
	for _, k := range []string{"base_model_name_or_path", "revision", "megatron_core"} { // informational
		var s string
		if err := get(k, &s); err != nil {
			return nil, err
		}
	}
	var obj map[string]any
	if err := get("auto_mapping", &obj); err != nil { // which class AutoPeftModel builds: informational
		return nil, err
	}
	if err := get("runtime_config", &obj); err != nil { // ephemeral_gpu_offload: runtime only
		return nil, err
	}
	var flag bool
	if err := get("inference_mode", &flag); err != nil {
		return nil, err
	}
	if err := get("fan_in_fan_out", &flag); err != nil { // PEFT resets it to false on nn.Linear
		return nil, err
	}
	var dropout float64
	if err := get("lora_dropout", &dropout); err != nil {
		return nil, err
	}
	if dropout < 0 || dropout >= 1 {
		return nil, bad("lora_dropout", "%g, must be in [0, 1)", dropout)
	}

	c := &loraImport{R: 8, Alpha: 8, bias: "none", rule: rule} // LoraConfig's defaults
	if err := get("r", &c.R); err != nil {
		return nil, err
	}
	if c.R <= 0 {
		return nil, bad("r", "%d, must be > 0", c.R)
	}
	if err := get("lora_alpha", &c.Alpha); err != nil {
		return nil, err
	}
	if !(c.Alpha > 0) || math.IsInf(c.Alpha, 0) {
		return nil, bad("lora_alpha", "%g, must be > 0", c.Alpha)
	}
	if err := get("use_rslora", &c.RSLoRA); err != nil {
		return nil, err
	}
	var useDoRA bool
	if err := get("use_dora", &useDoRA); err != nil {
		return nil, err
	}
	if useDoRA {
		return nil, bad("use_dora", "true is not supported (DoRA's magnitude vector and weight normalisation are not plain LoRA)")
	}
	if err := get("bias", &c.bias); err != nil {
		return nil, err
	}
	if c.bias != "none" && c.bias != "all" && c.bias != "lora_only" {
		return nil, bad("bias", "%q (want none, all or lora_only)", c.bias)
	}
	if err := parseInit(raw, bad); err != nil {
		return nil, err
	}
	var repl []any
	if err := get("layer_replication", &repl); err != nil {
		return nil, err
	}
	if len(repl) > 0 {
		return nil, bad("layer_replication", "%s is not supported (it stacks copies of the base layers)", raw["layer_replication"])
	}
	var mega map[string]any
	if err := get("megatron_config", &mega); err != nil {
		return nil, err
	}
	if !isNull("megatron_config") {
		return nil, bad("megatron_config", "is set: Megatron parallel linears are not supported")
	}
	if err := get("modules_to_save", &c.modulesToSave); err != nil {
		return nil, err
	}
	if err := c.parseTargets(raw, modelType, get, isNull, bad); err != nil {
		return nil, err
	}
	if err := c.parsePatterns(raw, bad); err != nil {
		return nil, err
	}
	return c, nil
}

// parseInit checks init_lora_weights and loftq_config: the initialisation of
// a trained adapter does not matter (true, false, gaussian, orthogonal),
// except for the schemes that rewrite the base weights (PiSSA, CorDA, OLoRA,
// LoftQ, LoRA-GA), which PEFT redoes on load, and MiCA, a forward of its own.
func parseInit(raw map[string]json.RawMessage, bad func(string, string, ...any) error) error {
	if v, ok := raw["init_lora_weights"]; ok {
		var b bool
		var s string
		switch {
		case json.Unmarshal(v, &b) == nil:
		case json.Unmarshal(v, &s) == nil && (s == "gaussian" || s == "orthogonal"):
		case json.Unmarshal(v, &s) == nil:
			return bad("init_lora_weights", "%q is not supported: PiSSA, CorDA, OLoRA, LoftQ and LoRA-GA rewrite the base weights "+
				"at load (save the adapter with path_initial_model_for_weight_conversion to get a plain LoRA), MiCA has a "+
				"forward of its own, and EVA is not verified", s)
		default:
			return bad("init_lora_weights", "%s (want true, false or \"gaussian\")", v)
		}
	}
	if v, ok := raw["loftq_config"]; ok {
		var m map[string]any
		if err := json.Unmarshal(v, &m); err != nil {
			return bad("loftq_config", "%s: %v", v, err)
		}
		if len(m) > 0 {
			return bad("loftq_config", "%s is not supported (LoftQ quantizes the base weights)", v)
		}
	}
	return nil
}

// parseTargets reads target_modules, layers_to_transform and layers_pattern.
func (c *loraImport) parseTargets(raw map[string]json.RawMessage, modelType string, get func(string, any) error,
	isNull func(string) bool, bad func(string, string, ...any) error) error {
	var str string
	switch {
	case isNull("target_modules"):
		c.targetList = defaultTargets[modelType]
		if c.targetList == nil {
			return bad("target_modules", "null, and PEFT has no default targets for model_type %q", modelType)
		}
	case json.Unmarshal(raw["target_modules"], &str) == nil:
		if strings.ToLower(str) == allLinear {
			c.targetList = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
			break
		}
		re, err := regexp.Compile(`^(?:` + str + `)$`)
		if err != nil {
			return bad("target_modules", "the regex %q does not compile in Go's RE2 syntax: %v", str, err)
		}
		c.targetRegex = re
		for _, k := range []string{"layers_to_transform", "layers_pattern"} {
			if !isNull(k) {
				return bad(k, "cannot be used when target_modules is a regex string (PEFT refuses it too)")
			}
		}
	default:
		if err := get("target_modules", &c.targetList); err != nil {
			return err
		}
		if len(c.targetList) == 0 {
			return bad("target_modules", "empty")
		}
	}
	if !isNull("layers_to_transform") {
		var one int
		if json.Unmarshal(raw["layers_to_transform"], &one) == nil {
			c.layers = []int{one}
		} else if err := get("layers_to_transform", &c.layers); err != nil {
			return err
		} else if len(c.layers) == 0 {
			c.layers = nil // PEFT: an empty list means every layer
		}
	}
	var patterns []string
	if !isNull("layers_pattern") {
		var one string
		if json.Unmarshal(raw["layers_pattern"], &one) == nil {
			if one != "" {
				patterns = []string{one}
			}
		} else if err := get("layers_pattern", &patterns); err != nil {
			return err
		}
	}
	for _, p := range patterns {
		re, err := regexp.Compile(`^(?:.*\.` + p + `\.(\d+)\.)`)
		if err != nil {
			return bad("layers_pattern", "%q does not compile in Go's RE2 syntax: %v", p, err)
		}
		c.layerRes = append(c.layerRes, re)
	}
	return nil
}

// parsePatterns reads rank_pattern and alpha_pattern, keeping the keys in
// file order: PEFT takes the first matching key (rankAlpha).
func (c *loraImport) parsePatterns(raw map[string]json.RawMessage, bad func(string, string, ...any) error) error {
	c.rankPattern, c.alphaPattern = map[string]int{}, map[string]float64{}
	var err error
	if c.rankKeys, err = orderedKeys(raw["rank_pattern"]); err != nil {
		return bad("rank_pattern", "%v", err)
	}
	if c.alphaKeys, err = orderedKeys(raw["alpha_pattern"]); err != nil {
		return bad("alpha_pattern", "%v", err)
	}
	if len(c.rankKeys) > 0 {
		if err := strictUnmarshal(raw["rank_pattern"], &c.rankPattern); err != nil {
			return bad("rank_pattern", "%v", err)
		}
	}
	if len(c.alphaKeys) > 0 {
		if err := strictUnmarshal(raw["alpha_pattern"], &c.alphaPattern); err != nil {
			return bad("alpha_pattern", "%v", err)
		}
	}
	for _, k := range c.rankKeys {
		if c.rankPattern[k] <= 0 {
			return bad("rank_pattern", "%q: %d, must be > 0", k, c.rankPattern[k])
		}
	}
	for _, k := range c.alphaKeys {
		if v := c.alphaPattern[k]; !(v > 0) || math.IsInf(v, 0) {
			return bad("alpha_pattern", "%q: %g, must be > 0", k, v)
		}
	}
	for _, k := range slices.Concat(c.rankKeys, c.alphaKeys) {
		re, err := c.rule.pattern(k)
		if err != nil {
			return bad("rank_pattern/alpha_pattern", "the key %q does not compile in Go's RE2 syntax: %v", k, err)
		}
		c.patternRes = append(c.patternRes, re)
	}
	return nil
}

// orderedKeys lists a JSON object's keys in order (nil or null: none).
func orderedKeys(v json.RawMessage) ([]string, error) {
	if len(bytes.TrimSpace(v)) == 0 || string(bytes.TrimSpace(v)) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("%s is not an object", v)
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// strictUnmarshal decodes v into dst, refusing fractional numbers for ints.
func strictUnmarshal(v json.RawMessage, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// anyLayer is PEFT's layer index of a module name without layers_pattern:
// what its regex `^.*\.[^.]*\.(\d+)\.` captures, the last all-digit
// dot-separated part with at least two parts before it and one after. It
// returns nil or the match with the index at [1], like FindStringSubmatch.
func anyLayer(key string) []string {
	parts := strings.Split(key, ".")
	for j := len(parts) - 2; j >= 2; j-- {
		if p := parts[j]; p != "" && strings.Trim(p, "0123456789") == "" {
			return []string{"", p}
		}
	}
	return nil
}

// targets reports whether PEFT 0.13.2 puts a LoRA on the module called key
// (check_target_module_exists): a regex string must match the whole name; a
// list entry must equal the name or end it after a dot, and then
// layers_to_transform filters on the layer index.
func (c *loraImport) targets(key string) bool {
	if c.targetRegex != nil {
		return c.targetRegex.MatchString(key)
	}
	if slices.Contains(c.targetList, key) {
		return true
	}
	found := false
	for _, t := range c.targetList {
		if strings.HasSuffix(key, "."+t) {
			found = true
			break
		}
	}
	if !found || c.layers == nil {
		return found
	}
	var m []string
	if len(c.layerRes) == 0 {
		m = anyLayer(key)
	}
	for _, re := range c.layerRes {
		if m = re.FindStringSubmatch(key); m != nil {
			break
		}
	}
	if m == nil {
		return false
	}
	var idx int
	fmt.Sscan(m[1], &idx)
	return slices.Contains(c.layers, idx)
}

// rankAlpha is the per-module r and alpha of the PEFT that wrote the
// adapter (defaults r, lora_alpha). PEFT <= 0.13: the first key of
// rank_pattern then alpha_pattern whose pattern matches the module name,
// else the name itself, is looked up in both patterns. PEFT >= 0.14: the
// same, but rank_pattern and alpha_pattern each on their own.
func (c *loraImport) rankAlpha(key string) (int, float64) {
	first := func(keys []string, res []*regexp.Regexp) string {
		for i, k := range keys {
			if res[i].MatchString(key) {
				return k
			}
		}
		return key
	}
	rankRes, alphaRes := c.patternRes[:len(c.rankKeys)], c.patternRes[len(c.rankKeys):]
	rName, aName := first(c.rankKeys, rankRes), first(c.alphaKeys, alphaRes)
	if c.rule == rule013 {
		rName = first(slices.Concat(c.rankKeys, c.alphaKeys), c.patternRes)
		aName = rName
	}
	r, alpha := c.R, c.Alpha
	if v, ok := c.rankPattern[rName]; ok {
		r = v
	}
	if v, ok := c.alphaPattern[aName]; ok {
		alpha = v
	}
	return r, alpha
}

// peftFields are the fields of peft 0.13.2's LoraConfig (with PeftConfig's),
// in docs/export.md's table order; newerFields has those of later releases.
var peftFields = []string{
	"peft_type", "task_type", "base_model_name_or_path", "revision", "auto_mapping", "inference_mode",
	"r", "lora_alpha", "use_rslora", "target_modules", "layers_to_transform", "layers_pattern",
	"rank_pattern", "alpha_pattern", "bias", "modules_to_save", "lora_dropout", "fan_in_fan_out",
	"init_lora_weights", "loftq_config", "use_dora", "layer_replication", "megatron_config", "megatron_core",
	"runtime_config",
}
