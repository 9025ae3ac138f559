package main

import (
	"path/filepath"
	"testing"
)

// Data parallelism on a Qwen2.5-Omni thinker: 2 ranks × batch 2 give the
// adapters, loss lines and evaluation of 1 process × batch 4 (two
// micro-batches per step, no dropout, no gate noise), with
// TestDDPEquivalence's checks (checkDDPMatch): adapters within 1e-5, logged
// losses, grad norm and router statistics within 1e-6, eval losses within
// 1e-6 relative and every other eval metric equal. It fails when the
// global batches differ (checked: 2 ranks × batch 1 against 1 × 4 gives
// adapters 0.049 apart, losses 1.02).
func TestDDPOmniEquivalence(t *testing.T) {
	if testing.Short() {
		t.Skip("data-parallel runs")
	}
	r := newOmniRun(t, 8)
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	sets := []string{"adapters.dropout=0", "adapters.gate.noise=0", "train.grad_accum=2", "train.warmup_steps=1", "train.max_steps=3"}
	single := startTrain(t, one, r.trainArgs(one, 3, append(sets, "train.batch_size=4")...)...)
	if err := single.Wait(); err != nil {
		t.Fatalf("single process: %v\n%s", err, readLog(one))
	}
	launched := startTrain(t, two, append(r.trainArgs(two, 3, append(sets, "train.batch_size=2")...), "--nproc", "2")...)
	if err := launched.Wait(); err != nil {
		t.Fatalf("2 ranks: %v\n%s", err, readLog(two))
	}
	checkDDPMatch(t, one, two, 3)
}
