package tokenizer

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// piece is a span of normalized text on its way to the model. atStart tells whether it
// begins at offset 0 of the original input (Metaspace's "first" scheme needs this).
type piece struct {
	text    string
	atStart bool
}

// preTokenizer splits pieces into smaller pieces (and may rewrite them).
type preTokenizer interface {
	preTokenize(ps []piece) []piece
}

// parsePreTokenizer builds the "pre_tokenizer" component (nil for null).
func parsePreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, "pre_tokenizer")
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var v struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := decodeComponent(raw, "pre_tokenizer Sequence", &v); err != nil {
			return nil, err
		}
		seq := make(preTokenizerSeq, 0, len(v.PreTokenizers))
		for _, r := range v.PreTokenizers {
			p, err := parsePreTokenizer(r)
			if err != nil {
				return nil, err
			}
			if p != nil {
				seq = append(seq, p)
			}
		}
		return seq, nil
	case "ByteLevel":
		var v struct {
			AddPrefixSpace bool  `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}
		if err := decodeComponent(raw, "pre_tokenizer ByteLevel", &v); err != nil {
			return nil, err
		}
		useRegex := v.UseRegex == nil || *v.UseRegex // HF's default is true
		return byteLevelPre{addPrefixSpace: v.AddPrefixSpace, useRegex: useRegex}, nil
	case "Metaspace":
		m, err := parseMetaspace(raw, "pre_tokenizer Metaspace")
		if err != nil {
			return nil, err
		}
		return m, nil
	case "Split":
		var v struct {
			Pattern  patternJSON `json:"pattern"`
			Behavior string      `json:"behavior"`
			Invert   bool        `json:"invert"`
		}
		if err := decodeComponent(raw, "pre_tokenizer Split", &v); err != nil {
			return nil, err
		}
		m, err := parsePattern(v.Pattern, "pre_tokenizer Split")
		if err != nil {
			return nil, err
		}
		if lit, ok := m.(literalMatcher); ok && lit == "" {
			return nil, invalid("pre_tokenizer Split: empty pattern")
		}
		b, ok := splitBehaviors[v.Behavior]
		if !ok {
			return nil, invalid("pre_tokenizer Split: unknown behavior %q", v.Behavior)
		}
		return splitPre{m: m, behavior: b, invert: v.Invert}, nil
	case "Digits", "Punctuation", "Whitespace", "WhitespaceSplit":
		return parseClassPre(typ, raw)
	default:
		return nil, unsupported("pre_tokenizer %q (supported: Sequence, ByteLevel, Metaspace, Split, Digits, Punctuation, Whitespace, WhitespaceSplit)", typ)
	}
}

type preTokenizerSeq []preTokenizer

func (q preTokenizerSeq) preTokenize(ps []piece) []piece {
	for _, p := range q {
		ps = p.preTokenize(ps)
	}
	return ps
}

// splitBehavior is HF's SplitDelimiterBehavior.
type splitBehavior int

const (
	behaviorRemoved splitBehavior = iota
	behaviorIsolated
	behaviorMergedWithPrevious
	behaviorMergedWithNext
	behaviorContiguous
)

var splitBehaviors = map[string]splitBehavior{
	"Removed":            behaviorRemoved,
	"Isolated":           behaviorIsolated,
	"MergedWithPrevious": behaviorMergedWithPrevious,
	"MergedWithNext":     behaviorMergedWithNext,
	"Contiguous":         behaviorContiguous,
}

// span is a [start, end) byte range with a flag telling whether it is a match.
type span struct {
	start, end int
	match      bool
}

// spans interleaves the matches of m with the gaps between them, covering s.
func spans(m matcher, s string, invert bool) []span {
	var out []span
	prev := 0
	for _, p := range m.findAll(s) {
		if p[0] > prev {
			out = append(out, span{prev, p[0], invert})
		}
		out = append(out, span{p[0], p[1], !invert})
		prev = p[1]
	}
	if prev < len(s) {
		out = append(out, span{prev, len(s), invert})
	}
	return out
}

// splitSpans applies a split behavior to s's spans and returns the kept ranges.
func splitSpans(sp []span, behavior splitBehavior) [][2]int {
	var out [][2]int
	switch behavior {
	case behaviorRemoved:
		for _, x := range sp {
			if !x.match {
				out = append(out, [2]int{x.start, x.end})
			}
		}
	case behaviorIsolated:
		for _, x := range sp {
			out = append(out, [2]int{x.start, x.end})
		}
	case behaviorContiguous:
		prevMatch := false
		for i, x := range sp {
			if i > 0 && x.match == prevMatch {
				out[len(out)-1][1] = x.end
			} else {
				out = append(out, [2]int{x.start, x.end})
			}
			prevMatch = x.match
		}
	case behaviorMergedWithPrevious:
		prevMatch := false
		for _, x := range sp {
			if x.match && !prevMatch && len(out) > 0 {
				out[len(out)-1][1] = x.end
			} else {
				out = append(out, [2]int{x.start, x.end})
			}
			prevMatch = x.match
		}
	case behaviorMergedWithNext:
		// Walk backwards: a match glues onto the span after it.
		prevMatch := false
		var rev [][2]int
		for i := len(sp) - 1; i >= 0; i-- {
			x := sp[i]
			if x.match && !prevMatch && len(rev) > 0 {
				rev[len(rev)-1][0] = x.start
			} else {
				rev = append(rev, [2]int{x.start, x.end})
			}
			prevMatch = x.match
		}
		for i := len(rev) - 1; i >= 0; i-- {
			out = append(out, rev[i])
		}
	}
	return out
}

// splitPieces splits every piece with m and behavior, dropping empty results.
func splitPieces(ps []piece, m matcher, behavior splitBehavior, invert bool) []piece {
	out := make([]piece, 0, len(ps))
	for _, p := range ps {
		for _, r := range splitSpans(spans(m, p.text, invert), behavior) {
			if r[1] > r[0] {
				out = append(out, piece{text: p.text[r[0]:r[1]], atStart: p.atStart && r[0] == 0})
			}
		}
	}
	return out
}

// splitPre is the Split pre-tokenizer.
type splitPre struct {
	m        matcher
	behavior splitBehavior
	invert   bool
}

func (s splitPre) preTokenize(ps []piece) []piece {
	return splitPieces(ps, s.m, s.behavior, s.invert)
}

// byteLevelPre is the ByteLevel pre-tokenizer: optional prefix space, optional GPT-2
// regex split, then every byte mapped to its printable stand-in character.
type byteLevelPre struct {
	addPrefixSpace bool
	useRegex       bool
}

func (b byteLevelPre) preTokenize(ps []piece) []piece {
	if b.addPrefixSpace {
		for i := range ps {
			// HF cannot prepend to an empty string (nothing to align it with).
			if ps[i].text != "" && !strings.HasPrefix(ps[i].text, " ") {
				ps[i].text = " " + ps[i].text
			}
		}
	}
	if b.useRegex {
		ps = splitPieces(ps, gpt2Matcher{}, behaviorIsolated, false)
	}
	for i := range ps {
		ps[i].text = bytesToUnicode(ps[i].text)
	}
	return dropEmpty(ps)
}

// dropEmpty removes empty pieces, as HF does after every split.
func dropEmpty(ps []piece) []piece {
	out := ps[:0]
	for _, p := range ps {
		if p.text != "" {
			out = append(out, p)
		}
	}
	return out
}

// prependScheme is Metaspace's prepend_scheme.
type prependScheme int

const (
	prependAlways prependScheme = iota
	prependFirst
	prependNever
)

// metaspace is the Metaspace pre-tokenizer and decoder.
type metaspace struct {
	replacement string // one character
	scheme      prependScheme
	split       bool
}

// parseMetaspace reads a Metaspace object, including the legacy add_prefix_space flag.
func parseMetaspace(raw json.RawMessage, what string) (metaspace, error) {
	var v struct {
		Replacement    string  `json:"replacement"`
		AddPrefixSpace *bool   `json:"add_prefix_space"`
		PrependScheme  *string `json:"prepend_scheme"`
		Split          *bool   `json:"split"`
	}
	if err := decodeComponent(raw, what, &v); err != nil {
		return metaspace{}, err
	}
	if utf8.RuneCountInString(v.Replacement) != 1 {
		return metaspace{}, invalid("%s: replacement %q must be one character", what, v.Replacement)
	}
	m := metaspace{replacement: v.Replacement, scheme: prependAlways, split: v.Split == nil || *v.Split}
	if v.PrependScheme != nil {
		switch *v.PrependScheme {
		case "always":
			m.scheme = prependAlways
		case "first":
			m.scheme = prependFirst
		case "never":
			m.scheme = prependNever
		default:
			return metaspace{}, invalid("%s: unknown prepend_scheme %q", what, *v.PrependScheme)
		}
	}
	if v.AddPrefixSpace != nil && !*v.AddPrefixSpace {
		if v.PrependScheme != nil && m.scheme != prependNever {
			return metaspace{}, invalid("%s: add_prefix_space false contradicts prepend_scheme %q", what, *v.PrependScheme)
		}
		m.scheme = prependNever
	}
	return m, nil
}

func (m metaspace) preTokenize(ps []piece) []piece {
	for i := range ps {
		if ps[i].text == "" {
			continue // HF cannot prepend to an empty string
		}
		t := strings.ReplaceAll(ps[i].text, " ", m.replacement)
		switch m.scheme {
		case prependAlways:
			if !strings.HasPrefix(t, m.replacement) {
				t = m.replacement + t
			}
		case prependFirst:
			if !strings.HasPrefix(t, m.replacement) && ps[i].atStart {
				t = m.replacement + t
			}
		}
		ps[i].text = t
	}
	if !m.split {
		return dropEmpty(ps)
	}
	return splitPieces(ps, literalMatcher(m.replacement), behaviorMergedWithNext, false)
}

// decodeChain replaces the replacement character with a space, except in the first
// token when a prefix was prepended at encoding (there it is dropped).
func (m metaspace) decodeChain(tokens []string) []string {
	r, _ := utf8.DecodeRuneInString(m.replacement)
	out := make([]string, len(tokens))
	for i, tok := range tokens {
		var b strings.Builder
		for _, c := range tok {
			switch {
			case c != r:
				b.WriteRune(c)
			case i == 0 && m.scheme != prependNever:
			default:
				b.WriteByte(' ')
			}
		}
		out[i] = b.String()
	}
	return out
}

// byteChars maps every byte to GPT-2's printable stand-in: printable Latin-1 bytes map
// to themselves, the others to U+0100 onwards in byte order.
var byteChars, charBytes = func() ([256]rune, map[rune]byte) {
	var bc [256]rune
	cb := make(map[rune]byte, 256)
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			bc[b] = rune(b)
		} else {
			bc[b] = 256 + n
			n++
		}
		cb[bc[b]] = byte(b)
	}
	return bc, cb
}()

// bytesToUnicode maps each byte of s to its ByteLevel character.
func bytesToUnicode(s string) string {
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteChars[s[i]])
	}
	return b.String()
}
