package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/omnisynth"
	"github.com/mose-llm/mose/data/procout"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/plots"
	"github.com/mose-llm/mose/stack"
)

// omniArgs are train flags for the omni-tiny-mose preset over model and
// data under dir (created by the first run: model.create, data.synth).
func omniArgs(dir, out string, sets ...string) []string {
	args := []string{"--recipe", "omni-tiny-mose"}
	for _, s := range append([]string{
		"model.path=" + filepath.Join(dir, "model"), "data.train=" + filepath.Join(dir, "data", "train.jsonl"),
		"data.synth_samples=4", "run.output_dir=" + out, "run.threads=1", "train.batch_size=4", "train.max_steps=6",
		"train.log_every=1", "train.save_every=0", "train.warmup_steps=1", "train.lr=5e-3", "adapters.gate.noise=0.1",
		"data.cache_dir=" + filepath.Join(dir, "cache"),
	}, sets...) {
		args = append(args, "--set", s)
	}
	return args
}

// `mose train --recipe omni-tiny-mose` end to end on the CLI: the first run
// makes the random thinker and the synthetic clips (through FFmpeg when it
// is there; the log says SKIPPED otherwise), trains MoSE, and its router
// telemetry counts, at every step, exactly the visual tokens the
// processor-outputs files give (every batch is the whole set) and the
// others as non-visual; a run stopped by SIGTERM and resumed with --resume
// auto ends with the straight run's adapters bit for bit and its losses.
func TestOmniTrainCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("three training runs")
	}
	dir := t.TempDir()
	straight := filepath.Join(dir, "straight")
	cmd := startTrain(t, straight, omniArgs(dir, straight)...)
	if err := cmd.Wait(); err != nil {
		log, _ := os.ReadFile(straight + ".log")
		t.Fatalf("straight run: %v\n%s", err, tail(log, 3000))
	}
	log, _ := os.ReadFile(straight + ".log")
	meta := stack.OmniSynthMeta(filepath.Join(dir, "data"))
	if meta == nil {
		t.Fatal("no omni synth.json")
	}
	if meta.Media != omnisynth.MediaFFmpeg {
		t.Logf("SKIP (FFmpeg decoding of the clips): %s", meta.FFmpeg)
		if !strings.Contains(string(log), "SKIPPED: FFmpeg was not found") {
			t.Errorf("the log does not say loudly that FFmpeg was skipped:\n%s", tail(log, 2000))
		}
	}

	// The set's tokens, from the files alone.
	spec, err := stack.ReadOmniSpec(filepath.Join(dir, "model"), omni.Presets["omni-tiny"])
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(filepath.Join(dir, "model", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	pad, _ := tok.Pad()
	ds, err := data.OpenOmni(filepath.Join(dir, "data", "train.jsonl"), spec, tok, data.Options{PadID: pad})
	if err != nil {
		t.Fatal(err)
	}
	var visual, real int
	for i, s := range ds.Samples {
		h, err := procout.Open(filepath.Join(dir, "data", s.Inputs))
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range h.VideoGridTHW {
			visual += int(g[0] * g[1] * g[2] / 4)
		}
		real += ds.Examples[i].Len()
	}
	recs, err := plots.ReadRecords(filepath.Join(straight, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for _, r := range recs {
		if r.IsEval() {
			continue
		}
		steps++
		if v, nv := r.Router["visual"].Tokens, r.Router["nonvisual"].Tokens; v != float64(visual) || nv != float64(real-visual) {
			t.Errorf("step %d: the router saw %v visual and %v non-visual tokens; the files give %d and %d", r.Step, v, nv, visual, real-visual)
		}
	}
	if steps != 6 {
		t.Fatalf("%d training records, want 6", steps)
	}
	t.Logf("router telemetry: %d visual and %d non-visual tokens per step, as the files give", visual, real-visual)
	want, wantLoss := adapterOf(t, filepath.Join(straight, "checkpoints", "step-0000006")), lossesOf(t, straight)

	split := filepath.Join(dir, "split")
	cmd = startTrain(t, split, omniArgs(dir, split)...)
	waitLines(t, split, 2)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 143 {
		t.Fatalf("SIGTERM: exit %d, want 143", code)
	}
	stopped := newestStep(filepath.Join(split, "checkpoints"))
	if stopped == 0 || stopped >= 6 {
		t.Fatalf("SIGTERM left a checkpoint at step %d", stopped)
	}
	start := time.Now()
	cmd = startTrain(t, split, append(omniArgs(dir, split), "--resume", "auto")...)
	if err := cmd.Wait(); err != nil {
		log, _ := os.ReadFile(split + ".log")
		t.Fatalf("resumed run: %v\n%s", err, tail(log, 3000))
	}
	got := adapterOf(t, filepath.Join(split, "checkpoints", "step-0000006"))
	for n, v := range want {
		for i := range v {
			if math.Float32bits(v[i]) != math.Float32bits(got[n][i]) {
				t.Fatalf("%s[%d]: %v after SIGTERM at step %d and --resume auto, %v straight", n, i, got[n][i], stopped, v[i])
			}
		}
	}
	gotLoss := lossesOf(t, split)
	for step, l := range wantLoss {
		if gotLoss[step] != l {
			t.Errorf("step %d: loss %v (stopped and resumed), %v (straight)", step, gotLoss[step], l)
		}
	}
	t.Logf("SIGTERM at step %d, resumed in %v: adapters and losses bit for bit the straight run's", stopped, time.Since(start).Round(time.Second))
}
