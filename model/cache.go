package model

import (
	"fmt"

	"github.com/mose-llm/mose/internal/torch"
)

// Cache is a KV cache: for a batch of B rows, every layer's rotated keys and
// values of the tokens seen so far (feature tokens included), the keys'
// modality ids (Attention Reallocation's statistics are over every key) and,
// on the host, each key's position and whether it is padding. Extend adds
// tokens to it. A Cache belongs to one model; Close frees it. After a failed
// Extend its contents are undefined: Close it.
type Cache struct {
	k, v   []*torch.Tensor // per layer (B,KV,L,hd) in the run dtype
	hot    *torch.Tensor   // (B,L,modality.Count) float32
	b      int
	l      int
	keyPos [][]int64 // [row][key] position id
	keyOK  [][]bool  // [row][key] false: padding, never attended
	next   []int64   // per row: one past the largest position of a real token
}

// NewCache returns an empty cache for batches of b rows.
func (m *Model) NewCache(b int) *Cache {
	return &Cache{k: make([]*torch.Tensor, len(m.Layers)), v: make([]*torch.Tensor, len(m.Layers)), b: b,
		keyPos: make([][]int64, b), keyOK: make([][]bool, b), next: make([]int64, b)}
}

// Close frees the cached tensors.
func (c *Cache) Close() {
	for i := range c.k {
		c.k[i].Free()
		c.v[i].Free()
		c.k[i], c.v[i] = nil, nil
	}
	c.hot.Free()
	c.hot = nil
}

// Len is the number of cached positions per row, padding included.
func (c *Cache) Len() int { return c.l }

// Next is the position the next token of row r takes by default.
func (c *Cache) Next(r int) int64 { return c.next[r] }

// Step is a block of new tokens for Extend: B rows of T tokens.
type Step struct {
	In *Inputs // (B,T) ids, modality ids (required) and features of the new tokens
	// Valid[b·T+t] false marks padding: never attended, not cached as a key
	// anyone sees. nil: every token is real.
	Valid []bool
	// Positions[b·T+t] are the position ids (RoPE, causality, window). nil:
	// each row's real tokens continue at Next(row), in order.
	Positions []int64
	// Groups[b·T+t]: a new token attends to the new tokens of its own group
	// only (and to every cached token). nil: one group, i.e. causal over the
	// block. Scoring puts several continuations of one prefix in one row.
	Groups []int32
	// NoAppend leaves the cache as it was (score several continuations).
	NoAppend bool
	// Embeds, when set, are the new tokens' input embeddings (B,T,D) in
	// the run dtype, used in place of In's ids and features (a backbone
	// that places its own encoder outputs, as model/omni does).
	Embeds *torch.Tensor
	// Cos and Sin, when set, are the new tokens' rotary tables
	// (B,1,T,head_dim) in the run dtype, used in place of those of
	// Positions, which then only order the tokens (causality, windows):
	// Qwen2.5-Omni's multimodal rotary positions are not in token order.
	Cos, Sin *torch.Tensor
}

// Extend runs the decoder over st's tokens, which attend to the cached
// tokens and causally to each other, and appends them to the cache (unless
// NoAppend). Adapters see the new tokens' routing as in Forward.
// st.In (B,T) -> (B,T,D) final normalised hidden states.
func (m *Model) Extend(s *torch.Scope, c *Cache, st *Step) *torch.Tensor {
	if s.Err() != nil {
		return nil
	}
	in := st.In
	if in == nil || in.IDs == nil || in.Modality == nil {
		s.Fail(fmt.Errorf("model: Extend needs ids and modality ids: %w", ErrConfig))
		return nil
	}
	B, T := int(in.IDs.Size(0)), int(in.IDs.Size(1))
	n := B * T
	if B != c.b || (st.Valid != nil && len(st.Valid) != n) || (st.Positions != nil && len(st.Positions) != n) || (st.Groups != nil && len(st.Groups) != n) {
		s.Fail(fmt.Errorf("model: Extend: a (%d,%d) step on a cache of %d rows, or per-token slices of the wrong length: %w", B, T, c.b, ErrConfig))
		return nil
	}
	valid := st.Valid
	if valid == nil {
		valid = make([]bool, n)
		for i := range valid {
			valid[i] = true
		}
	}
	pos := st.Positions
	if pos == nil {
		pos = make([]int64, n)
		for b := range B {
			p := c.next[b]
			for t := range T {
				pos[b*T+t] = p
				if valid[b*T+t] {
					p++
				}
			}
		}
	}
	maxPos := int64(0)
	for _, p := range pos {
		if p < 0 {
			s.Fail(fmt.Errorf("model: Extend: negative position id %d: %w", p, ErrConfig))
			return nil
		}
		maxPos = max(maxPos, p)
	}

	r := m.routing(s, in, false)
	x := st.Embeds
	if x == nil {
		x = m.Embed(s, in)
	}
	a := &attnCtx{cache: c, appendKV: !st.NoAppend, masks: map[int]attnMask{}}
	if a.cos, a.sin = st.Cos, st.Sin; a.cos == nil || a.sin == nil {
		a.cos, a.sin = m.rope.tablesAt(s, m.toDev(s, s.FromInt64(pos, int64(B), int64(T))), maxPos+1, m.DType, m.Device)
	}
	a.keyHot = r.OneHot
	if c.hot != nil {
		a.keyHot = s.Cat([]*torch.Tensor{c.hot, r.OneHot}, 1) // (B,L+T,modality.Count)
	}
	for i := range m.Layers {
		w := m.Config.Window(i)
		if _, ok := a.masks[w]; !ok {
			a.masks[w] = c.mask(s, m, valid, pos, st.Groups, st.Positions == nil, T, w)
		}
	}
	h := m.decode(s, x, a, r)
	if s.Err() != nil || st.NoAppend {
		return h
	}
	c.hot.Free()
	c.hot = s.Keep(a.keyHot)
	for b := range B {
		for t := range T {
			c.keyPos[b] = append(c.keyPos[b], pos[b*T+t])
			c.keyOK[b] = append(c.keyOK[b], valid[b*T+t])
			if valid[b*T+t] {
				c.next[b] = max(c.next[b], pos[b*T+t]+1)
			}
		}
	}
	c.l += T
	return h
}

