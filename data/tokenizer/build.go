package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TinySpec describes a small LLaMA-2-style tokenizer for BuildTinySpec.
type TinySpec struct {
	// Words each become one token, "▁" + word, so text made of them (separated by
	// single spaces) encodes to one id per word. A word may not be empty, contain
	// whitespace or "▁", or contain a special token.
	Words []string
	// Special lists extra special tokens (e.g. "<pad>"), given the ids after the vocab.
	Special []string
}

// The LLaMA-2 specials BuildTinySpec always creates, at ids 0, 1 and 2.
var tinyBaseSpecials = []string{"<unk>", "<s>", "</s>"}

// BuildTiny returns a LLaMA-2-style tokenizer.json (byte-fallback BPE, the
// Prepend/Replace normalizer, <unk>/<s>/</s> at ids 0-2, the 256 byte tokens, a
// TemplateProcessing that adds <s>) whose merges make every word of words, with the
// "▁" prefix, a single token. HF tokenizers loads the result; see BuildTinySpec.
func BuildTiny(words []string) ([]byte, error) {
	return BuildTinySpec(TinySpec{Words: words})
}

// BuildTinySpec is BuildTiny with extra special tokens. The vocab holds, in id order:
// the three specials, <0x00>..<0xFF>, "▁", the printable ASCII characters, the other
// characters of the words (sorted), then one token per merge. Each word adds the
// merges ("▁" + its first k runes, rune k+1) it still lacks, in order, so its
// characters merge left to right into "▁word". The output is deterministic.
func BuildTinySpec(spec TinySpec) ([]byte, error) {
	forbidden := append(slices.Clone(tinyBaseSpecials), spec.Special...)
	for _, s := range spec.Special {
		if s == "" || !utf8.ValidString(s) || slices.Contains(tinyBaseSpecials, s) {
			return nil, fmt.Errorf("%w: bad special token %q", ErrBuild, s)
		}
	}
	seen := map[string]bool{}
	var words []string
	for _, w := range spec.Words {
		if err := checkTinyWord(w, forbidden); err != nil {
			return nil, err
		}
		if !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}

	vocab := newOrderedVocab()
	for _, s := range tinyBaseSpecials {
		vocab.add(s)
	}
	for b := 0; b < 256; b++ {
		vocab.add(fmt.Sprintf("<0x%02X>", b))
	}
	vocab.add("▁")
	for c := rune('!'); c <= '~'; c++ {
		vocab.add(string(c))
	}
	var others []rune
	for _, w := range words {
		for _, r := range w {
			if _, ok := vocab.ids[string(r)]; !ok && !slices.Contains(others, r) {
				others = append(others, r)
			}
		}
	}
	slices.Sort(others)
	for _, r := range others {
		vocab.add(string(r))
	}
	var merges [][2]string
	for _, w := range words {
		prefix := "▁"
		for _, r := range w {
			merged := prefix + string(r)
			if _, ok := vocab.ids[merged]; !ok {
				merges = append(merges, [2]string{prefix, string(r)})
				vocab.add(merged)
			}
			prefix = merged
		}
	}
	return writeTinyJSON(vocab, merges, spec.Special)
}

// checkTinyWord rejects words BuildTinySpec cannot turn into one token.
func checkTinyWord(w string, forbidden []string) error {
	switch {
	case w == "":
		return fmt.Errorf("%w: empty word", ErrBuild)
	case !utf8.ValidString(w):
		return fmt.Errorf("%w: word %q is not valid UTF-8", ErrBuild, w)
	case strings.ContainsFunc(w, unicode.IsSpace) || strings.Contains(w, "▁"):
		return fmt.Errorf("%w: word %q contains whitespace or ▁", ErrBuild, w)
	}
	for _, f := range forbidden {
		if strings.Contains(w, f) {
			return fmt.Errorf("%w: word %q contains the special token %q", ErrBuild, w, f)
		}
	}
	return nil
}

// orderedVocab assigns ids in insertion order.
type orderedVocab struct {
	ids    map[string]int
	tokens []string
}

func newOrderedVocab() *orderedVocab { return &orderedVocab{ids: map[string]int{}} }

func (v *orderedVocab) add(tok string) {
	if _, ok := v.ids[tok]; !ok {
		v.ids[tok] = len(v.tokens)
		v.tokens = append(v.tokens, tok)
	}
}

// jsonString encodes s as a JSON string without HTML escaping (so "<s>" stays legible).
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	return strings.TrimSuffix(b.String(), "\n")
}

// writeTinyJSON lays out the tokenizer.json the way HF writes one, with the vocab in
// id order and merges in the legacy "a b" form every tokenizers version reads.
func writeTinyJSON(vocab *orderedVocab, merges [][2]string, special []string) ([]byte, error) {
	var b bytes.Buffer
	addedTok := func(id int, content string) string {
		return fmt.Sprintf(`{"id":%d,"content":%s,"single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}`,
			id, jsonString(content))
	}
	b.WriteString("{\n\"version\":\"1.0\",\n\"truncation\":null,\n\"padding\":null,\n\"added_tokens\":[\n")
	var added []string
	for i, s := range tinyBaseSpecials {
		added = append(added, addedTok(i, s))
	}
	for i, s := range special {
		added = append(added, addedTok(len(vocab.tokens)+i, s))
	}
	b.WriteString(strings.Join(added, ",\n"))
	b.WriteString("\n],\n")
	b.WriteString(`"normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},` + "\n")
	b.WriteString(`"pre_tokenizer":null,` + "\n")
	b.WriteString(`"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],` +
		`"pair":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"<s>","type_id":1}},{"Sequence":{"id":"B","type_id":1}}],` +
		`"special_tokens":{"<s>":{"id":"<s>","ids":[1],"tokens":["<s>"]}}},` + "\n")
	b.WriteString(`"decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]},` + "\n")
	b.WriteString(`"model":{"type":"BPE","dropout":null,"unk_token":"<unk>","continuing_subword_prefix":null,"end_of_word_suffix":null,"fuse_unk":true,"byte_fallback":true,"ignore_merges":false,` + "\n")
	b.WriteString("\"vocab\":{\n")
	for i, tok := range vocab.tokens {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "%s:%d", jsonString(tok), i)
	}
	b.WriteString("\n},\n\"merges\":[\n")
	for i, m := range merges {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.WriteString(jsonString(m[0] + " " + m[1]))
	}
	b.WriteString("\n]}}\n")
	// The result must load here too; a failure is a bug in this function.
	if _, err := Parse(b.Bytes()); err != nil {
		return nil, fmt.Errorf("%w: generated tokenizer.json does not load: %v", ErrBuild, err)
	}
	return b.Bytes(), nil
}
