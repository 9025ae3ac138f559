package tokenizer

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// decoder turns token strings back into text pieces, which Decode then concatenates.
type decoder interface {
	decodeChain(tokens []string) []string
}

// parseDecoder builds the "decoder" component (nil for null).
func parseDecoder(raw json.RawMessage) (decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	typ, err := componentType(raw, "decoder")
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var v struct {
			Decoders []json.RawMessage `json:"decoders"`
		}
		if err := decodeComponent(raw, "decoder Sequence", &v); err != nil {
			return nil, err
		}
		seq := make(decoderSeq, 0, len(v.Decoders))
		for _, r := range v.Decoders {
			d, err := parseDecoder(r)
			if err != nil {
				return nil, err
			}
			if d != nil {
				seq = append(seq, d)
			}
		}
		return seq, nil
	case "ByteLevel":
		return byteLevelDecoder{}, nil
	case "Metaspace":
		m, err := parseMetaspace(raw, "decoder Metaspace")
		if err != nil {
			return nil, err
		}
		return m, nil
	case "Replace":
		var v struct {
			Pattern patternJSON `json:"pattern"`
			Content string      `json:"content"`
		}
		if err := decodeComponent(raw, "decoder Replace", &v); err != nil {
			return nil, err
		}
		m, err := parsePattern(v.Pattern, "decoder Replace")
		if err != nil {
			return nil, err
		}
		if lit, ok := m.(literalMatcher); ok && lit == "" {
			return nil, invalid("decoder Replace: empty pattern")
		}
		return replaceDecoder{m: m, content: v.Content}, nil
	case "ByteFallback":
		return byteFallbackDecoder{}, nil
	case "Fuse":
		return fuseDecoder{}, nil
	case "Strip":
		var v struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := decodeComponent(raw, "decoder Strip", &v); err != nil {
			return nil, err
		}
		r, size := utf8.DecodeRuneInString(v.Content)
		if size == 0 || size != len(v.Content) || r == utf8.RuneError || v.Start < 0 || v.Stop < 0 {
			return nil, invalid("decoder Strip: want one content character and non-negative counts")
		}
		return stripDecoder{content: r, start: v.Start, stop: v.Stop}, nil
	default:
		return nil, unsupported("decoder %q (supported: Sequence, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip)", typ)
	}
}

type decoderSeq []decoder

func (q decoderSeq) decodeChain(tokens []string) []string {
	for _, d := range q {
		tokens = d.decodeChain(tokens)
	}
	return tokens
}

// byteLevelDecoder maps ByteLevel characters back to bytes (tokens with a character
// outside the table keep their own bytes) and reads the whole as lossy UTF-8.
type byteLevelDecoder struct{}

func (byteLevelDecoder) decodeChain(tokens []string) []string {
	var buf []byte
	for _, tok := range tokens {
		start := len(buf)
		ok := true
		for _, c := range tok {
			b, found := charBytes[c]
			if !found {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok {
			buf = append(buf[:start], tok...)
		}
	}
	return []string{lossyUTF8(buf)}
}

// replaceDecoder replaces a pattern in every token.
type replaceDecoder struct {
	m       matcher
	content string
}

func (r replaceDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = replaceAll(r.m, t, r.content)
	}
	return out
}

// byteFallbackDecoder turns runs of <0xXX> tokens into the text their bytes spell, or
// into one U+FFFD per byte when the run is not valid UTF-8.
type byteFallbackDecoder struct{}

func (byteFallbackDecoder) decodeChain(tokens []string) []string {
	out := make([]string, 0, len(tokens))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if b, ok := parseByteToken(t); ok {
			pending = append(pending, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// parseByteToken reads "<0xXX>" (six bytes, as HF checks it; hex digits of either case,
// and the optional '+' sign Rust's integer parser accepts).
func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	hex := t[3:5]
	if hex[0] == '+' {
		hex = hex[1:]
	}
	var v byte
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

// fuseDecoder joins all tokens into one.
type fuseDecoder struct{}

func (fuseDecoder) decodeChain(tokens []string) []string {
	return []string{strings.Join(tokens, "")}
}

// stripDecoder removes up to start copies of content from the front of every token
// and up to stop copies from its end.
type stripDecoder struct {
	content     rune
	start, stop int
}

func (s stripDecoder) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		rs := []rune(t)
		lo := 0
		for lo < len(rs) && lo < s.start && rs[lo] == s.content {
			lo++
		}
		hi := len(rs)
		for k := 0; k < s.stop && hi > lo && rs[hi-1] == s.content; k++ {
			hi--
		}
		out[i] = string(rs[lo:hi])
	}
	return out
}

// lossyUTF8 converts bytes to a string the way Rust's String::from_utf8_lossy does:
// each maximal prefix of a valid sequence that cannot be completed (or a byte that
// cannot start one) becomes a single U+FFFD.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			sb.WriteByte(c)
			i++
			continue
		}
		need, lo, hi := 0, byte(0x80), byte(0xBF)
		switch {
		case c >= 0xC2 && c <= 0xDF:
			need = 1
		case c == 0xE0:
			need, lo = 2, 0xA0
		case c == 0xED:
			need, hi = 2, 0x9F
		case c >= 0xE1 && c <= 0xEF:
			need = 2
		case c == 0xF0:
			need, lo = 3, 0x90
		case c >= 0xF1 && c <= 0xF3:
			need = 3
		case c == 0xF4:
			need, hi = 3, 0x8F
		default:
			sb.WriteString("\uFFFD")
			i++
			continue
		}
		j, ok := i+1, true
		for k := 0; k < need; k++ {
			l, h := byte(0x80), byte(0xBF)
			if k == 0 {
				l, h = lo, hi
			}
			if j >= len(b) || b[j] < l || b[j] > h {
				ok = false
				break
			}
			j++
		}
		if ok {
			sb.Write(b[i:j])
		} else {
			sb.WriteString("\uFFFD")
		}
		i = j
	}
	return sb.String()
}
