package infer

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/omnisynth"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// omniRecipe makes a random omni-tiny thinker (std 0.2, so that greedy
// answers vary) and four synthetic clips drawn in Go under a temporary
// directory, and returns a recipe that evaluates on them.
func omniRecipe(t *testing.T, sets ...string) *recipes.Config {
	t.Helper()
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if err := omni.WriteRandom(model, omni.Presets["omni-tiny"], 4, 0.2, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.WriteBytes(filepath.Join(model, "tokenizer.json"), omniproc.TinyTokenizerJSON); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Parse(omniproc.TinyTokenizerJSON)
	if err != nil {
		t.Fatal(err)
	}
	res, err := omnisynth.Generate(t.Context(), filepath.Join(dir, "data"), tok, omnisynth.Config{Samples: 4, Seconds: 1, NoFFmpeg: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := recipes.Load("omni-tiny-mose", append([]string{"model.path=" + model, "model.create=", "data.train=" + res.Train,
		"data.eval=" + res.Train, "data.synth=", "run.output_dir=" + filepath.Join(dir, "run"), "run.threads=1"}, sets...))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// greedyThinker is greedy for a Qwen2.5-Omni thinker: every new token
// reruns the whole sequence (the towers' outputs scattered in, TMRoPE's
// positions over the prompt and the answer so far), without a cache. It is
// the reference decode is tested against.
func greedyThinker(c *stack.Stack, b *data.Batch, n int, ends []int64) ([][]int32, error) {
	B, T := b.B, b.T
	W := T + n
	s := torch.NewScope()
	defer s.Close()
	pin, emb := c.OmniEncode(s, b)
	if err := s.Err(); err != nil {
		return nil, err
	}
	in := *pin
	in.T, in.IDs, in.Mask = W, make([]int64, B*W), make([]int64, B*W)
	for r := range B {
		for t := range T {
			in.IDs[r*W+t], in.Mask[r*W+t] = pin.IDs[r*T+t], pin.Mask[r*T+t]
		}
	}
	return greedyLoop(b, W, n, ends, func(last []int64) ([]int64, error) {
		step := s.Child()
		defer step.Close()
		h := c.Omni.Forward(step, &in, emb, false) // (B,W,D)
		tok := step.Argmax(c.Model.Logits(step, h, step.FromInt64(last, int64(B))), -1, false)
		if err := step.Err(); err != nil {
			return nil, err
		}
		return tok.Int64s()
	}, func(at int, tok int64) { in.IDs[at], in.Mask[at] = tok, 1 })
}

// On a Qwen2.5-Omni thinker, greedy decoding through the KV cache (Prefill,
// then text at the rope-delta-shifted positions) gives the no-cache loop's
// tokens, token for token, on every eval prompt; and scoring through the
// cache gives the label log-likelihoods of full forwards (score rows).
// Both fail when the cache's text positions ignore the rope delta (checked:
// the broken case below).
func TestThinkerCacheMatchesNoCache(t *testing.T) {
	cfg := omniRecipe(t, "eval.mode=generate", "eval.max_new_tokens=10", "eval.batch_size=3")
	for _, broken := range []bool{false, true} {
		t.Run(fmt.Sprintf("zero_delta=%v", broken), func(t *testing.T) {
			err := torch.Run(func() error {
				c, err := stack.Build(cfg, stack.EvalData)
				if err != nil {
					return err
				}
				defer c.Close()
				if broken {
					defer breakBackbone(func(bb backbone) backbone { return zeroDelta{bb.(*thinkerBackbone)} })()
				}
				opt, err := decodeOptionsOf(c)
				if err != nil {
					return err
				}
				opt.ends = nil // every row runs max_new_tokens
				tokens, differ := 0, 0
				err = eachDecoded(t, c, opt, greedyThinker, func(b *data.Batch, _ uint64, got, want [][]int32) error {
					for r := range want {
						tokens += len(want[r])
						if fmt.Sprint(got[r]) != fmt.Sprint(want[r]) {
							differ++
							if !broken {
								t.Errorf("%s: cached %v, uncached %v", b.SampleIDs[r], got[r], want[r])
							}
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
				if tokens < 4*10 {
					t.Errorf("only %d tokens generated", tokens)
				}
				cached, _, err := scorePredictions(t.Context(), c, c.Eval, true)
				if err != nil {
					return err
				}
				rows, _, err := scorePredictions(t.Context(), c, c.Eval, false)
				if err != nil {
					return err
				}
				far := 0
				for i := range cached {
					if d := cached[i].NLL - rows[i].NLL; d > 1e-4 || d < -1e-4 {
						far++
						if !broken {
							t.Errorf("%s: gold NLL %v through the cache, %v from score rows", cached[i].ID, cached[i].NLL, rows[i].NLL)
						}
					}
				}
				t.Logf("%d tokens, %d of %d answers differ; %d of %d gold NLLs differ", tokens, differ, len(cached), far, len(cached))
				if broken && (differ == 0 || far == 0) {
					t.Errorf("without the rope delta the cache still matches (%d answers, %d NLLs differ): the check cannot fail", differ, far)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// zeroDelta is a thinker's backbone that continues after the prompt at the
// text positions without the rope delta: a broken cache.
type zeroDelta struct{ *thinkerBackbone }

func (z zeroDelta) prompt(s *torch.Scope, cache *model.Cache, b *data.Batch) *torch.Tensor {
	h := z.thinkerBackbone.prompt(s, cache, b)
	z.delta = make([]int64, len(z.delta))
	return h
}

// breakBackbone makes backboneOf return wrap of the usual backbone until
// the returned function restores it.
func breakBackbone(wrap func(backbone) backbone) func() {
	orig := backboneOf
	backboneOf = func(c *stack.Stack) backbone { return wrap(orig(c)) }
	return func() { backboneOf = orig }
}
