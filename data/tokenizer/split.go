package tokenizer

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// matcher finds the non-overlapping matches of a pattern in s, left to right, as byte
// offset pairs [start, end). It is how Split, Replace and ByteLevel see their patterns.
type matcher interface {
	findAll(s string) [][2]int
}

// The split regexes that HF tokenizers runs with Oniguruma and that Go's regexp cannot
// compile (they use the look-ahead `(?!\S)`). They are matched by hand below.
const (
	// llama3Pattern is LLaMA-3's (and OpenAI cl100k's) pre-tokenizer regex.
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// qwen2Pattern is the same with single digits (Qwen2).
	qwen2Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// gpt2Pattern is GPT-2's regex, the one the ByteLevel pre-tokenizer uses.
	gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

// compileRegex returns a matcher for a regex found in tokenizer.json.
func compileRegex(pattern, what string) (matcher, error) {
	switch pattern {
	case llama3Pattern:
		return llama3Matcher{maxDigits: 3}, nil
	case qwen2Pattern:
		return llama3Matcher{maxDigits: 1}, nil
	case gpt2Pattern:
		return gpt2Matcher{}, nil
	}
	if pattern == "" {
		return nil, invalid("%s: empty regex", what)
	}
	return compileOnig(pattern, what)
}

// literalMatcher matches a fixed string.
type literalMatcher string

func (m literalMatcher) findAll(s string) [][2]int {
	if m == "" {
		return nil
	}
	var out [][2]int
	for off := 0; ; {
		i := strings.Index(s[off:], string(m))
		if i < 0 {
			return out
		}
		start := off + i
		off = start + len(m)
		out = append(out, [2]int{start, off})
	}
}

// regexMatcher is a regex Go's regexp can run (leftmost-first, like Oniguruma).
type regexMatcher struct{ re *regexp.Regexp }

func (m regexMatcher) findAll(s string) [][2]int {
	idx := m.re.FindAllStringIndex(s, -1)
	out := make([][2]int, 0, len(idx))
	for _, p := range idx {
		if p[1] > p[0] { // empty matches produce no split
			out = append(out, [2]int{p[0], p[1]})
		}
	}
	return out
}

// Character classes as Oniguruma sees them in Unicode mode: \p{L}, \p{N}, and \s
// (which is White_Space: \t-\r, space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
// U+2029, U+202F, U+205F, U+3000).
func isL(r rune) bool { return unicode.IsLetter(r) }
func isN(r rune) bool { return unicode.IsNumber(r) }
func isS(r rune) bool { return unicode.Is(unicode.White_Space, r) }

// isOther is [^\s\p{L}\p{N}].
func isOther(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }

// runeSplit drives a rune-level matcher: next(rs, i) returns the end of the match that
// starts at rune i (always > i). Offsets are converted back to bytes.
func runeSplit(s string, next func(rs []rune, i int) int) [][2]int {
	if s == "" {
		return nil
	}
	rs := []rune(s)
	// byteAt[i] is the byte offset of rune i (valid UTF-8 is guaranteed by Encode).
	byteAt := make([]int, len(rs)+1)
	off := 0
	for i, r := range rs {
		byteAt[i] = off
		off += utf8.RuneLen(r)
	}
	byteAt[len(rs)] = off
	out := make([][2]int, 0, len(rs)/3+1)
	for i := 0; i < len(rs); {
		j := next(rs, i)
		if j <= i { // defensive: every rune falls in some alternative
			j = i + 1
		}
		out = append(out, [2]int{byteAt[i], byteAt[j]})
		i = j
	}
	return out
}

// spaceRun returns the end of the run of \s starting at i.
func spaceRun(rs []rune, i int) int {
	for i < len(rs) && isS(rs[i]) {
		i++
	}
	return i
}

// run returns the end of the run of runes satisfying f starting at i, at most max long
// (max <= 0: unbounded).
func run(rs []rune, i int, f func(rune) bool, max int) int {
	j := i
	for j < len(rs) && f(rs[j]) && (max <= 0 || j-i < max) {
		j++
	}
	return j
}

// trailingSpace implements `\s+(?!\S)|\s+` at i (rs[i] is whitespace): the whole run if
// it ends the text or is one rune long, else the run minus its last rune, which is
// left to prefix the next word.
func trailingSpace(rs []rune, i int) int {
	end := spaceRun(rs, i)
	if end < len(rs) && end-i >= 2 {
		return end - 1
	}
	return end
}

// foldEq reports whether r equals the ASCII letter c case-insensitively, with Unicode
// simple case folding as Oniguruma applies it under (?i) (ſ U+017F folds to s).
func foldEq(r rune, c rune) bool {
	if r == c || r == unicode.ToUpper(c) {
		return true
	}
	return c == 's' && r == 'ſ'
}

// contraction matches 's|'t|'re|'ve|'m|'ll|'d at i, where rs[i] is an apostrophe,
// case-insensitively or not, and returns the end, or i if none matches.
func contraction(rs []rune, i int, fold bool) int {
	at := func(k int, c rune) bool {
		if i+k >= len(rs) {
			return false
		}
		if fold {
			return foldEq(rs[i+k], c)
		}
		return rs[i+k] == c
	}
	switch {
	case at(1, 's'), at(1, 't'), at(1, 'm'), at(1, 'd'):
		return i + 2
	case at(1, 'r') && at(2, 'e'), at(1, 'v') && at(2, 'e'), at(1, 'l') && at(2, 'l'):
		return i + 3
	}
	return i
}

// llama3Matcher is llama3Pattern (maxDigits 3) or qwen2Pattern (maxDigits 1):
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,maxDigits} |
//	 ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
//
// tried in that order at each position, as a backtracking engine does.
type llama3Matcher struct{ maxDigits int }

