package tokenizer

import (
	"encoding/json"
	"strings"
	"unicode"
)

// normalizer rewrites a piece of text before pre-tokenization. Offsets are not
// tracked: this package only produces ids.
type normalizer interface {
	normalize(s string) string
}

// parseNormalizer builds the "normalizer" component (nil for null).
func parseNormalizer(raw json.RawMessage) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, "normalizer")
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var v struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := decodeComponent(raw, "normalizer Sequence", &v); err != nil {
			return nil, err
		}
		seq := make(normalizerSeq, 0, len(v.Normalizers))
		for _, r := range v.Normalizers {
			n, err := parseNormalizer(r)
			if err != nil {
				return nil, err
			}
			if n != nil {
				seq = append(seq, n)
			}
		}
		return seq, nil
	case "Prepend":
		var v struct {
			Prepend string `json:"prepend"`
		}
		if err := decodeComponent(raw, "normalizer Prepend", &v); err != nil {
			return nil, err
		}
		return prependNormalizer(v.Prepend), nil
	case "Replace":
		var v struct {
			Pattern patternJSON `json:"pattern"`
			Content string      `json:"content"`
		}
		if err := decodeComponent(raw, "normalizer Replace", &v); err != nil {
			return nil, err
		}
		m, err := parsePattern(v.Pattern, "normalizer Replace")
		if err != nil {
			return nil, err
		}
		if lit, ok := m.(literalMatcher); ok && lit == "" {
			return nil, invalid("normalizer Replace: empty pattern")
		}
		return replaceNormalizer{m: m, content: v.Content}, nil
	case "Strip":
		var v struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := decodeComponent(raw, "normalizer Strip", &v); err != nil {
			return nil, err
		}
		return stripNormalizer{left: v.Left, right: v.Right}, nil
	case "Lowercase":
		return lowercaseNormalizer{}, nil
	case "NFC", "NFD", "NFKC", "NFKD":
		return unicodeNormalizer{unicodeForms[typ]}, nil
	default:
		return nil, unsupported("normalizer %q (supported: Sequence, Prepend, Replace, Strip, Lowercase, NFC, NFD, NFKC, NFKD)", typ)
	}
}

type normalizerSeq []normalizer

func (q normalizerSeq) normalize(s string) string {
	for _, n := range q {
		s = n.normalize(s)
	}
	return s
}

// prependNormalizer prepends its string to non-empty text.
type prependNormalizer string

func (p prependNormalizer) normalize(s string) string {
	if s == "" {
		return s
	}
	return string(p) + s
}

// replaceNormalizer replaces every match of a pattern with content.
type replaceNormalizer struct {
	m       matcher
	content string
}

func (r replaceNormalizer) normalize(s string) string { return replaceAll(r.m, s, r.content) }

// replaceAll replaces the matches of m in s with content.
func replaceAll(m matcher, s, content string) string {
	if lit, ok := m.(literalMatcher); ok {
		return strings.ReplaceAll(s, string(lit), content)
	}
	matches := m.findAll(s)
	if len(matches) == 0 {
		return s
	}
	var b strings.Builder
	prev := 0
	for _, p := range matches {
		b.WriteString(s[prev:p[0]])
		b.WriteString(content)
		prev = p[1]
	}
	b.WriteString(s[prev:])
	return b.String()
}

// stripNormalizer removes leading and/or trailing whitespace.
type stripNormalizer struct{ left, right bool }

func (n stripNormalizer) normalize(s string) string {
	if n.left {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	if n.right {
		s = strings.TrimRightFunc(s, unicode.IsSpace)
	}
	return s
}

// lowercaseNormalizer lowercases with Unicode's full mapping, as Rust's to_lowercase
// does (U+0130 becomes "i̇", two runes).
type lowercaseNormalizer struct{}

func (lowercaseNormalizer) normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r == 'İ' {
			b.WriteString("i\u0307")
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
