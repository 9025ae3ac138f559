package main

import (
	"math"
	"path/filepath"
	"testing"
)

// Data parallelism on a Qwen2.5-Omni thinker: 2 ranks × batch 2 give the
// adapters, loss lines and evaluation of 1 process × batch 4 (two
// micro-batches per step, no dropout, no gate noise), with
// TestDDPEquivalence's tolerances: adapters within 1e-5, logged losses and
// grad norm within 1e-6, eval losses within 1e-6 relative and every other
// eval metric equal. It fails when the global batches differ (checked: 2
// ranks × batch 1 against 1 × 4 gives adapters 0.049 apart, losses 1.02).
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
	ck := filepath.Join("checkpoints", "step-0000003")
	d := maxAdapterDiff(t, filepath.Join(one, ck), filepath.Join(two, ck))
	t.Logf("max |adapter(2 ranks × 2) − adapter(1 × 4)| = %.3g", d)
	if d > 1e-5 {
		t.Errorf("adapters differ by %.3g (> 1e-5)", d)
	}
	a, b := trainRecords(t, one), trainRecords(t, two)
	if len(a) != 3 || len(b) != 3 {
		t.Fatalf("%d and %d train records, want 3", len(a), len(b))
	}
	var worst float64
	for step, x := range a {
		y := b[step]
		for _, v := range [][2]float64{{x.EmotionLoss, y.EmotionLoss}, {x.LBLoss, y.LBLoss}, {x.ZLoss, y.ZLoss}, {x.GradNorm, y.GradNorm}} {
			worst = math.Max(worst, math.Abs(v[0]-v[1]))
		}
	}
	t.Logf("max difference of the logged losses and grad norm: %.3g", worst)
	if worst > 1e-6 {
		t.Errorf("loss lines differ by %.3g (> 1e-6)", worst)
	}
	ea, eb := readEval(t, one), readEval(t, two)
	if len(ea.loss) == 0 || len(ea.loss) != len(eb.loss) {
		t.Errorf("eval losses: 1 process %v, 2 ranks %v", ea.loss, eb.loss)
	}
	for sub, x := range ea.loss {
		if y := eb.loss[sub]; math.Abs(x-y) > 1e-6*math.Max(1, math.Abs(x)) {
			t.Errorf("%s eval loss: 1 process %v, 2 ranks %v", sub, x, y)
		}
	}
	if ea.rest != eb.rest {
		t.Errorf("eval.json differs:\n1 process: %s\n2 ranks:   %s", ea.rest, eb.rest)
	}
}
