package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/infer"
)

// readPredictions reads a predict --out file.
func readPredictions(t *testing.T, path string) []infer.SamplePrediction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []infer.SamplePrediction
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var p infer.SamplePrediction
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, p)
	}
	return out
}

// TestPredict: `mose predict` end to end on the demo model, trained a few
// steps: a manifest on the checkpoint and on its PEFT export (the same
// scores), one sample given by flags (the manifest's scores for it), with AR,
// JSONL written, and the bad inputs refused with exit 2.
func TestPredict(t *testing.T) {
	if e2e.err != nil {
		t.Skip("mose did not build")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	if code, msg := runMose(t, append([]string{"train"}, recipeArgs(out, "train.max_steps=4", "train.lr=1e-2")...)...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, msg)
	}
	ck := filepath.Join(out, "checkpoints", "step-0000004")
	export := filepath.Join(dir, "export")
	if code, msg := runMose(t, "export", "--checkpoint", ck, "--format", "peft", "--out", export); code != 0 {
		t.Fatalf("export: exit %d: %s", code, msg)
	}
	samples, err := data.ReadManifest(e2e.eval, data.ManifestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gen := []string{"--set", "eval.max_new_tokens=4"}

	// the manifest on the checkpoint (its own recipe) and on the export
	ckOut, exOut := filepath.Join(dir, "ck.jsonl"), filepath.Join(dir, "ex.jsonl")
	code, msg := runMose(t, append([]string{"predict", "--checkpoint", ck, "--manifest", e2e.eval, "--out", ckOut}, gen...)...)
	if code != 0 {
		t.Fatalf("predict checkpoint: exit %d: %s", code, msg)
	}
	if !strings.Contains(msg, "predicted:") || !strings.Contains(msg, "answer:") || !strings.Contains(msg, samples[0].ID) {
		t.Errorf("predict printed no per-sample result:\n%s", msg)
	}
	args := append([]string{"predict", "--checkpoint", export, "--manifest", e2e.eval, "--out", exOut}, recipeArgs(out)...)
	if code, msg := runMose(t, append(args, gen...)...); code != 0 {
		t.Fatalf("predict export: exit %d: %s", code, msg)
	}
	ckP, exP := readPredictions(t, ckOut), readPredictions(t, exOut)
	if len(ckP) != len(samples) || len(exP) != len(samples) {
		t.Fatalf("%d and %d predictions for %d samples", len(ckP), len(exP), len(samples))
	}
	for i, p := range ckP {
		if p.ID != samples[i].ID || p.Gold != samples[i].Label {
			t.Errorf("prediction %d is %s (gold %s), want %s (%s): not in manifest order", i, p.ID, p.Gold, samples[i].ID, samples[i].Label)
		}
		if len(p.Scores) != 9 || p.Answer == nil {
			t.Fatalf("%s: %d scores, answer %v", p.ID, len(p.Scores), p.Answer)
		}
		sum := 0.0
		for k, s := range p.Scores {
			sum += s.Prob
			if d := math.Abs(s.LogLikelihood - exP[i].Scores[k].LogLikelihood); d > 1e-5 {
				t.Errorf("%s %s: checkpoint %v, export %v", p.ID, s.Label, s.LogLikelihood, exP[i].Scores[k].LogLikelihood)
			}
		}
		if math.Abs(sum-1) > 1e-6 {
			t.Errorf("%s: label probabilities sum to %v", p.ID, sum)
		}
		if p.Predicted != exP[i].Predicted || *p.Answer != *exP[i].Answer {
			t.Errorf("%s: checkpoint and export disagree: %s %q vs %s %q", p.ID, p.Predicted, *p.Answer, exP[i].Predicted, *exP[i].Answer)
		}
	}

	// one sample by flags gives the manifest's scores for it; AR changes them
	s := samples[2]
	root := filepath.Dir(e2e.eval)
	one := []string{"predict", "--checkpoint", ck, "--subtitle", s.Subtitle, "--id", s.ID}
	for name, rel := range s.Features {
		one = append(one, "--feature", name+"="+filepath.Join(root, rel))
	}
	for _, ar := range []bool{false, true} {
		args := append(append([]string(nil), one...), "--out", filepath.Join(dir, "one.jsonl"), "--force", "--no-generate")
		if ar {
			args = append(args, "--set", "eval.ar.enabled=true", "--set", "eval.ar.beta=1")
		}
		if code, msg := runMose(t, args...); code != 0 {
			t.Fatalf("predict sample (AR %v): exit %d: %s", ar, code, msg)
		}
		got := readPredictions(t, filepath.Join(dir, "one.jsonl"))
		if len(got) != 1 || got[0].ID != s.ID || got[0].Gold != "" || got[0].Answer != nil {
			t.Fatalf("sample prediction %+v", got)
		}
		worst := 0.0
		for k, sc := range got[0].Scores {
			worst = max(worst, math.Abs(sc.LogLikelihood-ckP[2].Scores[k].LogLikelihood))
		}
		if !ar && worst > 1e-5 {
			t.Errorf("the sample by flags scores %.3g away from the manifest's", worst)
		}
		if ar && worst < 1e-6 {
			t.Errorf("AR did not change the scores")
		}
	}

	// bad inputs: exit 2, the existing --out untouched
	before, _ := os.ReadFile(ckOut)
	feat := "--feature=" + func() string {
		for name, rel := range s.Features {
			return name + "=" + filepath.Join(root, rel)
		}
		return ""
	}()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no checkpoint", []string{"predict", "--manifest", e2e.eval}, "--checkpoint"},
		{"nothing to predict", []string{"predict", "--checkpoint", ck}, "--manifest"},
		{"both", []string{"predict", "--checkpoint", ck, "--manifest", e2e.eval, feat}, "not both"},
		{"out exists", []string{"predict", "--checkpoint", ck, "--manifest", e2e.eval, "--out", ckOut}, "exists"},
		{"unknown input", []string{"predict", "--checkpoint", ck, "--subtitle", "hi", "--feature", "nope=x.npy"}, "nope"},
		{"missing input", []string{"predict", "--checkpoint", ck, "--subtitle", "hi", feat}, "features."},
		{"bad label", []string{"predict", "--checkpoint", ck, "--subtitle", "hi", feat, "--label", "bored"}, "bored"},
		{"export without recipe", []string{"predict", "--checkpoint", export, "--manifest", e2e.eval}, "--recipe"},
		{"not a checkpoint", []string{"predict", "--checkpoint", dir, "--manifest", e2e.eval, "--recipe", filepath.Join(ck, "recipe.yaml")}, "neither"},
	} {
		code, msg := runMose(t, c.args...)
		if code != 2 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: exit %d, want 2 with %q: %s", c.name, code, c.want, msg)
		}
	}
	if after, _ := os.ReadFile(ckOut); string(after) != string(before) {
		t.Errorf("a refused predict changed %s", ckOut)
	}
}

