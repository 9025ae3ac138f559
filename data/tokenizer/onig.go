package tokenizer

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// HF tokenizers runs Split and Replace regexes with Oniguruma in Unicode mode, where
// \s, \d and \w are Unicode classes; in Go's regexp they are ASCII. onigToGo rewrites
// a pattern into Go syntax with Oniguruma's meaning, and refuses, naming it, what
// would still differ: anchors and word boundaries (Oniguruma's ^ and $ are line
// anchors), negated shorthands inside a class, nested classes, look-around other than
// the trailing `\s+(?!\S)` that GPT-style patterns end with (see lookaheadMatcher).

// onigSpace is Oniguruma's Unicode \s (the White_Space property), as class contents.
const onigSpace = `\t\n\v\f\r \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}`

// onigWord is Oniguruma's Unicode \w, as class contents: General_Category Letter,
// Mark, Number or Connector_Punctuation (so ½ and ² are word characters, U+200D is
// not). This is not the \w of Rust's regex crate, which HF's Whitespace
// pre-tokenizer uses (see isWord).
const onigWord = `\p{L}\p{M}\p{N}\p{Pc}`

// onigToGo translates an Oniguruma pattern; what names it in errors.
func onigToGo(p, what string) (string, error) {
	refuse := func(format string, args ...any) (string, error) {
		return "", unsupported("%s: regex %q: %s", what, p, fmt.Sprintf(format, args...))
	}
	var b strings.Builder
	inClass := false
	classStart := -1 // byte offset in p just after '[' or '[^'
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 >= len(p) {
				return refuse("trailing backslash")
			}
			e := p[i+1]
			switch e {
			case 's', 'w':
				cls := onigSpace
				if e == 'w' {
					cls = onigWord
				}
				if inClass {
					b.WriteString(cls)
				} else {
					b.WriteString("[" + cls + "]")
				}
			case 'S', 'W':
				if inClass {
					return refuse(`\%c inside a character class`, e)
				}
				cls := onigSpace
				if e == 'W' {
					cls = onigWord
				}
				b.WriteString("[^" + cls + "]")
			case 'd':
				b.WriteString(`\p{Nd}`)
			case 'D':
				b.WriteString(`\P{Nd}`)
			case 'b', 'B', 'A', 'z', 'Z', 'G':
				return refuse(`the anchor \%c`, e)
			case 'h', 'H', 'R', 'X', 'K', 'k', 'g', 'N', 'O', 'y', 'Y':
				return refuse(`Oniguruma's \%c`, e)
			case 'u':
				if i+6 > len(p) {
					return refuse(`short \u escape`)
				}
				b.WriteString(`\x{` + p[i+2:i+6] + `}`)
				i += 6
				continue
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
			i += 2
			continue
		case inClass && c == ']' && i > classStart:
			inClass = false
		case inClass && c == '[':
			return refuse("a nested character class")
		case inClass && c == '&' && strings.HasPrefix(p[i:], "&&"):
			return refuse("class intersection &&")
		case !inClass && c == '[':
			inClass = true
			classStart = i + 1
			if strings.HasPrefix(p[i+1:], "^") {
				classStart++
			}
			b.WriteByte(c)
			if classStart > i+1 {
				b.WriteByte('^')
			}
			i = classStart
			continue
		case !inClass && (c == '^' || c == '$'):
			return refuse("the anchor %c (a line anchor in Oniguruma)", c)
		case !inClass && c == '(' && strings.HasPrefix(p[i:], "(?") && i+2 < len(p) && strings.ContainsRune("=!<>", rune(p[i+2])):
			return refuse("look-around or atomic group %q", p[i:min(i+4, len(p))])
		}
		_, n := utf8.DecodeRuneInString(p[i:])
		b.WriteString(p[i : i+n])
		i += n
	}
	if inClass {
		return refuse("unterminated character class")
	}
	return b.String(), nil
}

// lookaheadSuffix ends the GPT-4-style split patterns (cl100k, o200k, Qwen2, Tekken):
// trailing whitespace that is not followed by a non-space, else any whitespace.
const lookaheadSuffix = `|\s+(?!\S)|\s+`

// lookaheadMatcher runs head|\s+(?!\S)|\s+ as a backtracking engine does: at each
// position head (anchored) first, then, on whitespace, the longest run not followed
// by a non-space (the whole run at the end of the text, else the run minus its last
// rune), else one whitespace rune.
type lookaheadMatcher struct{ head *regexp.Regexp }

func (m lookaheadMatcher) findAll(s string) [][2]int {
	var out [][2]int
	for i := 0; i < len(s); {
		if loc := m.head.FindStringIndex(s[i:]); loc != nil && loc[1] > 0 {
			out = append(out, [2]int{i, i + loc[1]})
			i += loc[1]
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !isS(r) {
			i += n
			continue
		}
		end, last, runes := i, i, 0
		for end < len(s) {
			r, n := utf8.DecodeRuneInString(s[end:])
			if !isS(r) {
				break
			}
			last, end, runes = end, end+n, runes+1
		}
		if end < len(s) && runes >= 2 {
			end = last
		}
		out = append(out, [2]int{i, end})
		i = end
	}
	return out
}

// compileOnig compiles a pattern that none of the hand-written matchers covers.
func compileOnig(pattern, what string) (matcher, error) {
	head, look := strings.CutSuffix(pattern, lookaheadSuffix)
	src, err := onigToGo(head, what)
	if err != nil {
		return nil, err
	}
	if !look {
		re, err := regexp.Compile(src)
		if err != nil {
			return nil, unsupported("%s: regex %q: Go's regexp cannot compile it (%v)", what, pattern, err)
		}
		return regexMatcher{re}, nil
	}
	re, err := regexp.Compile(`^(?:` + src + `)`)
	if err != nil {
		return nil, unsupported("%s: regex %q: Go's regexp cannot compile it (%v)", what, pattern, err)
	}
	if re.MatchString("") {
		return nil, unsupported("%s: regex %q: its part before %s can match the empty string", what, pattern, lookaheadSuffix)
	}
	return lookaheadMatcher{re}, nil
}
