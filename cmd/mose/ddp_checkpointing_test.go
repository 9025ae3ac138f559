package main

import (
	"path/filepath"
	"testing"
)

// TestDDPCheckpointing: 2 ranks with activation checkpointing give the
// adapters of 2 ranks without it bit for bit, with dropout and gate noise
// on (each rank draws the same masks in both runs): the checkpointed path's
// router sums are all-reduced like the plain path's.
func TestDDPCheckpointing(t *testing.T) {
	dir := t.TempDir()
	off, on := filepath.Join(dir, "off"), filepath.Join(dir, "on")
	for _, run := range []struct {
		out string
		ck  string
	}{{off, "false"}, {on, "true"}} {
		args := recipeArgs(run.out, "train.max_steps=4", "train.grad_accum=2", "adapters.dropout=0.1",
			"model.train_projectors=true", "train.activation_checkpointing="+run.ck)
		cmd := startTrain(t, run.out, append(args, "--nproc", "2")...)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("2 ranks, checkpointing %s: %v\n%s", run.ck, err, readLog(run.out))
		}
	}
	ck := filepath.Join("checkpoints", "step-0000004")
	if d := maxAdapterDiff(t, filepath.Join(off, ck), filepath.Join(on, ck)); d != 0 {
		t.Errorf("adapters differ by %.3g with checkpointing under 2 ranks", d)
	}
	a, b := trainRecords(t, off), trainRecords(t, on)
	if len(a) != 4 || len(b) != 4 {
		t.Fatalf("%d and %d train records, want 4", len(a), len(b))
	}
	for step, x := range a {
		if y := b[step]; x.EmotionLoss != y.EmotionLoss || x.GradNorm != y.GradNorm {
			t.Errorf("step %d: loss %v / grad norm %v without checkpointing, %v / %v with", step, x.EmotionLoss, x.GradNorm, y.EmotionLoss, y.GradNorm)
		}
	}
}
