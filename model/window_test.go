package model

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
)

// TestSlidingWindowParity: past the window (48 tokens, window 16), mose's
// logits match transformers 4.46.3 on a Mistral and a Qwen2 model
// (testdata/window-*, scripts/fixtures/make_window_fixtures.py), in one forward and
// through the KV cache (a 20-token prefill, then one token at a time).
func TestSlidingWindowParity(t *testing.T) {
	for _, name := range []string{"window-mistral", "window-qwen2"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			ids, want, shape := readExpected(t, dir, "logits")
			_, full, _ := readExpected(t, dir, "logits_no_window")
			B, T, V := shape[0], shape[1], shape[2]
			err := torch.Run(func() error {
				m, err := Load(dir, Options{})
				if err != nil {
					return err
				}
				defer m.Close()
				if m.Config.Window(0) != 16 {
					return fmt.Errorf("window %d, want 16", m.Config.Window(0))
				}
				s := torch.NewScope()
				defer s.Close()
				compare := func(what string, h *torch.Tensor, from int64) {
					got, err := m.Logits(s, h, nil).Float32s()
					if err != nil {
						t.Fatal(err)
					}
					n := h.Size(1)
					var worst, vsFull float64
					for b := range B {
						for u := range n {
							for j := range V {
								g := float64(got[(b*n+u)*V+j])
								w := want[(b*T+from+u)*V+j]
								worst = max(worst, math.Abs(g-float64(w)))
								vsFull = max(vsFull, math.Abs(g-float64(full[(b*T+from+u)*V+j])))
							}
						}
					}
					if worst > 1e-4 {
						t.Fatalf("%s: max logit error %.3g vs transformers (tolerance 1e-4)", what, worst)
					}
					if from+n > 16 && vsFull < 1e-2 {
						t.Fatalf("%s: logits equal full attention's (%.3g): the window is not applied", what, vsFull)
					}
				}
				mods := func(n int64) *torch.Tensor { return s.Zeros([]int64{B, n}, torch.Int64, torch.CPU) }
				compare("forward", m.Forward(s, &Inputs{IDs: s.FromInt64(ids, B, T)}, false), 0)
				c := m.NewCache(int(B))
				defer c.Close()
				const P = 20
				pre := make([]int64, 0, B*P)
				for b := range B {
					pre = append(pre, ids[b*T:b*T+P]...)
				}
				compare("prefill", m.Extend(s, c, &Step{In: &Inputs{IDs: s.FromInt64(pre, B, P), Modality: mods(P)}}), 0)
				for p := int64(P); p < T; p++ {
					one := make([]int64, B)
					for b := range B {
						one[b] = ids[b*T+p]
					}
					compare(fmt.Sprintf("token %d", p), m.Extend(s, c, &Step{In: &Inputs{IDs: s.FromInt64(one, B, 1), Modality: mods(1)}}), p)
				}
				return s.Err()
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
