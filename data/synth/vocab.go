package synth

import (
	"slices"
	"strings"
	"unicode"
)

// Vocab is every token-like unit that synthetic prompts, subtitles and answers
// contain, so that a tiny model's tokenizer can cover them all.
type Vocab struct {
	// Special are markup tokens that must be matched whole (as added /
	// special tokens): "<s>", "</s>", "[INST]", "<video>", "<VideoHere>", ...
	Special []string
	// Words are maximal runs of letters, digits, '\'' and '-', case as written.
	Words []string
	// Punct are the remaining single characters (".", ",", ":").
	Punct []string
}

// Texts returns the texts the vocabulary is drawn from: the template with the
// labels filled in, both answers' fixed parts, every subtitle word list and
// the labels.
func Texts() []string {
	t := []string{
		strings.ReplaceAll(Template, "{labels}", strings.Join(Labels, ", ")),
		strings.ReplaceAll(Answer, "{label}", ""),
		"and then",
	}
	for _, list := range [][]string{subjects, verbs, objects, times, Labels} {
		t = append(t, list...)
	}
	return t
}

// Vocabulary splits Texts into special tokens, words and punctuation, each
// sorted and without duplicates.
func Vocabulary() Vocab {
	var v Vocab
	for _, text := range Texts() {
		s, w, p := split(text)
		v.Special = append(v.Special, s...)
		v.Words = append(v.Words, w...)
		v.Punct = append(v.Punct, p...)
	}
	for _, l := range []*[]string{&v.Special, &v.Words, &v.Punct} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
	}
	return v
}

// split cuts text into markup (<...> or [...] without spaces), words and
// punctuation characters.
func split(text string) (special, words, punct []string) {
	rs := []rune(text)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '<' || r == '[':
			closer := '>'
			if r == '[' {
				closer = ']'
			}
			j := i + 1
			for j < len(rs) && rs[j] != closer && !unicode.IsSpace(rs[j]) {
				j++
			}
			if j < len(rs) && rs[j] == closer {
				special = append(special, string(rs[i:j+1]))
				i = j + 1
			} else {
				punct = append(punct, string(r))
				i++
			}
		case isWord(r):
			j := i
			for j < len(rs) && isWord(rs[j]) {
				j++
			}
			words = append(words, string(rs[i:j]))
			i = j
		default:
			punct = append(punct, string(r))
			i++
		}
	}
	return special, words, punct
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || r == '-' }
