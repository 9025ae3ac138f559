package infer

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/synth"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// The benchmarks below are run by scripts/bench/bench_eval.sh (one run, side by
// side); they print their figures and check that both paths agree. Their
// inputs live in $MOSE_BENCH_DIR (default: a temporary dir).

func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchDir(b *testing.B) string {
	if d := os.Getenv("MOSE_BENCH_DIR"); d != "" {
		return d
	}
	return b.TempDir()
}

// benchSetup writes (once) a random model of size cfg for preset p and a
// synthetic eval set of n samples, and returns a recipe over them.
func benchSetup(b *testing.B, dir string, cfg model.Config, p synth.Preset, n int, threads int, sets ...string) *recipes.Config {
	b.Helper()
	mdir, ddir := filepath.Join(dir, p.Name+"-model"), filepath.Join(dir, fmt.Sprintf("%s-data-%d", p.Name, n))
	if _, err := os.Stat(filepath.Join(mdir, "config.json")); err != nil {
		tokJSON, err := stack.TinyTokenizer()
		if err != nil {
			b.Fatal(err)
		}
		tok, err := tokenizer.Parse(tokJSON)
		if err != nil {
			b.Fatal(err)
		}
		cfg.VocabSize = tok.VocabSize()
		spec := p.Spec()
		for _, in := range spec.Inputs {
			cfg.Projectors = append(cfg.Projectors, model.ProjectorConfig{Name: in.Name, Dim: in.Dim, Kind: in.Projector})
		}
		mose, _ := json.Marshal(spec)
		pad, _ := tok.TokenID("<pad>")
		os.RemoveAll(mdir)
		if err := model.WriteRandom(mdir, cfg.WithDefaults(), model.RandomOptions{Seed: 7, DType: safetensors.F32, Mose: mose,
			Extra: map[string]any{"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": pad}}); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mdir, "tokenizer.json"), tokJSON, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(ddir, "eval.jsonl")); err != nil {
		sc := synth.DefaultConfig(p)
		sc.Train, sc.Eval = 27, n
		if _, err := synth.Generate(ddir, sc, true); err != nil {
			b.Fatal(err)
		}
	}
	base := []string{"model.path=" + mdir, "model.create=", "data.synth=", "data.train=" + filepath.Join(ddir, "train.jsonl"),
		"data.eval=" + filepath.Join(ddir, "eval.jsonl"), "run.output_dir=" + filepath.Join(dir, "run"),
		"run.threads=" + strconv.Itoa(threads), "eval.batch_size=8"}
	rc, err := recipes.Load("demo-tiny", append(base, sets...))
	if err != nil {
		b.Fatal(err)
	}
	return rc
}

// emotionLlamaPreset has Emotion-LLaMA's token counts: 260 visual tokens
// (its 256 EVA patches + EVA CLS + face MAE + video MAE, as one input here)
// and one audio token, with the same prompt template and nine labels.
var emotionLlamaPreset = synth.Preset{Name: "emotion-llama-shape",
	Visual: data.Input{Name: "visual", Modality: data.ModalityVisual, Dim: 64, Tokens: 260, Projector: "linear", Placeholder: "<VideoHere>"},
	Audio:  data.Input{Name: "hubert", Modality: data.ModalityAudio, Dim: 64, Tokens: 1, Projector: "linear", Placeholder: "<FeatureHere>"}}

