package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
)

// cacheCase is a right-padded batch: row r has lens[r] tokens, its first
// prefix[r] form the prompt (with 3 frame tokens at 1..3 and the audio token
// at 4), the rest are text continued through the cache.
type cacheCase struct {
	ids    [][]int64
	prefix []int
}

func newCacheCase(seed uint64, lens, prefix []int, vocab int) cacheCase {
	rng := rand.New(rand.NewPCG(seed, 9))
	c := cacheCase{prefix: prefix}
	for _, n := range lens {
		row := make([]int64, n)
		for i := range row {
			row[i] = int64(1 + rng.IntN(vocab-1))
		}
		c.ids = append(c.ids, row)
	}
	return c
}

// modOf is the modality id of token t.
func modOf(t int) int64 {
	switch {
	case t >= 1 && t <= 3:
		return modality.Visual
	case t == 4:
		return modality.Audio
	}
	return modality.Text
}

// inputs builds (B,T) inputs of rows[r][from[r]:to[r]] right-padded to T,
// with features when the block holds the prompt's feature slots (from 0).
func (c cacheCase) inputs(s *torch.Scope, from, to []int, feats bool) (*Inputs, []bool) {
	B := len(c.ids)
	T := 0
	for r := range B {
		T = max(T, to[r]-from[r])
	}
	ids := make([]int64, B*T)
	mods := make([]int64, B*T)
	valid := make([]bool, B*T)
	var fpos, apos []int64
	for r := range B {
		for t := range T {
			i := r*T + t
			mods[i] = modality.Pad
			if k := from[r] + t; k < to[r] {
				ids[i], mods[i], valid[i] = c.ids[r][k], modOf(k), true
			}
		}
		fpos = append(fpos, int64(r*T+1), int64(r*T+2), int64(r*T+3))
		apos = append(apos, int64(r*T+4))
	}
	in := &Inputs{IDs: s.FromInt64(ids, int64(B), int64(T)), Modality: s.FromInt64(mods, int64(B), int64(T))}
	if feats {
		rng := rand.New(rand.NewPCG(5, 6))
		fr := make([]float32, B*3*6)
		au := make([]float32, B*5)
		for i := range fr {
			fr[i] = float32(rng.NormFloat64())
		}
		for i := range au {
			au[i] = float32(rng.NormFloat64())
		}
		in.Features = []Features{{Data: s.FromFloat32(fr, int64(B), 3, 6), Positions: s.FromInt64(fpos, int64(B*3))},
			{Data: s.FromFloat32(au, int64(B), 1, 5), Positions: s.FromInt64(apos, int64(B))}}
	}
	return in, valid
}

func logitsOf(t *testing.T, s *torch.Scope, m *Model, h *torch.Tensor) ([]float64, int64) {
	t.Helper()
	lg := m.Logits(s, h, nil)
	v, err := lg.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	return v, lg.Size(lg.Dim() - 1)
}

