package tokenizer

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe is HF's BPE model: words are split into characters (or byte tokens under
// byte_fallback, or unk), then merged pair by pair, lowest merge rank first.
type bpe struct {
	vocab        map[string]int32
	idToToken    []string // by id; hasID tells which ids exist
	hasID        []bool
	merges       map[uint64]merge
	unk          int32 // -1: no unk token
	fuseUnk      bool
	byteFallback bool
	byteIDs      [256]int32 // ids of <0x00>..<0xFF>, -1 where missing
	ignoreMerges bool
	prefix       string // continuing_subword_prefix
	suffix       string // end_of_word_suffix

	mu    sync.Mutex
	cache map[string][]int32
}

// merge is what a pair of ids turns into, and when (lower rank first).
type merge struct {
	rank  int32
	newID int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

const (
	cacheCapacity = 10000 // words kept in the BPE cache
	cacheMaxWord  = 256   // longer words are not cached
)

// bpeJSON is the "model" object of a BPE tokenizer.json.
type bpeJSON struct {
	Type                    string           `json:"type"`
	Dropout                 *float64         `json:"dropout"`
	UnkToken                *string          `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	FuseUnk                 bool             `json:"fuse_unk"`
	ByteFallback            bool             `json:"byte_fallback"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	Vocab                   map[string]int64 `json:"vocab"`
	Merges                  json.RawMessage  `json:"merges"`
}

// parseModel builds the "model" component. Only BPE is supported.
func parseModel(raw json.RawMessage) (*bpe, error) {
	if isNull(raw) {
		return nil, invalid("no model")
	}
	var head struct {
		Type   string          `json:"type"`
		Merges json.RawMessage `json:"merges"`
	}
	if err := decodeComponent(raw, "model", &head); err != nil {
		return nil, err
	}
	if head.Type == "" && head.Merges != nil {
		head.Type = "BPE" // old files omit the type of a BPE model
	}
	if head.Type != "BPE" {
		return nil, unsupported("model type %q (only BPE is implemented)", head.Type)
	}
	var v bpeJSON
	if err := decodeComponent(raw, "model", &v); err != nil {
		return nil, err
	}
	if v.Dropout != nil && *v.Dropout != 0 {
		return nil, unsupported("BPE dropout %g (encoding would be random)", *v.Dropout)
	}
	if v.Vocab == nil {
		return nil, invalid("BPE model has no vocab")
	}
	m := &bpe{
		vocab:        make(map[string]int32, len(v.Vocab)),
		merges:       make(map[uint64]merge),
		unk:          -1,
		fuseUnk:      v.FuseUnk,
		byteFallback: v.ByteFallback,
		ignoreMerges: v.IgnoreMerges,
		cache:        make(map[string][]int32),
	}
	if v.ContinuingSubwordPrefix != nil {
		m.prefix = *v.ContinuingSubwordPrefix
	}
	if v.EndOfWordSuffix != nil {
		m.suffix = *v.EndOfWordSuffix
	}
	maxID := int64(-1)
	for tok, id := range v.Vocab {
		if id < 0 || id > math.MaxInt32-1 {
			return nil, invalid("vocab id %d of %q out of range", id, tok)
		}
		m.vocab[tok] = int32(id)
		maxID = max(maxID, id)
	}
	if maxID >= int64(len(v.Vocab))+1<<20 {
		return nil, invalid("vocab ids are sparse: id %d in a vocab of %d tokens", maxID, len(v.Vocab))
	}
	m.idToToken = make([]string, maxID+1)
	m.hasID = make([]bool, maxID+1)
	for tok, id := range m.vocab {
		if m.hasID[id] {
			return nil, invalid("vocab id %d given to both %q and %q", id, m.idToToken[id], tok)
		}
		m.idToToken[id], m.hasID[id] = tok, true
	}
	if v.UnkToken != nil {
		id, ok := m.vocab[*v.UnkToken]
		if !ok {
			return nil, invalid("unk_token %q is not in the vocab", *v.UnkToken)
		}
		m.unk = id
	}
	for b := range m.byteIDs {
		m.byteIDs[b] = -1
		if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteIDs[b] = id
		}
	}
	pairs, err := parseMerges(v.Merges)
	if err != nil {
		return nil, err
	}
	for rank, p := range pairs {
		a, ok := m.vocab[p[0]]
		if !ok {
			return nil, invalid("merge %d: %q is not in the vocab", rank, p[0])
		}
		b, ok := m.vocab[p[1]]
		if !ok {
			return nil, invalid("merge %d: %q is not in the vocab", rank, p[1])
		}
		right := p[1]
		if len(m.prefix) > 0 {
			if !strings.HasPrefix(right, m.prefix) {
				return nil, invalid("merge %d: %q lacks the continuing_subword_prefix %q", rank, right, m.prefix)
			}
			right = right[len(m.prefix):]
		}
		id, ok := m.vocab[p[0]+right]
		if !ok {
			return nil, invalid("merge %d: result %q is not in the vocab", rank, p[0]+right)
		}
		m.merges[pairKey(a, b)] = merge{rank: int32(rank), newID: id} // later duplicates win, as in HF
	}
	return m, nil
}

