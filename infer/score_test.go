package infer

import (
	"math"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/stack"
)

// labelScores collects every eval sample's label scores by id.
func labelScores(t *testing.T, c *stack.Stack, cached bool) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	err := forEachScored(t.Context(), c, c.Eval, cached, func(b *data.Batch, first []int, scores [][]float64) error {
		for g, r := range first {
			out[b.SampleIDs[r]] = append([]float64(nil), scores[g]...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Score mode through the KV cache (each prompt once, every label from it in
// one call) gives the label log-likelihoods of one row per label within
// 1e-5, and the same predictions; with AR off and on, in odd batch sizes.
//
// AR flags heads by a threshold, a discontinuous decision: with the weights
// of run.seed=1, on libtorch 2.1, one statistic lies within rounding of its
// threshold and the two paths (the same math in different matmul shapes)
// fall on either side of it, a 1.5e-4 jump in one sample's score (seeds
// 2, 3 and 4 agree within 2e-6 on both lines). The test trains with seed 2,
// away from that edge, so that it measures the paths' equivalence.
func TestScoreCachedMatchesRows(t *testing.T) {
	cfg, ck := fixture.Adapted(t, "run.seed=2")
	for _, sets := range [][]string{{"eval.batch_size=5"}, {"eval.batch_size=7", "eval.ar.enabled=true", "eval.ar.layers=[1,3]", "eval.ar.beta=0.8"}} {
		cfg := *cfg
		c := fixture.Recipe(t, sets...)
		cfg.Eval = c.Eval
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
			rows, cached := labelScores(t, c, false), labelScores(t, c, true)
			if len(rows) != 36 || len(cached) != 36 {
				t.Fatalf("%v: %d and %d samples scored, want 36", sets, len(rows), len(cached))
			}
			worst, spread := 0.0, 0.0
			for id, want := range rows {
				got := cached[id]
				bw, bg := 0, 0
				for k := range want {
					worst = max(worst, math.Abs(got[k]-want[k]))
					spread = max(spread, math.Abs(want[k]-want[0]))
					if want[k] > want[bw] {
						bw = k
					}
					if got[k] > got[bg] {
						bg = k
					}
				}
				if bw != bg {
					t.Errorf("%v: %s: cached predicts label %d, rows %d", sets, id, bg, bw)
				}
			}
			if worst > 1e-5 {
				t.Errorf("%v: cached label log-likelihoods differ by up to %.3g (tolerance 1e-5)", sets, worst)
			}
			if spread < 1e-3 {
				t.Errorf("%v: labels score alike (spread %.3g): the test cannot tell paths apart", sets, spread)
			}
			t.Logf("%v: max |Δ log-likelihood| %.3g", sets, worst)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
