package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/omnisynth"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/infer"
	"github.com/mose-llm/mose/metrics"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/plots"
	"github.com/mose-llm/mose/stack"
)

// omniRun is a short MoSE run on omni-tiny (a random thinker of std 0.2,
// clips drawn in Go, no FFmpeg) with the training set as data.eval,
// evaluated in training at its last step: the model dir, the manifest, the
// run directory and its final checkpoint.
type omniRun struct{ model, manifest, out, ck string }

// newOmniRun makes the model dir (omni-tiny, std 0.2) and a synthetic set
// of n one-second samples under a temporary directory.
func newOmniRun(t *testing.T, n int) omniRun {
	t.Helper()
	dir := t.TempDir()
	r := omniRun{model: filepath.Join(dir, "model"), out: filepath.Join(dir, "run")}
	if code, msg := runMose(t, "init-model", "--preset", "omni-tiny", "--std", "0.2", "--seed", "4", "--out", r.model); code != 0 {
		t.Fatalf("init-model: exit %d: %s", code, msg)
	}
	tok, err := tokenizer.Parse(omniproc.TinyTokenizerJSON)
	if err != nil {
		t.Fatal(err)
	}
	res, err := omnisynth.Generate(context.Background(), filepath.Join(dir, "data"), tok, omnisynth.Config{Samples: n, Seconds: 1, NoFFmpeg: true})
	if err != nil {
		t.Fatal(err)
	}
	r.manifest = res.Train
	return r
}

// trainArgs are the train flags of a run of r over its set (data.eval
// too, evaluated at the last step) into out.
func (r omniRun) trainArgs(out string, steps int, sets ...string) []string {
	args := []string{"--recipe", "omni-tiny-mose"}
	for _, s := range append([]string{"model.path=" + r.model, "model.create=", "data.train=" + r.manifest, "data.eval=" + r.manifest,
		"data.synth=", "run.output_dir=" + out, "run.threads=1", "train.batch_size=2", fmt.Sprintf("train.max_steps=%d", steps),
		fmt.Sprintf("train.eval_every=%d", steps), "train.save_every=0", "train.lr=1e-2", "train.log_every=1", "eval.batch_size=3"}, sets...) {
		args = append(args, "--set", s)
	}
	return args
}

// trainOmni trains on a fixture of four samples, in process.
func trainOmni(t *testing.T, steps int, sets ...string) omniRun {
	t.Helper()
	r := newOmniRun(t, 4)
	if code, msg := runMose(t, append([]string{"train"}, r.trainArgs(r.out, steps, sets...)...)...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, msg)
	}
	r.ck = filepath.Join(r.out, "checkpoints", fmt.Sprintf("step-%07d", steps))
	return r
}