// parseMerges reads merges as [["a","b"], ...] (tokenizers >= 0.20) or ["a b", ...].
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid("merges: %v", err)
	}
	out := make([][2]string, 0, len(items))
	for i, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) > 0 && it[0] == '"' {
			var s string
			if err := json.Unmarshal(it, &s); err != nil {
				return nil, invalid("merge %d: %v", i, err)
			}
			parts := strings.Split(s, " ")
			if len(parts) != 2 {
				return nil, invalid("merge %d: %q is not two tokens separated by one space", i, s)
			}
			out = append(out, [2]string{parts[0], parts[1]})
			continue
		}
		var pair []string
		if err := json.Unmarshal(it, &pair); err != nil || len(pair) != 2 {
			return nil, invalid("merge %d: want a pair of strings, got %s", i, it)
		}
		out = append(out, [2]string{pair[0], pair[1]})
	}
	return out, nil
}

// tokenize returns the ids of one pre-tokenized word.
func (m *bpe) tokenize(word string) []int32 {
	if word == "" {
		return nil
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[word]; ok {
			return []int32{id}
		}
	}
	if len(word) <= cacheMaxWord {
		m.mu.Lock()
		ids, ok := m.cache[word]
		m.mu.Unlock()
		if ok {
			return append([]int32(nil), ids...)
		}
	}
	ids := m.mergeWord(word)
	if len(word) <= cacheMaxWord {
		m.mu.Lock()
		if len(m.cache) >= cacheCapacity {
			clear(m.cache)
		}
		m.cache[word] = append([]int32(nil), ids...)
		m.mu.Unlock()
	}
	return ids
}

// symbol is one node of the doubly linked list a word is merged in.
type symbol struct {
	id         int32
	prev, next int  // -1 at the ends
	dead       bool // merged into its left neighbour
}

// mergeWord splits word into initial symbols and applies the merges.
func (m *bpe) mergeWord(word string) []int32 {
	syms := make([]symbol, 0, len(word))
	add := func(id int32) {
		syms = append(syms, symbol{id: id, prev: len(syms) - 1, next: len(syms) + 1})
	}
	unkPending := false // an unk symbol is waiting to be added (HF adds it lazily)
	for i, r := range word {
		size := utf8.RuneLen(r)
		s := word[i : i+size]
		if i > 0 && m.prefix != "" {
			s = m.prefix + s
		}
		if i+size == len(word) && m.suffix != "" {
			s += m.suffix
		}
		if id, ok := m.vocab[s]; ok {
			if unkPending {
				add(m.unk)
				unkPending = false
			}
			add(id)
			continue
		}
		if m.byteFallback && m.hasBytes(s) {
			// As in HF, a pending unk is not flushed before byte tokens.
			for j := 0; j < len(s); j++ {
				add(m.byteIDs[s[j]])
			}
			continue
		}
		if m.unk >= 0 {
			if unkPending && !m.fuseUnk {
				add(m.unk)
			}
			unkPending = true
		}
		// Without an unk token the character is dropped, as HF does.
	}
	if unkPending {
		add(m.unk)
	}
	if len(syms) == 0 {
		return nil
	}
	syms[len(syms)-1].next = -1
	m.applyMerges(syms)
	out := make([]int32, 0, len(syms))
	for i := range syms {
		if !syms[i].dead {
			out = append(out, syms[i].id)
		}
	}
	return out
}

// hasBytes reports whether every byte of s has a <0xXX> token.
func (m *bpe) hasBytes(s string) bool {
	for j := 0; j < len(s); j++ {
		if m.byteIDs[s[j]] < 0 {
			return false
		}
	}
	return true
}

// candidate is a possible merge of the symbol at pos with its right neighbour.
type candidate struct {
	pos   int
	rank  int32
	newID int32
}

// candidateHeap orders candidates by rank, then position (leftmost first).
type candidateHeap []candidate

func (h candidateHeap) Len() int { return len(h) }
func (h candidateHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h candidateHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candidateHeap) Push(x any)   { *h = append(*h, x.(candidate)) }
func (h *candidateHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// applyMerges merges the best-ranked adjacent pair until none is left. Stale heap
// entries (whose pair has changed since they were pushed) are skipped.
func (m *bpe) applyMerges(syms []symbol) {
	if len(m.merges) == 0 || len(syms) < 2 {
		return
	}
	h := make(candidateHeap, 0, len(syms))
	for i := 0; i+1 < len(syms); i++ {
		if mg, ok := m.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			h = append(h, candidate{pos: i, rank: mg.rank, newID: mg.newID})
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		c := heap.Pop(&h).(candidate)
		left := &syms[c.pos]
		if left.dead || left.next < 0 {
			continue
		}
		right := syms[left.next]
		if mg, ok := m.merges[pairKey(left.id, right.id)]; !ok || mg.newID != c.newID {
			continue
		}
		left.id = c.newID
		syms[left.next].dead = true
		left.next = right.next
		if right.next >= 0 {
			syms[right.next].prev = c.pos
		}
		if left.prev >= 0 {
			if mg, ok := m.merges[pairKey(syms[left.prev].id, left.id)]; ok {
				heap.Push(&h, candidate{pos: left.prev, rank: mg.rank, newID: mg.newID})
			}
		}
		if left.next >= 0 {
			if mg, ok := m.merges[pairKey(left.id, syms[left.next].id)]; ok {
				heap.Push(&h, candidate{pos: c.pos, rank: mg.rank, newID: mg.newID})
			}
		}
	}
}

// token returns the vocab string of id.
func (m *bpe) token(id int32) (string, bool) {
	if id < 0 || int(id) >= len(m.idToToken) || !m.hasID[id] {
		return "", false
	}
	return m.idToToken[id], true
}