// TestCacheMatchesForward: a prompt with spliced features prefilled into the
// cache (rows of different lengths, right-padded), then extended by a block
// of two tokens and token by token, gives the logits of one full forward at
// every real token; with GQA, with and without AR, with a sliding window
// shorter than the sequence.
func TestCacheMatchesForward(t *testing.T) {
	lens, prefix := []int{12, 9, 11}, []int{6, 5, 7}
	cases := []struct {
		name string
		edit func(map[string]any)
		ar   bool
	}{
		{"gqa", nil, false},
		{"gqa+AR", nil, true},
		{"mistral-window-4", func(m map[string]any) { m["model_type"] = "mistral"; m["sliding_window"] = 4 }, false},
		{"qwen2-window-5+AR", func(m map[string]any) {
			m["model_type"] = "qwen2"
			m["use_sliding_window"], m["sliding_window"], m["max_window_layers"] = true, 5, 0
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			cfg := tinyConfig()
			if strings.HasPrefix(tc.name, "qwen2") {
				cfg.ModelType = "qwen2" // q, k, v biases
			}
			if err := WriteRandom(dir, cfg, RandomOptions{Seed: 1, Std: 0.2, Mose: tinyMose()}); err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				editConfig(t, dir, tc.edit)
			}
			cc := newCacheCase(7, lens, prefix, 50)
			err := torch.Run(func() error {
				m, err := Load(dir, Options{})
				if err != nil {
					return err
				}
				defer m.Close()
				if tc.ar {
					m.AR = &AR{First: 0, Last: 1, Beta: 0.7, Adaptive: true}
				}
				s := torch.NewScope()
				defer s.Close()
				zero := []int{0, 0, 0}
				full, _ := cc.inputs(s, zero, lens, true)
				want, V := logitsOf(t, s, m, m.Forward(s, full, false))
				Tf := 12
				check := func(h *torch.Tensor, from []int, T int, valid []bool, what string) {
					got, _ := logitsOf(t, s, m, h)
					for r := range lens {
						for u := range T {
							if !valid[r*T+u] {
								continue
							}
							k := from[r] + u
							for j := range V {
								g, w := got[(r*T+u)*int(V)+int(j)], want[(r*Tf+k)*int(V)+int(j)]
								if math.Abs(g-w) > 2e-5 {
									t.Fatalf("%s: row %d token %d logit %d: cached %v, full %v", what, r, k, j, g, w)
								}
							}
						}
					}
				}
				c := m.NewCache(len(lens))
				defer c.Close()
				in, valid := cc.inputs(s, zero, prefix, true)
				check(m.Extend(s, c, &Step{In: in, Valid: valid}), zero, 7, valid, "prefill")
				at := append([]int(nil), prefix...)
				for step := 0; ; step++ {
					n := 1
					if step == 0 {
						n = 2
					}
					to := make([]int, len(lens))
					more := false
					for r := range lens {
						to[r] = min(at[r]+n, lens[r])
						more = more || to[r] > at[r]
					}
					if !more {
						break
					}
					in, valid := cc.inputs(s, at, to, false)
					check(m.Extend(s, c, &Step{In: in, Valid: valid}), at, n, valid, fmt.Sprintf("step %d", step))
					copy(at, to)
				}
				for r := range lens {
					if c.Next(r) != int64(lens[r]) {
						t.Errorf("row %d: next position %d, want %d", r, c.Next(r), lens[r])
					}
				}
				return s.Err()
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCacheGroupsScoreContinuations: several continuations of one cached
// prefix in one row (one group each, NoAppend) give the logits of a full
// forward of prefix + that continuation.
func TestCacheGroupsScoreContinuations(t *testing.T) {
	dir := writeTiny(t, 0)
	const P, A, G = 6, 3, 3 // prefix, continuation length, continuations
	base := newCacheCase(11, []int{P + A*G}, []int{P}, 50).ids[0]
	err := torch.Run(func() error {
		m, err := Load(dir, Options{})
		if err != nil {
			return err
		}
		defer m.Close()
		m.AR = &AR{First: 1, Last: 1, Beta: 0.5, Adaptive: true}
		s := torch.NewScope()
		defer s.Close()
		c := m.NewCache(1)
		defer c.Close()
		pre := cacheCase{ids: [][]int64{base[:P]}}
		in, valid := pre.inputs(s, []int{0}, []int{P}, true)
		m.Extend(s, c, &Step{In: in, Valid: valid})
		ids := base[P:]
		mods := make([]int64, A*G)
		pos := make([]int64, A*G)
		groups := make([]int32, A*G)
		for i := range ids {
			mods[i], pos[i], groups[i] = modality.Text, int64(P+i%A), int32(i/A)
		}
		h := m.Extend(s, c, &Step{In: &Inputs{IDs: s.FromInt64(ids, 1, A*G), Modality: s.FromInt64(mods, 1, A*G)},
			Positions: pos, Groups: groups, NoAppend: true})
		got, V := logitsOf(t, s, m, h)
		if c.Len() != P {
			t.Errorf("NoAppend changed the cache: %d positions, want %d", c.Len(), P)
		}
		for g := range G {
			one := cacheCase{ids: [][]int64{append(append([]int64(nil), base[:P]...), ids[g*A:(g+1)*A]...)}}
			full, _ := one.inputs(s, []int{0}, []int{P + A}, true)
			want, _ := logitsOf(t, s, m, m.Forward(s, full, false))
			for u := range A {
				for j := range int(V) {
					gv, wv := got[(g*A+u)*int(V)+j], want[(P+u)*int(V)+j]
					if math.Abs(gv-wv) > 2e-5 {
						t.Fatalf("continuation %d token %d logit %d: cached %v, full %v", g, u, j, gv, wv)
					}
				}
			}
		}
		return s.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSlidingWindowConfig: the settings mose implements load, the others are
// refused by name.
func TestSlidingWindowConfig(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(map[string]any)
		want string // "" loads
		win  int
	}{
		{"mistral", func(m map[string]any) { m["model_type"] = "mistral"; m["sliding_window"] = 16 }, "", 16},
		{"mistral-null", func(m map[string]any) { m["model_type"] = "mistral"; m["sliding_window"] = nil }, "", 0},
		{"mistral-zero", func(m map[string]any) { m["model_type"] = "mistral"; m["sliding_window"] = 0 }, "sliding_window", 0},
		{"qwen2-off", func(m map[string]any) {
			m["model_type"] = "qwen2"
			m["sliding_window"] = 16
			m["max_window_layers"] = 28
		}, "", 0},
		{"qwen2-on", func(m map[string]any) {
			m["model_type"] = "qwen2"
			m["use_sliding_window"], m["sliding_window"], m["max_window_layers"] = true, 16, 0
		}, "", 16},
		{"qwen2-layers", func(m map[string]any) {
			m["model_type"] = "qwen2"
			m["use_sliding_window"], m["sliding_window"], m["max_window_layers"] = true, 16, 1
		}, "max_window_layers", 0},
		{"qwen2-default-layers", func(m map[string]any) {
			m["model_type"] = "qwen2"
			m["use_sliding_window"], m["sliding_window"] = true, 16
		}, "max_window_layers", 0},
		{"llama-use", func(m map[string]any) { m["use_sliding_window"] = true }, "use_sliding_window", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			if err := WriteRandom(dir, tinyConfig(), RandomOptions{Seed: 1}); err != nil {
				t.Fatal(err)
			}
			editConfig(t, dir, c.edit)
			cfg, err := LoadConfig(dir)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				for l := range cfg.NumLayers {
					if cfg.Window(l) != c.win {
						t.Errorf("layer %d window %d, want %d", l, cfg.Window(l), c.win)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %s", err, c.want)
			}
		})
	}
}

// TestCacheLeftPadding: left-padded rows (padding first, not valid) get
// position ids from their real tokens only, and match each row run alone;
// then decode one more token each.
func TestCacheLeftPadding(t *testing.T) {
	dir := writeTiny(t, 0)
	rows := newCacheCase(3, []int{6, 9}, nil, 50).ids
	err := torch.Run(func() error {
		m, err := Load(dir, Options{})
		if err != nil {
			return err
		}
		defer m.Close()
		s := torch.NewScope()
		defer s.Close()
		const T = 8 // the prompt block; the last token of each row is decoded
		ids := make([]int64, 2*T)
		valid := make([]bool, 2*T)
		for r, row := range rows {
			n := len(row) - 1
			for t := range n {
				ids[r*T+T-n+t], valid[r*T+T-n+t] = row[t], true
			}
		}
		mods := make([]int64, 2*T)
		for i := range mods {
			if !valid[i] {
				mods[i] = modality.Pad
			}
		}
		c := m.NewCache(2)
		defer c.Close()
		pre, V := logitsOf(t, s, m, m.Extend(s, c, &Step{In: &Inputs{IDs: s.FromInt64(ids, 2, T), Modality: s.FromInt64(mods, 2, T)}, Valid: valid}))
		last := []int64{rows[0][len(rows[0])-1], rows[1][len(rows[1])-1]}
		step, _ := logitsOf(t, s, m, m.Extend(s, c, &Step{In: &Inputs{IDs: s.FromInt64(last, 2, 1), Modality: s.Zeros([]int64{2, 1}, torch.Int64, torch.CPU)}}))
		for r, row := range rows {
			want, _ := logitsOf(t, s, m, m.Forward(s, &Inputs{IDs: s.FromInt64(row, 1, int64(len(row)))}, false))
			n := len(row) - 1
			if c.Next(r) != int64(len(row)) {
				t.Errorf("row %d: next position %d, want %d", r, c.Next(r), len(row))
			}
			for k := range len(row) {
				for j := range int(V) {
					g := step[r*int(V)+j]
					if k < n {
						g = pre[(r*T+T-n+k)*int(V)+j]
					}
					if w := want[k*int(V)+j]; math.Abs(g-w) > 2e-5 {
						t.Fatalf("row %d token %d logit %d: left-padded %v, alone %v", r, k, j, g, w)
					}
				}
			}
		}
		return s.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}
