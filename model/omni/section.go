package omni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// section is one JSON object of config.json (the thinker config or one of
// its sub-configs) being read: every key must be either read by mose or
// listed as inert (not changing the thinker's math), so that a key mose
// does not know is refused by name rather than silently ignored.
type section struct {
	path string                     // dotted path for errors, e.g. "thinker_config.text_config"
	raw  map[string]json.RawMessage // the object's keys
	used map[string]bool            // keys read or declared inert
	err  error                      // the first error
}

// newSection parses b as a JSON object at path.
func newSection(path string, b []byte) (*section, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return nil, fmt.Errorf("%w: %s: want a JSON object", ErrConfig, orTop(path))
	}
	return &section{path: path, raw: raw, used: map[string]bool{}}, nil
}

func orTop(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

func (s *section) key(k string) string {
	if s.path == "" {
		return k
	}
	return s.path + "." + k
}

// fail records the first error, naming the key.
func (s *section) fail(k, format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("%w: %s: %s", ErrConfig, s.key(k), fmt.Sprintf(format, args...))
	}
}

// get marks k as read and returns its value; ok is false when k is absent
// or null (HF writes null for "not set").
func (s *section) get(k string) (json.RawMessage, bool) {
	s.used[k] = true
	v, ok := s.raw[k]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil, false
	}
	return v, true
}

// has reports whether k is present and not null (without marking it).
func (s *section) has(k string) bool {
	v, ok := s.raw[k]
	return ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// int reads an integer key into *dst (left as is when absent).
func (s *section) int(k string, dst *int) bool {
	v, ok := s.get(k)
	if !ok {
		return false
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		s.fail(k, "want an integer, got %s", v)
		return false
	}
	*dst = int(f)
	return true
}

// float reads a number key into *dst.
func (s *section) float(k string, dst *float64) bool {
	v, ok := s.get(k)
	if !ok {
		return false
	}
	if err := json.Unmarshal(v, dst); err != nil || math.IsNaN(*dst) || math.IsInf(*dst, 0) {
		s.fail(k, "want a number, got %s", v)
		return false
	}
	return true
}

// bool reads a boolean key into *dst.
func (s *section) bool(k string, dst *bool) bool {
	v, ok := s.get(k)
	if !ok {
		return false
	}
	if err := json.Unmarshal(v, dst); err != nil {
		s.fail(k, "want true or false, got %s", v)
		return false
	}
	return true
}

// str reads a string key into *dst.
func (s *section) str(k string, dst *string) bool {
	v, ok := s.get(k)
	if !ok {
		return false
	}
	if err := json.Unmarshal(v, dst); err != nil {
		s.fail(k, "want a string, got %s", v)
		return false
	}
	return true
}

// ints reads a list of integers into *dst.
func (s *section) ints(k string, dst *[]int) bool {
	v, ok := s.get(k)
	if !ok {
		return false
	}
	var fs []float64
	if err := json.Unmarshal(v, &fs); err != nil {
		s.fail(k, "want a list of integers, got %s", v)
		return false
	}
	out := make([]int, len(fs))
	for i, f := range fs {
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			s.fail(k, "want a list of integers, got %s", v)
			return false
		}
		out[i] = int(f)
	}
	*dst = out
	return true
}

// sub returns the object at k as a section (nil when absent or null).
func (s *section) sub(k string) *section {
	v, ok := s.get(k)
	if !ok {
		return nil
	}
	sub, err := newSection(s.key(k), v)
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return nil
	}
	return sub
}

// alias reads an integer key that an older name may also give (HF's
// attribute_map): both present and different is refused.
func (s *section) alias(k, old string, dst *int) {
	var a, b int
	hasA, hasB := s.int(k, &a), s.int(old, &b)
	switch {
	case hasA && hasB && a != b:
		s.fail(old, "%d disagrees with %s %d", b, k, a)
	case hasA:
		*dst = a
	case hasB:
		*dst = b
	}
}

// wantFloat refuses a present number key whose value is not the one mose
// implements (why says which).
func (s *section) wantFloat(k string, want float64, why string) {
	var f float64
	if s.float(k, &f) && f != want {
		s.fail(k, "%g is not supported (%s)", f, why)
	}
}

// inert declares keys that do not change the thinker's forward (generation
// defaults, labels, bookkeeping): present or not, they are accepted.
func (s *section) inert(keys ...string) {
	for _, k := range keys {
		s.used[k] = true
	}
}

// done returns the first error, or an error naming every key that was
// neither read nor declared inert.
func (s *section) done() error {
	if s.err != nil {
		return s.err
	}
	var unknown []string
	for k := range s.raw {
		if !s.used[k] {
			unknown = append(unknown, s.key(k))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("%w: unknown field(s) %s: mose does not know whether they change the math, so it refuses them (remove them if they do not)", ErrConfig, strings.Join(unknown, ", "))
}

// genericKeys are the keys transformers' PretrainedConfig writes into every
// config (generation defaults, labels, export flags, bookkeeping). None
// changes the forward of the thinker, except pruned_heads, which is read
// separately and must be empty.
var genericKeys = []string{
	"_name_or_path", "_attn_implementation_autoset", "_commit_hash", "transformers_version",
	"architectures", "torch_dtype", "dtype", "use_bfloat16", "return_dict", "output_hidden_states",
	"output_attentions", "torchscript", "tf_legacy_loss", "chunk_size_feed_forward",
	"is_encoder_decoder", "is_decoder", "cross_attention_hidden_size", "add_cross_attention",
	"tie_encoder_decoder", "max_length", "min_length", "do_sample", "early_stopping", "num_beams",
	"num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p", "typical_p",
	"repetition_penalty", "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size",
	"bad_words_ids", "num_return_sequences", "output_scores", "return_dict_in_generate",
	"forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
	"exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "finetuning_task",
	"id2label", "label2id", "tokenizer_class", "prefix", "bos_token_id", "pad_token_id", "eos_token_id",
	"sep_token_id", "decoder_start_token_id", "task_specific_params", "problem_type",
	"initializer_range", "init_std", "use_cache",
}

// generic declares genericKeys inert and refuses non-empty pruned_heads.
func (s *section) generic() {
	s.inert(genericKeys...)
	if v, ok := s.get("pruned_heads"); ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil || len(m) > 0 {
			s.fail("pruned_heads", "%s is not supported (mose runs every head: want {})", v)
		}
	}
}

// oneOf refuses a string value outside allowed.
func (s *section) oneOf(k, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		s.fail(k, "%q is not supported (want %s)", v, strings.Join(allowed, " or "))
	}
}
