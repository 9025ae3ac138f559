package infer

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/stack"

	"github.com/mose-llm/mose/data"
)

// Greedy generation and scoring agree on the fixture once trained: the
// generated first word is the top-scored label.
func TestGenerateMode(t *testing.T) {
	_, ck := fixture.Adapted(t)
	for _, mode := range []string{"score", "generate"} {
		cfg := fixture.Recipe(t, "eval.mode="+mode, "eval.max_new_tokens=3")
		rep, err := Evaluate(t.Context(), cfg, ck, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Subsets["all"].N != 36 {
			t.Errorf("%s: %d samples evaluated, want 36", mode, rep.Subsets["all"].N)
		}
	}
}

// Cached greedy decoding gives the uncached path's tokens, token for token,
// on every eval prompt (rows of different lengths in each batch), with AR off
// and on; sampling is seeded (same seed, same answers) and differs from greedy.
func TestGenerateCachedMatchesUncached(t *testing.T) {
	cfg, ck := fixture.Adapted(t)
	for _, sets := range [][]string{{"eval.batch_size=5"}, {"eval.batch_size=8", "eval.ar.enabled=true", "eval.ar.layers=[1,3]"}} {
		cfg := *cfg
		cfg.Eval = fixture.Recipe(t, append(sets, "eval.max_new_tokens=12")...).Eval
		err := torch.Run(func() error {
			c, err := stack.Load(&cfg, ck, stack.EvalData)
			if err != nil {
				return err
			}
			defer c.Close()
			off, err := UseAR(c)
			if err != nil {
				return err
			}
			defer off()
			opt, err := decodeOptionsOf(c)
			if err != nil {
				return err
			}
			// The briefly trained fixture answers EOS at once: without EOS every
			// row runs the full max_new_tokens, so the comparison covers 12
			// tokens of each answer (TestGenerateMode covers EOS).
			opt.ends = nil
			tokens := 0
			var greedyAll, sampledAll, sampledAgain [][]int32
			err = eachDecoded(t, c, opt, greedy, func(b *data.Batch, batches uint64, got, want [][]int32) error {
				for r := range want {
					tokens += len(want[r])
					if fmt.Sprint(got[r]) != fmt.Sprint(want[r]) {
						t.Errorf("%v: %s: cached %v, uncached %v", sets, b.SampleIDs[r], got[r], want[r])
					}
				}
				hot := opt
				hot.temperature, hot.topP = 1.5, 0.9
				s1, err := decode(c, b, hot, batches)
				if err != nil {
					return err
				}
				s2, err := decode(c, b, hot, batches)
				if err != nil {
					return err
				}
				greedyAll, sampledAll, sampledAgain = append(greedyAll, got...), append(sampledAll, s1...), append(sampledAgain, s2...)
				return nil
			})
			if err != nil {
				return err
			}
			if tokens < 36*12 {
				t.Errorf("%v: only %d tokens generated: the comparison is weak", sets, tokens)
			}
			if fmt.Sprint(sampledAll) != fmt.Sprint(sampledAgain) {
				t.Errorf("%v: sampling with the same seed gave different answers", sets)
			}
			if fmt.Sprint(sampledAll) == fmt.Sprint(greedyAll) {
				t.Errorf("%v: sampling at temperature 1.5 gave the greedy answers", sets)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// eachDecoded decodes every eval batch of c through the cache (opt's
// settings) and with the no-cache reference ref, and calls fn with both
// answers and the batch's number (decode's seed).
func eachDecoded(t *testing.T, c *stack.Stack, opt decodeOptions, ref func(*stack.Stack, *data.Batch, int, []int64) ([][]int32, error),
	fn func(b *data.Batch, batch uint64, got, want [][]int32) error) error {
	batches := uint64(0)
	return ForEachBatch(t.Context(), c, c.Eval, data.ModePrompt, func(b *data.Batch) error {
		batches++
		want, err := ref(c, b, opt.maxNew, opt.ends)
		if err != nil {
			return err
		}
		got, err := decode(c, b, opt, batches)
		if err != nil {
			return err
		}
		return fn(b, batches, got, want)
	})
}

func TestSampleTopP(t *testing.T) {
	probs := []float64{0.05, 0.5, 0.3, 0.15}
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[int]int{}
	for range 2000 {
		seen[sampleTopP(probs, 0.75, rng)]++
	}
	// the nucleus of mass 0.75 is {1, 2}: 0.5 and 0.3 (renormalised 0.625, 0.375)
	if seen[0] != 0 || seen[3] != 0 || seen[1] < 1150 || seen[1] > 1350 {
		t.Errorf("top-p 0.75 draws %v, want only 1 and 2 at about 1250:750", seen)
	}
	if got := sampleTopP(probs, 1e-9, rng); got != 1 {
		t.Errorf("a tiny top_p draws %d, want the argmax 1", got)
	}
}