// labelTokens is the number of answer tokens of each label of model's
// thinker (the eval loss's denominator).
func labelTokens(t *testing.T, model string) map[string]int {
	t.Helper()
	spec, err := stack.ReadOmniSpec(model, omni.Presets["omni-tiny"])
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(filepath.Join(model, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, l := range spec.Labels {
		ids, err := tok.Encode(strings.ReplaceAll(spec.Prompt.Answer, "{label}", l))
		if err != nil {
			t.Fatal(err)
		}
		n[l] = len(ids)
	}
	return n
}

// Evaluation and prediction on a Qwen2.5-Omni thinker (omni-tiny, trained
// 30 steps with data.eval): the in-training eval, `mose eval` on the
// checkpoint (score and generate modes) and `mose predict --manifest`
// agree: the same accuracy and per-subset eval loss (predict's gold
// log-likelihoods over the answer tokens), and generate-mode accuracy is
// that of predict's generated answers; predict on the run's PEFT export
// (with its sidecar) gives the checkpoint's scores. The comparison can fail: predict
// run with Attention Reallocation on (eval.ar.enabled, layers [0,1], beta
// 0.9) gives another all.loss (1.523 against 1.413) and the test fails.
func TestOmniEvalPredict(t *testing.T) {
	if testing.Short() {
		t.Skip("a training run")
	}
	r := trainOmni(t, 30, "train.lr=3e-2")
	recs, err := plots.ReadRecords(filepath.Join(r.out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var inTrain map[string]float64
	for _, rec := range recs {
		if len(rec.Eval) > 0 && rec.Step == 30 {
			inTrain = rec.Eval
		}
	}
	if _, ok := inTrain["all.accuracy"]; !ok {
		t.Fatalf("no in-training eval with accuracy at step 30: %v", inTrain)
	}
	losses := 0
	for k := range inTrain {
		if strings.HasSuffix(k, ".loss") {
			losses++
		}
	}
	if losses < 2 {
		t.Errorf("the in-training eval has %d subset losses (want all and every subset): %v", losses, inTrain)
	}

	dir := t.TempDir()
	rep := map[string]*metrics.Report{}
	for _, mode := range []string{"score", "generate"} {
		out := filepath.Join(dir, mode)
		if code, msg := runMose(t, "eval", "--checkpoint", r.ck, "--out", out, "--set", "eval.mode="+mode, "--set", "eval.max_new_tokens=4"); code != 0 {
			t.Fatalf("eval %s: exit %d: %s", mode, code, msg)
		}
		var err error
		if rep[mode], err = infer.ReadEval(out); err != nil {
			t.Fatal(err)
		}
		if n := rep[mode].Subsets["all"].N; n != 4 {
			t.Fatalf("eval %s: %d samples, want 4", mode, n)
		}
	}
	sc := rep["score"]
	for k, v := range inTrain {
		got, ok := sc.Lookup(k)
		if !ok || math.Abs(got-v) > 1e-6 {
			t.Errorf("%s: mose eval %v (found %v), in training %v", k, got, ok, v)
		}
	}

	preds := filepath.Join(dir, "preds.jsonl")
	if code, msg := runMose(t, "predict", "--checkpoint", r.ck, "--manifest", r.manifest, "--out", preds, "--set", "eval.max_new_tokens=4"); code != 0 {
		t.Fatalf("predict: exit %d: %s", code, msg)
	}
	ps := readPredictions(t, preds)
	if len(ps) != 4 {
		t.Fatalf("%d predictions, want 4", len(ps))
	}
	ntok := labelTokens(t, r.model)
	type acc struct {
		right, gen, n, tokens int
		nll                   float64
	}
	by := map[string]*acc{}
	for _, p := range ps {
		for _, sub := range []string{"all", p.Subset} {
			a := by[sub]
			if a == nil {
				a = &acc{}
				by[sub] = a
			}
			a.n++
			if p.Predicted == p.Gold {
				a.right++
			}
			if p.AnswerLabel != nil && *p.AnswerLabel == p.Gold {
				a.gen++
			}
			for _, s := range p.Scores {
				if s.Label == p.Gold {
					a.nll -= s.LogLikelihood
					a.tokens += ntok[s.Label]
				}
			}
		}
	}
	for sub, a := range by {
		checks := []struct {
			key       string
			got, want float64
			tol       float64
		}{
			{sub + ".accuracy", float64(a.right) / float64(a.n), 0, 1e-9},
			{sub + ".loss", a.nll / float64(a.tokens), 0, 1e-5},
		}
		for _, c := range checks {
			want, ok := sc.Lookup(c.key)
			if !ok || math.Abs(c.got-want) > c.tol*max(1, math.Abs(want)) {
				t.Errorf("%s: predict gives %v, eval %v", c.key, c.got, want)
			}
		}
		if want, ok := rep["generate"].Lookup(sub + ".accuracy"); !ok || math.Abs(float64(a.gen)/float64(a.n)-want) > 1e-9 {
			t.Errorf("%s.accuracy (generate): predict's answers give %v, eval %v", sub, float64(a.gen)/float64(a.n), want)
		}
	}
	// The run's PEFT export (omni expert in PEFT, the rest in the sidecar)
	// predicts the checkpoint's scores.
	exp, expPreds := filepath.Join(dir, "export"), filepath.Join(dir, "export.jsonl")
	if code, msg := runMose(t, "export", "--checkpoint", r.ck, "--format", "peft", "--out", exp); code != 0 {
		t.Fatalf("export: exit %d: %s", code, msg)
	}
	if code, msg := runMose(t, "predict", "--checkpoint", exp, "--recipe", filepath.Join(r.ck, "recipe.yaml"), "--manifest", r.manifest,
		"--no-generate", "--out", expPreds); code != 0 {
		t.Fatalf("predict on the export: exit %d: %s", code, msg)
	}
	for i, p := range readPredictions(t, expPreds) {
		for k, s := range p.Scores {
			if d := math.Abs(s.LogLikelihood - ps[i].Scores[k].LogLikelihood); d > 1e-5 {
				t.Errorf("%s %s: %v on the PEFT export, %v on the checkpoint", p.ID, s.Label, s.LogLikelihood, ps[i].Scores[k].LogLikelihood)
			}
		}
	}
	t.Logf("accuracy %.3f, loss %.4f (in training, mose eval and predict agree); generate-mode accuracy %.3f; answers: %q",
		inTrain["all.accuracy"], inTrain["all.loss"], must(rep["generate"].Lookup("all.accuracy")), *ps[0].Answer)
}

func must(v float64, _ bool) float64 { return v }

// predict --video (and --audio, --image, --use-audio-in-video) on a
// thinker checkpoint runs the processor in memory as mose preprocess does:
// the label scores (within 1e-6) and the generated answer are those of
// predict --manifest on a manifest whose "inputs" file is mose preprocess
// of the same media. With another --fps than preprocess's the scores
// differ (the check can fail). Bad media exit 2 naming the file; --feature
// on a thinker and --video on another model exit 2 naming the flag.
func TestOmniPredictMedia(t *testing.T) {
	if testing.Short() {
		t.Skip("a training run")
	}
	clip := ffmpegGen(t, "clip.mkv", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10", "-f", "lavfi", "-i",
		"sine=frequency=440:sample_rate=22050", "-t", "1", "-c:v", "ffv1", "-c:a", "flac")
	tone := ffmpegGen(t, "tone.flac", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "1")
	img := ffmpegGen(t, "img.png", "-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "1")
	r := trainOmni(t, 3, "train.warmup_steps=1")
	dir := t.TempDir()
	gen := []string{"--set", "eval.max_new_tokens=4"}
	cases := []struct {
		name  string
		media []string // preprocess's and predict's media flags
		other []string // predict's flags that differ from preprocess's ("": none)
	}{
		{"video", []string{"--video", clip, "--subtitle", "what is felt?"}, nil},
		{"video with its audio", []string{"--video", clip, "--use-audio-in-video", "--fps", "3"}, nil},
		{"image and audio", []string{"--image", img, "--audio", tone, "--subtitle", "hm"}, nil},
		{"another fps", []string{"--video", clip}, []string{"--fps", "4"}},
	}
	for i, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			in := filepath.Join(dir, fmt.Sprintf("in%d.safetensors", i))
			if code, msg := runMose(t, append([]string{"preprocess", "--model", r.model, "--out", in}, c.media...)...); code != 0 {
				t.Fatalf("preprocess: exit %d: %s", code, msg)
			}
			man := filepath.Join(dir, fmt.Sprintf("in%d.jsonl", i))
			line, _ := json.Marshal(map[string]string{"id": "sample", "subset": "general", "label": "happy", "inputs": filepath.Base(in)})
			if err := os.WriteFile(man, append(line, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
			a, b := filepath.Join(dir, fmt.Sprintf("m%d.jsonl", i)), filepath.Join(dir, fmt.Sprintf("v%d.jsonl", i))
			if code, msg := runMose(t, append([]string{"predict", "--checkpoint", r.ck, "--manifest", man, "--out", a}, gen...)...); code != 0 {
				t.Fatalf("predict --manifest: exit %d: %s", code, msg)
			}
			args := append(append(append([]string{"predict", "--checkpoint", r.ck, "--label", "happy", "--out", b}, c.media...), c.other...), gen...)
			code, msg := runMose(t, args...)
			if code != 0 {
				t.Fatalf("predict %v: exit %d: %s", c.media, code, msg)
			}
			if !strings.Contains(msg, "answer:") || !strings.Contains(msg, "scores:") {
				t.Errorf("predict printed no scores or answer:\n%s", msg)
			}
			pa, pb := readPredictions(t, a), readPredictions(t, b)
			if len(pa) != 1 || len(pb) != 1 {
				t.Fatalf("%d and %d predictions", len(pa), len(pb))
			}
			worst := 0.0
			for k := range pa[0].Scores {
				worst = max(worst, math.Abs(pa[0].Scores[k].LogLikelihood-pb[0].Scores[k].LogLikelihood))
			}
			if pb[0].Subset != "" || pb[0].ID != "sample" {
				t.Errorf("the single sample is %q in subset %q, want \"sample\" in none", pb[0].ID, pb[0].Subset)
			}
			same := worst <= 1e-6 && *pa[0].Answer == *pb[0].Answer && pb[0].Gold == "happy"
			t.Logf("largest score difference %.3g; answers %q and %q", worst, *pa[0].Answer, *pb[0].Answer)
			if same != (c.other == nil) {
				t.Errorf("media in memory vs preprocess's file: same=%v (largest score difference %.3g, answers %q, %q), want %v",
					same, worst, *pa[0].Answer, *pb[0].Answer, c.other == nil)
			}
		})
	}

	notMedia := filepath.Join(dir, "text.mp4")
	if err := os.WriteFile(notMedia, []byte(strings.Repeat("hello\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	npy := filepath.Join(dir, "f.npy")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"not media", []string{"predict", "--checkpoint", r.ck, "--video", notMedia}, notMedia},
		{"missing audio", []string{"predict", "--checkpoint", r.ck, "--audio", filepath.Join(dir, "none.wav")}, "none.wav"},
		{"--fps out of range", []string{"predict", "--checkpoint", r.ck, "--video", clip, "--fps", "0"}, "predict: --fps 0"},
		{"--use-audio-in-video with --audio", []string{"predict", "--checkpoint", r.ck, "--video", clip, "--audio", tone, "--use-audio-in-video"}, "--use-audio-in-video"},
		{"--feature on a thinker", []string{"predict", "--checkpoint", r.ck, "--feature", "audio=" + npy, "--subtitle", "x"}, "--feature"},
		{"--video on a LLaMA model", append([]string{"predict", "--checkpoint", e2e.model, "--video", clip}, recipeArgs(filepath.Join(dir, "l"))...), "--video"},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			if code, msg := runMose(t, c.args...); code != 2 || !strings.Contains(msg, c.want) {
				t.Errorf("exit %d, want 2 naming %s: %s", code, c.want, msg)
			}
		})
	}
}
