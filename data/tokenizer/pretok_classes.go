package tokenizer

import (
	"encoding/json"
	"unicode"
)

// The character-class pre-tokenizers of HF tokenizers: Digits (SmolLM, StarCoder),
// Punctuation, Whitespace and WhitespaceSplit (BERT-style files).

// runeMatcher matches every single rune for which f holds; the split behaviour
// then decides how runs of matches are kept (HF splits on a char predicate).
type runeMatcher func(rune) bool

func (f runeMatcher) findAll(s string) [][2]int {
	var out [][2]int
	for i, r := range s {
		if f(r) {
			out = append(out, [2]int{i, i + len(string(r))})
		}
	}
	return out
}

// isNumeric is Rust's char::is_numeric: general categories Nd, Nl and No.
func isNumeric(r rune) bool { return unicode.IsNumber(r) }

// isPunctuation is HF's is_punc: ASCII punctuation (which includes $+<=>^`|~, the
// ASCII symbols) or a Unicode punctuation category (Pc, Pd, Ps, Pe, Pi, Pf, Po).
func isPunctuation(r rune) bool {
	if r < 0x80 {
		return r > ' ' && r < 0x7f && !('0' <= r && r <= '9') && !('a' <= r && r <= 'z') && !('A' <= r && r <= 'Z')
	}
	return unicode.IsPunct(r)
}

// isWord is the Unicode \w of Rust's regex crate (UTS #18), which HF's Whitespace
// pre-tokenizer runs: Alphabetic, marks, decimal digits, connector punctuation and
// the joiners U+200C/U+200D. (², ½ are not word characters; Ⅻ, a letter number, is.
// Oniguruma's \w, in Split regexes, differs: see onigWord.)
func isWord(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.In(r, unicode.Nd, unicode.Nl, unicode.Pc, unicode.Other_Alphabetic, unicode.Join_Control)
}

// runPre splits every piece with a rune predicate and a behaviour.
type runPre struct {
	f        runeMatcher
	behavior splitBehavior
}

func (p runPre) preTokenize(ps []piece) []piece {
	return splitPieces(ps, p.f, p.behavior, false)
}

// wordPunctPre is HF's Whitespace pre-tokenizer, the regex \w+|[^\w\s]+ (Rust's
// regex crate) kept and everything else (whitespace) removed.
type wordPunctPre struct{}

func (wordPunctPre) preTokenize(ps []piece) []piece {
	out := make([]piece, 0, len(ps))
	for _, p := range ps {
		for _, m := range runeSplit(p.text, wordPunctNext) {
			if r := []rune(p.text[m[0]:m[1]])[0]; !isS(r) {
				out = append(out, piece{text: p.text[m[0]:m[1]], atStart: p.atStart && m[0] == 0})
			}
		}
	}
	return out
}

// wordPunctNext returns the end of the \w+, [^\w\s]+ or \s+ run at i.
func wordPunctNext(rs []rune, i int) int {
	switch r := rs[i]; {
	case isWord(r):
		return run(rs, i, isWord, 0)
	case isS(r):
		return spaceRun(rs, i)
	default:
		return run(rs, i, func(r rune) bool { return !isWord(r) && !isS(r) }, 0)
	}
}

// parseClassPre builds Digits, Punctuation, Whitespace and WhitespaceSplit.
func parseClassPre(typ string, raw json.RawMessage) (preTokenizer, error) {
	switch typ {
	case "Digits":
		var v struct {
			IndividualDigits bool `json:"individual_digits"`
		}
		if err := decodeComponent(raw, "pre_tokenizer Digits", &v); err != nil {
			return nil, err
		}
		if v.IndividualDigits {
			return runPre{isNumeric, behaviorIsolated}, nil
		}
		return runPre{isNumeric, behaviorContiguous}, nil
	case "Punctuation":
		var v struct {
			Behavior *string `json:"behavior"`
		}
		if err := decodeComponent(raw, "pre_tokenizer Punctuation", &v); err != nil {
			return nil, err
		}
		b := behaviorIsolated // HF's default
		if v.Behavior != nil {
			var ok bool
			if b, ok = splitBehaviors[*v.Behavior]; !ok {
				return nil, invalid("pre_tokenizer Punctuation: unknown behavior %q", *v.Behavior)
			}
		}
		return runPre{isPunctuation, b}, nil
	case "Whitespace":
		return wordPunctPre{}, nil
	case "WhitespaceSplit":
		// Rust's char::is_whitespace is the White_Space property, like Oniguruma's \s.
		return runPre{isS, behaviorRemoved}, nil
	}
	return nil, unsupported("pre_tokenizer %q", typ)
}