// A base without a pad token (SmolLM2, LLaMA-3 style) pads with its EOS, in
// one-sample predict as in training.
func TestPredictWithoutPadToken(t *testing.T) {
	if e2e.err != nil {
		t.Skip("mose did not build")
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if err := os.CopyFS(model, os.DirFS(e2e.model)); err != nil {
		t.Fatal(err)
	}
	tokPath := filepath.Join(model, "tokenizer.json")
	b, _ := os.ReadFile(tokPath)
	if !strings.Contains(string(b), `"<pad>"`) {
		t.Fatal("the fixture tokenizer has no <pad> to remove")
	}
	if err := os.WriteFile(tokPath, []byte(strings.ReplaceAll(string(b), `"<pad>"`, `"<unused_pad>"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	if code, msg := runMose(t, append([]string{"train"}, recipeArgs(out, "model.path="+model, "train.max_steps=2", "train.warmup_steps=1")...)...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, msg)
	}
	samples, err := data.ReadManifest(e2e.eval, data.ManifestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := samples[0]
	args := []string{"predict", "--checkpoint", filepath.Join(out, "checkpoints", "step-0000002"), "--subtitle", s.Subtitle,
		"--out", filepath.Join(dir, "one.jsonl"), "--set", "eval.max_new_tokens=3"}
	for name, rel := range s.Features {
		args = append(args, "--feature", name+"="+filepath.Join(filepath.Dir(e2e.eval), rel))
	}
	if code, msg := runMose(t, args...); code != 0 {
		t.Fatalf("predict one sample without a pad token: exit %d: %s", code, msg)
	}
	if got := readPredictions(t, filepath.Join(dir, "one.jsonl")); len(got) != 1 || got[0].Answer == nil {
		t.Fatalf("predictions %+v", got)
	}
}
