package tokenizer

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is an entry of "added_tokens": a string that is cut out of the text
// before the model sees it and always becomes one id.
type addedToken struct {
	content    string
	id         int32
	special    bool
	singleWord bool
	lstrip     bool
	rstrip     bool
	normalized bool
}

// addedVocab finds added tokens in text, the way HF's AddedVocabulary does: first the
// tokens with normalized=false in the raw text, then, after normalizing what is left,
// the tokens with normalized=true (whose patterns are normalized too).
type addedVocab struct {
	byContent map[string]int32
	byID      map[int32]*addedToken
	special   map[string]bool
	raw       *tokenTrie
	norm      *tokenTrie
}

// segment is a span of text that is either an added token (id >= 0) or plain text.
type segment struct {
	text    string
	id      int32
	atStart bool // begins at offset 0 of the original text
}

// newAddedVocab registers the tokens like HF's add_tokens: a token already in the
// model's vocab keeps that id; others get ids after the vocab, in order.
func newAddedVocab(tokens []addedTokenJSON, model *bpe, norm normalizer) (*addedVocab, error) {
	a := &addedVocab{
		byContent: map[string]int32{},
		byID:      map[int32]*addedToken{},
		special:   map[string]bool{},
	}
	var order []*addedToken
	for _, tj := range tokens {
		if tj.Content == "" {
			continue
		}
		if tj.ID < 0 || tj.ID > math.MaxInt32 {
			return nil, invalid("added token %q: id %d out of range", tj.Content, tj.ID)
		}
		t := &addedToken{
			content: tj.Content, special: tj.Special, singleWord: tj.SingleWord,
			lstrip: tj.LStrip, rstrip: tj.RStrip, normalized: tj.Normalized == nil || *tj.Normalized,
		}
		if t.special {
			a.special[t.content] = true
		}
		id, ok := a.byContent[t.content]
		if !ok {
			id, ok = model.vocab[t.content]
		}
		if !ok {
			id = a.nextID(int32(len(model.vocab)))
		}
		t.id = id
		if _, dup := a.byContent[t.content]; !dup {
			order = append(order, t)
		} else {
			for i := range order {
				if order[i].content == t.content {
					order[i] = t // the last definition wins
				}
			}
		}
		a.byContent[t.content] = id
		a.byID[id] = t
	}
	a.raw, a.norm = newTokenTrie(), newTokenTrie()
	for _, t := range order {
		if !t.normalized {
			a.raw.add(t.content, t.id)
			continue
		}
		pattern := t.content
		if norm != nil {
			pattern = norm.normalize(pattern)
		}
		a.norm.add(pattern, t.id)
	}
	return a, nil
}

// nextID is the id HF gives a new added token that is not in the model's vocab.
func (a *addedVocab) nextID(vocabSize int32) int32 {
	maxID := int32(-1)
	for _, id := range a.byContent {
		maxID = max(maxID, id)
	}
	if maxID < 0 {
		return vocabSize
	}
	if maxID >= vocabSize || vocabSize == 0 {
		return maxID + 1
	}
	return vocabSize
}

// extract splits text into added tokens and normalized plain segments.
func (a *addedVocab) extract(text string, norm normalizer) []segment {
	var out []segment
	for _, s := range a.split(text, a.raw, true) {
		if s.id >= 0 {
			out = append(out, s)
			continue
		}
		n := s.text
		if norm != nil {
			n = norm.normalize(n)
		}
		for _, sub := range a.split(n, a.norm, s.atStart) {
			out = append(out, sub)
		}
	}
	return out
}

// split finds the added tokens of trie in s (HF's find_matches), honouring single_word,
// lstrip and rstrip, and returns the non-empty segments.
func (a *addedVocab) split(s string, trie *tokenTrie, atStart bool) []segment {
	var out []segment
	push := func(start, end int, id int32) {
		if end > start {
			out = append(out, segment{text: s[start:end], id: id, atStart: atStart && start == 0})
		}
	}
	startOffset := 0
	for pos := 0; ; {
		start, stop, id, ok := trie.next(s, pos)
		if !ok {
			break
		}
		pos = stop
		t := a.byID[id]
		if t.singleWord {
			startSpace := start == 0 || !endsWithWord(s[:start])
			stopSpace := stop == len(s) || !startsWithWord(s[stop:])
			if !startSpace || !stopSpace {
				continue
			}
		}
		if t.lstrip {
			start = max(len(strings.TrimRightFunc(s[:start], isS)), startOffset)
		}
		if t.rstrip {
			stop += len(s[stop:]) - len(strings.TrimLeftFunc(s[stop:], isS))
		}
		if startOffset < start {
			push(startOffset, start, -1)
		}
		push(start, stop, id)
		startOffset = stop
	}
	if startOffset < len(s) {
		push(startOffset, len(s), -1)
	}
	return out
}

// isWordChar is Rust regex's Unicode \w: Alphabetic, marks, decimal digits,
// connector punctuation and the joiners.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_Alphabetic, r) ||
		unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r) || r == 0x200C || r == 0x200D
}

func endsWithWord(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	return size > 0 && isWordChar(r)
}

func startsWithWord(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size > 0 && isWordChar(r)
}

// tokenTrie finds the leftmost-longest occurrence of any of its strings (the match
// kind HF's Aho-Corasick automaton uses), by walking a byte trie from each position.
type tokenTrie struct {
	root  trieNode
	first [256]bool // bytes some pattern starts with
}

type trieNode struct {
	next map[byte]*trieNode
	id   int32
	term bool
}

func newTokenTrie() *tokenTrie { return &tokenTrie{} }

func (t *tokenTrie) add(pattern string, id int32) {
	if pattern == "" {
		return // an empty pattern would match everywhere; HF files never have one
	}
	t.first[pattern[0]] = true
	n := &t.root
	for i := 0; i < len(pattern); i++ {
		if n.next == nil {
			n.next = map[byte]*trieNode{}
		}
		c, ok := n.next[pattern[i]]
		if !ok {
			c = &trieNode{}
			n.next[pattern[i]] = c
		}
		n = c
	}
	n.term, n.id = true, id
}

// next returns the leftmost-longest match starting at or after from.
func (t *tokenTrie) next(s string, from int) (start, end int, id int32, ok bool) {
	if t.root.next == nil {
		return 0, 0, 0, false
	}
	for i := from; i < len(s); i++ {
		if !t.first[s[i]] {
			continue
		}
		n := &t.root
		found := -1
		for j := i; j < len(s); j++ {
			c, exists := n.next[s[j]]
			if !exists {
				break
			}
			n = c
			if n.term {
				found, id = j+1, n.id
			}
		}
		if found >= 0 {
			return i, found, id, true
		}
	}
	return 0, 0, 0, false
}