func (m llama3Matcher) findAll(s string) [][2]int {
	return runeSplit(s, m.next)
}

func isCRLF(r rune) bool { return r == '\r' || r == '\n' }

func (m llama3Matcher) next(rs []rune, i int) int {
	r := rs[i]
	n := len(rs)
	if r == '\'' {
		if j := contraction(rs, i, true); j > i {
			return j
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if !isCRLF(r) && !isL(r) && !isN(r) && i+1 < n && isL(rs[i+1]) {
		return run(rs, i+1, isL, 0)
	}
	if isL(r) {
		return run(rs, i, isL, 0)
	}
	// \p{N}{1,3}
	if isN(r) {
		return run(rs, i, isN, m.maxDigits)
	}
	// ' '?[^\s\p{L}\p{N}]+[\r\n]*
	j := i
	if r == ' ' && i+1 < n && isOther(rs[i+1]) {
		j = i + 1
	}
	if isOther(rs[j]) {
		j = run(rs, j, isOther, 0)
		return run(rs, j, isCRLF, 0)
	}
	// What is left starts with whitespace.
	// \s*[\r\n]+ : up to and including the last newline of the whitespace run.
	end := spaceRun(rs, i)
	for k := end - 1; k >= i; k-- {
		if isCRLF(rs[k]) {
			return k + 1
		}
	}
	// \s+(?!\S) | \s+
	return trailingSpace(rs, i)
}

// gpt2Matcher is gpt2Pattern:
//
//	's|'t|'re|'ve|'m|'ll|'d | ?\p{L}+ | ?\p{N}+ | ?[^\s\p{L}\p{N}]+ | \s+(?!\S) | \s+
type gpt2Matcher struct{}

func (gpt2Matcher) findAll(s string) [][2]int {
	return runeSplit(s, gpt2Next)
}

func gpt2Next(rs []rune, i int) int {
	r := rs[i]
	if r == '\'' {
		if j := contraction(rs, i, false); j > i {
			return j
		}
	}
	for _, class := range [...]func(rune) bool{isL, isN, isOther} {
		j := i
		if r == ' ' && i+1 < len(rs) && class(rs[i+1]) {
			j = i + 1
		}
		if class(rs[j]) {
			return run(rs, j, class, 0)
		}
	}
	return trailingSpace(rs, i)
}