// join returns the layer's cached keys and values followed by the new ones,
// (B,KV,L+T,hd), and keeps them in the cache when keep is set.
func (c *Cache) join(s *torch.Scope, layer int, k, v *torch.Tensor, keep bool) (*torch.Tensor, *torch.Tensor) {
	if c.k[layer] != nil {
		k = s.Cat([]*torch.Tensor{c.k[layer], k}, 2)
		v = s.Cat([]*torch.Tensor{c.v[layer], v}, 2)
	} else {
		k, v = s.Contiguous(k), s.Contiguous(v)
	}
	if keep && k != nil && v != nil {
		c.k[layer].Free()
		c.v[layer].Free()
		c.k[layer], c.v[layer] = s.Keep(k), s.Keep(v)
	}
	return k, v
}

// mask builds the attention mask of a step for window w (0: none), as a
// (B,1,T,L+T) bool tensor, true where a query attends to a key. It keeps the
// fused paths where they are exact: an empty cache with right-padded rows at
// default positions is plain causal attention (padding comes after every
// real token), and a one-token step over real keys attends to all of them.
func (c *Cache) mask(s *torch.Scope, m *Model, valid []bool, pos []int64, groups []int32, defaultPos bool, T, w int) attnMask {
	B, L := c.b, c.l
	W := int64(w)
	allOK := true
	for b := range B {
		for _, ok := range c.keyOK[b] {
			allOK = allOK && ok
		}
	}
	if L == 0 && groups == nil && defaultPos && rightPadded(valid, T) && (w == 0 || T <= w) {
		return attnMask{causal: true}
	}
	span := int64(0) // how far back the oldest key is from the newest query
	for b := range B {
		if L > 0 {
			span = max(span, pos[b*T+T-1]-c.keyPos[b][0])
		}
	}
	if T == 1 && allOK && allTrue(valid) && (w == 0 || span < W) {
		return attnMask{}
	}
	Lk := L + T
	mk := make([]bool, B*T*Lk)
	for b := range B {
		for t := range T {
			qi := b*T + t
			qp := pos[qi]
			row := mk[qi*Lk : (qi+1)*Lk]
			see := func(kp int64) bool { return kp <= qp && (w == 0 || kp > qp-W) }
			for j := range L {
				row[j] = c.keyOK[b][j] && see(c.keyPos[b][j])
			}
			for u := 0; u <= t; u++ {
				ki := b*T + u
				row[L+u] = valid[ki] && (groups == nil || groups[ki] == groups[qi]) && see(pos[ki])
			}
			if !valid[qi] {
				row[L+t] = true // padding attends to itself: finite values, never read
			}
		}
	}
	return attnMask{mask: m.toDev(s, s.FromBool(mk, int64(B), 1, int64(T), int64(Lk)))}
}

// rightPadded reports whether each row of valid (B·T) is real tokens then padding.
func rightPadded(valid []bool, T int) bool {
	for i := 0; i < len(valid); i += T {
		pad := false
		for _, ok := range valid[i : i+T] {
			if ok && pad {
				return false
			}
			pad = pad || !ok
		}
	}
	return true
}

func allTrue(v []bool) bool {
	for _, x := range v {
		if !x {
			return false
		}
	}
	return true
}

// toDev moves a host-made tensor to the model's device.
func (m *Model) toDev(s *torch.Scope, t *torch.Tensor) *torch.Tensor {
	if m.Device == torch.CPU {
		return t
	}
	return s.ToDevice(t, m.Device)
}
