package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/media"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// From a folder of clips to training: synth-data --media writes raw mp4
// clips and a media manifest; MoSE trains on omni-tiny from them (recipe
// omni-tiny-media), the first epoch running the towers once per sample
// and the second none (counted); and sample 0 read through the training
// data path (media manifest -> processor cache -> encoder cache ->
// OmniBegin) gives the same prompt ids and pixels as `mose preprocess` on
// its clip, and, with the adapters as initialised (lora_B zero: the frozen
// thinker exactly), the logits `mose model-info --inputs` gives on that
// file. (With `preprocess --fps 4` the grids differ and the test fails.)
func TestMediaTrainE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("a training run")
	}
	if _, err := media.Locate(context.Background()); err != nil {
		t.Skipf("no ffmpeg (run scripts/setup/ffmpeg.sh): %v", err)
	}
	dir := t.TempDir()
	set, model, cache := filepath.Join(dir, "set"), filepath.Join(dir, "model"), filepath.Join(dir, "cache")
	for _, a := range [][]string{
		{"synth-data", "--media", "--out", set, "--samples", "6"},
		{"init-model", "--preset", "omni-tiny", "--out", model},
	} {
		if code, msg := runMose(t, a...); code != 0 {
			t.Fatalf("%v: exit %d: %s", a, code, msg)
		}
	}
	sets := []string{"model.path=" + model, "model.create=", "data.train=" + filepath.Join(set, "train.jsonl"), "data.synth=", "data.eval=",
		"data.cache_dir=" + cache, "run.threads=1", "train.batch_size=3", "train.max_steps=4", "train.log_every=1",
		"train.save_every=0", "train.warmup_steps=1"}
	args := []string{"train", "--recipe", "omni-tiny-media", "--no-progress", "--set", "run.output_dir=" + filepath.Join(dir, "run")}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	before := omni.TowerRuns()
	if code, msg := runMose(t, args...); code != 0 {
		t.Fatalf("train: exit %d: %s", code, msg)
	}
	if runs := omni.TowerRuns() - before; runs != 6 {
		t.Errorf("two epochs of 6 samples ran the towers %d times, want 6 (once per sample in epoch 1, none in epoch 2)", runs)
	}
	losses := lossesOf(t, filepath.Join(dir, "run"))
	if len(losses) != 4 {
		t.Fatalf("%d training records, want 4", len(losses))
	}
	for step, l := range losses {
		if math.IsNaN(l) || math.IsInf(l, 0) || l <= 0 {
			t.Errorf("step %d: loss %v", step, l)
		}
	}
	for _, sub := range []string{"proc", "enc"} {
		if n, _ := filepath.Glob(filepath.Join(cache, sub, "*.safetensors")); len(n) != 6 {
			t.Errorf("%s: %d entries, want 6", sub, len(n))
		}
	}

	// Sample 0 by `mose preprocess` and `mose model-info --inputs`.
	var line struct{ Video, Subtitle string }
	b, err := os.ReadFile(filepath.Join(set, "train.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := bytes.Cut(b, []byte("\n"))
	if err := json.Unmarshal(first, &line); err != nil {
		t.Fatal(err)
	}
	pre, mi := filepath.Join(dir, "pre.safetensors"), filepath.Join(dir, "mi.safetensors")
	for _, a := range [][]string{
		{"preprocess", "--model", model, "--out", pre, "--video", filepath.Join(set, line.Video), "--subtitle", line.Subtitle,
			"--fps", "2", "--use-audio-in-video"},
		{"model-info", "--model", model, "--inputs", pre, "--logits-out", mi},
	} {
		if code, msg := runMose(t, a...); code != 0 {
			t.Fatalf("%v: exit %d: %s", a, code, msg)
		}
	}
	pf, err := safetensors.Open(pre)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	mf, err := safetensors.Open(mi)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	wantIDs := readI64(t, pf, "input_ids")
	wantVideo := readF32(t, pf, "pixel_values_videos")
	wantLogits := readF32(t, mf, "logits")

	// The same sample through the training data path, adapters as initialised.
	cfg, err := recipes.Load("omni-tiny-media", sets)
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []int64
	var gotVideo, gotLogits []float32
	err = torch.Run(func() error {
		c, err := stack.Build(cfg, stack.AllData)
		if err != nil {
			return err
		}
		defer c.Close()
		bt, err := c.Train.Batch([]int{0}, data.ModeTrain, nil)
		if err != nil {
			return err
		}
		n := c.Train.Examples[0].AnswerStart
		if !bt.Media.Deferred {
			t.Error("after training, sample 0's batch read its pixels although its tower outputs are cached")
		}
		row, err := bt.Media.Row(0) // read on demand
		if err != nil {
			return err
		}
		gotIDs, gotVideo = bt.IDs[:n], row.Videos
		s := torch.NewScope()
		defer s.Close()
		return torch.NoGrad(func() error {
			_, p, x := c.OmniBegin(s, bt, false)
			l := c.Model.Logits(s, p.Run(s, x), nil) // (1,T,V)
			if err := s.Err(); err != nil {
				return err
			}
			all, err := l.Float32s()
			gotLogits = all[:len(all)/bt.T*n] // the prompt's positions
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Fatalf("prompt ids: %d from the media manifest, %d from preprocess (or different values)", len(gotIDs), len(wantIDs))
	}
	if !slices.Equal(gotVideo, wantVideo) {
		t.Fatalf("pixel_values_videos differ: %d values from the media manifest, %d from preprocess", len(gotVideo), len(wantVideo))
	}
	if len(gotLogits) != len(wantLogits) {
		t.Fatalf("%d logits, model-info gives %d", len(gotLogits), len(wantLogits))
	}
	var worst float64
	for i := range gotLogits {
		worst = max(worst, math.Abs(float64(gotLogits[i]-wantLogits[i])))
	}
	if worst > 1e-4 {
		t.Fatalf("logits differ from model-info --inputs on preprocess's file by up to %g", worst)
	}
	t.Logf("sample 0: %d prompt tokens; logits within %.2g of model-info --inputs on `mose preprocess` output", len(gotIDs), worst)
}

func readI64(t *testing.T, f *safetensors.File, name string) []int64 {
	t.Helper()
	raw, err := f.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := safetensors.BytesToInt64s(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