// BenchmarkScoreEval times score-mode eval, one row per label (the old path)
// vs the shared prefix in the KV cache, on the demo shape (tiny model, 540
// samples) and the Emotion-LLaMA shape (small model, 260 + 1 feature tokens),
// and checks the two give the same label scores and predictions.
func BenchmarkScoreEval(b *testing.B) {
	dir := benchDir(b)
	threads := benchEnv("MOSE_BENCH_THREADS", 1)
	tinyP, _ := synth.LookupPreset("tiny")
	shapes := []struct {
		name  string
		cfg   model.Config
		p     synth.Preset
		n     int
		model string
	}{
		{"demo", stack.ModelPresets["tiny"], tinyP, benchEnv("MOSE_BENCH_DEMO_SAMPLES", 540), "tiny"},
		{"emotion-llama-shape", stack.ModelPresets["small"], emotionLlamaPreset, benchEnv("MOSE_BENCH_EL_SAMPLES", 27), "small"},
	}
	for _, sh := range shapes {
		rc := benchSetup(b, dir, sh.cfg, sh.p, sh.n, threads)
		err := torch.Run(func() error {
			if err := torch.SetThreads(threads); err != nil {
				return err
			}
			c, err := stack.Build(rc, stack.EvalData)
			if err != nil {
				return err
			}
			defer c.Close()
			times := map[bool]time.Duration{}
			scores := map[bool]map[string][]float64{}
			for _, cached := range []bool{false, true} {
				scores[cached] = map[string][]float64{}
				start := time.Now()
				err := forEachScored(context.Background(), c, c.Eval, cached, func(bt *data.Batch, first []int, sc [][]float64) error {
					for g, r := range first {
						scores[cached][bt.SampleIDs[r]] = sc[g]
					}
					return nil
				})
				if err != nil {
					return err
				}
				times[cached] = time.Since(start)
			}
			worst, differ := 0.0, 0
			for id, want := range scores[false] {
				got := scores[true][id]
				bw, bg := 0, 0
				for k := range want {
					worst = max(worst, math.Abs(got[k]-want[k]))
					if want[k] > want[bw] {
						bw = k
					}
					if got[k] > got[bg] {
						bg = k
					}
				}
				if bw != bg {
					differ++
				}
			}
			if differ > 0 || worst > 1e-4 {
				b.Errorf("%s: the paths disagree: %d predictions differ, max |Δ log-likelihood| %.3g", sh.name, differ, worst)
			}
			fmt.Printf("BENCH score-eval shape=%s model=%s samples=%d threads=%d rows_s=%.2f cached_s=%.2f speedup=%.2f max_abs_diff=%.2g predictions_differ=%d\n",
				sh.name, sh.model, c.Eval.Len(), threads, times[false].Seconds(), times[true].Seconds(),
				times[false].Seconds()/times[true].Seconds(), worst, differ)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGenerate times greedy decoding of 64 new tokens (no EOS stop) for
// 8 prompts on the `small` model, through the KV cache and without it, checks
// they give the same tokens, times the cached decoding of the base model
// (no adapters, as transformers runs it), and writes the prompts' embeddings
// and the base model's tokens and time to $MOSE_BENCH_DIR/generate.safetensors for transformers'
// generate (scripts/bench/bench_eval_hf.py).
func BenchmarkGenerate(b *testing.B) {
	dir := benchDir(b)
	threads := benchEnv("MOSE_BENCH_THREADS", 1)
	newTokens := benchEnv("MOSE_BENCH_NEW_TOKENS", 64)
	smallP, _ := synth.LookupPreset("small")
	rc := benchSetup(b, dir, stack.ModelPresets["small"], smallP, 27, threads, fmt.Sprintf("eval.max_new_tokens=%d", newTokens))
	err := torch.Run(func() error {
		if err := torch.SetThreads(threads); err != nil {
			return err
		}
		c, err := stack.Build(rc, stack.EvalData)
		if err != nil {
			return err
		}
		defer c.Close()
		bt, err := c.Eval.Batch([]int{0, 1, 2, 3, 4, 5, 6, 7}, data.ModePrompt, nil)
		if err != nil {
			return err
		}
		opt, err := decodeOptionsOf(c)
		if err != nil {
			return err
		}
		opt.ends = nil
		var cached, uncached [][]int32
		var tc, tu, tb time.Duration
		err = torch.NoGrad(func() error {
			if _, err := decode(c, bt, decodeOptions{maxNew: 2}, 1); err != nil { // warm-up
				return err
			}
			start := time.Now()
			if cached, err = decode(c, bt, opt, 1); err != nil {
				return err
			}
			tc = time.Since(start)
			start = time.Now()
			if uncached, err = greedy(c, bt, opt.maxNew, opt.ends); err != nil {
				return err
			}
			tu = time.Since(start)
			// transformers runs the base model: time mose's cached decoding
			// without the adapters too (they are zero-initialised here, so
			// the tokens are the same).
			ls := c.Model.Linears()
			saved := make([]model.Adapter, len(ls))
			for i, l := range ls {
				saved[i], l.Adapter = l.Adapter, nil
			}
			defer func() {
				for i, l := range ls {
					l.Adapter = saved[i]
				}
			}()
			start = time.Now()
			base, err := decode(c, bt, opt, 1)
			if err != nil {
				return err
			}
			tb = time.Since(start)
			if fmt.Sprint(base) != fmt.Sprint(cached) {
				b.Errorf("the base model's tokens differ from the adapted model's (zero adapters)")
			}
			return writeGenerateDump(c, bt, base, filepath.Join(dir, "generate.safetensors"), tb)
		})
		if err != nil {
			return err
		}
		same := fmt.Sprint(cached) == fmt.Sprint(uncached)
		if !same {
			b.Errorf("cached and uncached greedy tokens differ")
		}
		n := float64(bt.B * newTokens)
		fmt.Printf("BENCH generate model=small+MoSE batch=%d new_tokens=%d threads=%d cached_s=%.2f uncached_s=%.2f cached_tok_s=%.1f uncached_tok_s=%.1f speedup=%.2f same_tokens=%v base_model_cached_tok_s=%.1f\n",
			bt.B, newTokens, threads, tc.Seconds(), tu.Seconds(), n/tc.Seconds(), n/tu.Seconds(), tu.Seconds()/tc.Seconds(), same, n/tb.Seconds())
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// writeGenerateDump saves what transformers needs to run the same prompts:
// the input embeddings (features spliced) of each prompt, their lengths, the
// tokens mose generated and its time.
func writeGenerateDump(c *stack.Stack, bt *data.Batch, tokens [][]int32, path string, took time.Duration) error {
	s := torch.NewScope()
	defer s.Close()
	in, _ := promptInputs(s, bt, c.Dev)
	emb, err := s.To(c.Model.Embed(s, in), torch.Float32).Float32s()
	if err != nil {
		return err
	}
	lens := make([]int64, bt.B)
	var toks []int64
	for r := range bt.B {
		lens[r] = int64(bt.Lengths[r])
		for _, t := range tokens[r] {
			toks = append(toks, int64(t))
		}
	}
	n := int64(len(tokens[0]))
	D := int64(c.Model.Config.HiddenSize)
	return safetensors.WriteFile(path, []safetensors.Tensor{
		{Name: "embeds", DType: safetensors.F32, Shape: []int64{int64(bt.B), int64(bt.T), D}, Data: safetensors.Float32sToBytes(emb)},
		{Name: "lengths", DType: safetensors.I64, Shape: []int64{int64(bt.B)}, Data: safetensors.Int64sToBytes(lens)},
		{Name: "tokens", DType: safetensors.I64, Shape: []int64{int64(bt.B), n}, Data: safetensors.Int64sToBytes(toks)},
	}, map[string]string{"format": "pt", "mose_seconds": strconv.FormatFloat(took.Seconds(), 'f', 4, 64), "model": c.Cfg.Model.Path})
}
