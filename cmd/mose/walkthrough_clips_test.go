package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data/media"
)

// TestReadmeClipsWalkthrough runs the README's "Train on your own clips"
// screen with the mose binary, as a user would: the shipped 7B recipe
// (qwen2.5-omni-mose) pointed at a random omni-tiny thinker and synthetic
// clips, with the CPU flags and a few steps; validate, prepare-data, train,
// eval without --recipe, predict straight from a clip, export. prepare-data
// fills the cache the training then only reads.
func TestReadmeClipsWalkthrough(t *testing.T) {
	if e2e.err != nil {
		t.Skipf("mose binary did not build: %v", e2e.err)
	}
	if _, err := media.Locate(context.Background()); err != nil {
		t.Skipf("no ffmpeg (run scripts/setup/ffmpeg.sh): %v", err)
	}
	dir := t.TempDir()
	run := moseIn(t, dir)
	run("init-model", "--preset", "omni-tiny", "--out", "models/omni")
	run("synth-data", "--media", "--out", "data/clips", "--samples", "6")
	cache := filepath.Join(dir, "cache") // never the user's
	r := []string{"--recipe", "qwen2.5-omni-mose", "--set", "run.name=mine", "--set", "model.path=models/omni",
		"--set", "data.train=data/clips/train.jsonl", "--set", "data.eval=data/clips/eval.jsonl",
		"--set", "run.device=cpu", "--set", "model.dtype=float32", // the CPU flags
		"--set", "data.cache_dir=" + cache, "--set", "run.threads=1", "--set", "train.max_steps=4",
		"--set", "train.grad_accum=1", "--set", "train.batch_size=2", "--set", "train.warmup_steps=1",
		"--set", "train.save_every=2", "--set", "train.log_every=1"}
	run(append([]string{"validate"}, r...)...)
	run(append([]string{"prepare-data", "--no-progress"}, r...)...)
	entries := func() int {
		m, _ := filepath.Glob(filepath.Join(cache, "enc", "*.safetensors"))
		return len(m)
	}
	filled := entries()
	if filled == 0 {
		t.Fatal("prepare-data wrote no encoder entry")
	}
	run(append([]string{"train", "--no-progress"}, r...)...)
	if n := entries(); n != filled {
		t.Errorf("training after prepare-data wrote %d encoder entries more", n-filled)
	}
	ck := filepath.Join(dir, "runs", "mine", "checkpoints", "step-0000004")
	if _, err := os.Stat(ck); err != nil {
		t.Fatal(err)
	}
	run("eval", "--checkpoint", ck, "--out", filepath.Join(dir, "eval"))
	if _, err := os.Stat(filepath.Join(dir, "eval", "eval.json")); err != nil {
		t.Error(err)
	}
	out := run("predict", "--checkpoint", ck, "--video", "data/clips/clips/eval-0000.mp4", "--use-audio-in-video",
		"--subtitle", "What a day!", "--set", "eval.max_new_tokens=2")
	if !strings.Contains(out, "scores:") || !strings.Contains(out, "predicted:") {
		t.Errorf("predict --video printed no scores:\n%s", out)
	}
	run("export", "--checkpoint", ck, "--format", "peft", "--out", filepath.Join(dir, "exports", "mine"))
}
