package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mose-llm/mose/plots"
)

// waitLines waits until a run's metrics.jsonl has n lines.
func waitLines(t *testing.T, out string, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if b, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl")); bytes.Count(b, []byte("\n")) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("training did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newestStep is the highest step-NNNNNNN under root (0 if none).
func newestStep(root string) int {
	entries, _ := os.ReadDir(root)
	best := 0
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "step-%d", &n); err == nil && n > best {
			best = n
		}
	}
	return best
}

// TestResumeAutoDamagedCLI: --resume auto on a damaged newest checkpoint
// exits 2 naming the file and the older checkpoint to use; eval and export
// of the damaged checkpoint exit 2; nothing changes.
func TestResumeAutoDamagedCLI(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	args := recipeArgs(out, "train.max_steps=4", "train.save_every=2", "train.keep_last=5")
	if code, msg := runMose(t, append([]string{"train"}, args...)...); code != 0 {
		t.Fatalf("seed run: exit %d: %s", code, msg)
	}
	root := filepath.Join(out, "checkpoints")
	ck := filepath.Join(root, "step-0000004")
	p := filepath.Join(ck, "adapter.safetensors")
	b, _ := os.ReadFile(p)
	b[len(b)-3] ^= 0x10
	os.WriteFile(p, b, 0o644)
	metrics, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	code, msg := runMose(t, append([]string{"train", "--resume", "auto"}, args...)...)
	if code != 2 || !strings.Contains(msg, "adapter.safetensors") || !strings.Contains(msg, "--resume "+filepath.Join(root, "step-0000002")) {
		t.Errorf("train --resume auto: exit %d: %s", code, msg)
	}
	code, msg = runMose(t, append(append([]string{"eval"}, recipeArgs(out)...), "--checkpoint", ck, "--out", t.TempDir())...)
	if code != 2 || !strings.Contains(msg, "adapter.safetensors") {
		t.Errorf("eval: exit %d: %s", code, msg)
	}
	code, msg = runMose(t, "export", "--checkpoint", ck, "--format", "peft", "--out", filepath.Join(t.TempDir(), "peft"))
	if code != 2 || !strings.Contains(msg, "adapter.safetensors") {
		t.Errorf("export: exit %d: %s", code, msg)
	}
	if after, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl")); !bytes.Equal(after, metrics) {
		t.Errorf("metrics.jsonl changed")
	}
	if newestStep(root) != 4 {
		t.Errorf("checkpoints changed")
	}
}

// TestTrainLock: a second train on a run being trained exits 2 at once,
// naming the PID that holds the lock; eval and export of its complete
// checkpoints work meanwhile; after kill -9 the lock is gone and the run
// resumes.
func TestTrainLock(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	out := filepath.Join(t.TempDir(), "run")
	args := recipeArgs(out, "train.max_steps=100000", "train.save_every=2", "train.keep_last=2")
	cmd := startTrain(t, out, args...)
	defer cmd.Process.Kill()
	waitLines(t, out, 5)
	start := time.Now()
	code, msg := runMose(t, append([]string{"train", "--resume", "auto"}, args...)...)
	if code != 2 || !strings.Contains(msg, fmt.Sprintf("PID %d", cmd.Process.Pid)) {
		t.Errorf("second train: exit %d, want 2 naming PID %d: %s", code, cmd.Process.Pid, msg)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the second train took %v to fail", took)
	}
	// export of a complete checkpoint of the live run (retried: rotation may
	// remove the one picked meanwhile)
	exported := false
	for i := 0; i < 5 && !exported; i++ {
		ck := filepath.Join(out, "checkpoints", fmt.Sprintf("step-%07d", newestStep(filepath.Join(out, "checkpoints"))))
		code, msg = runMose(t, "export", "--checkpoint", ck, "--format", "peft", "--out", filepath.Join(t.TempDir(), "peft"))
		exported = code == 0
	}
	if !exported {
		t.Errorf("export of the live run's checkpoint: exit %d: %s", code, msg)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	lock, _ := os.ReadFile(filepath.Join(out, ".lock"))
	if strings.TrimSpace(string(lock)) != fmt.Sprint(cmd.Process.Pid) {
		t.Errorf(".lock holds %q, want the PID %d", lock, cmd.Process.Pid)
	}
	resumed := recipeArgs(out, "train.max_steps=100000", "train.save_every=2", "train.keep_last=2")
	cmd = startTrain(t, out, append(resumed, "--resume", "auto")...)
	defer cmd.Process.Kill()
	n := newestStep(filepath.Join(out, "checkpoints"))
	deadline := time.Now().Add(60 * time.Second)
	for newestStep(filepath.Join(out, "checkpoints")) <= n {
		if time.Now().After(deadline) {
			t.Fatal("the resumed run (after kill -9 of the lock holder) makes no progress")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if c := cmd.ProcessState.ExitCode(); c != 143 {
		t.Errorf("resumed run: exit %d after SIGTERM", c)
	}
}

// TestSignalsInEveryPhase sends SIGTERM or SIGINT at random moments — during
// startup, steps, in-training evaluations, checkpoint writes and the final
// evaluation and plots — resuming each time. Every interrupted run exits
// 143 or 130 (never 1) with no step lost: its newest checkpoint is at the
// last step metrics.jsonl logged. The run ends with the adapters of an
// uninterrupted run and one eval line per evaluated step.
func TestSignalsInEveryPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("signals a process many times")
	}
	sets := []string{"train.max_steps=16", "train.eval_every=4", "train.save_every=5", "train.keep_last=2"}
	straight := filepath.Join(t.TempDir(), "straight")
	start := time.Now()
	cmd := startTrain(t, straight, recipeArgs(straight, sets...)...)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("straight run: %v", err)
	}
	took := time.Since(start) // the signals' timing scales with it: fast and loaded machines alike
	want := adapterOf(t, filepath.Join(straight, "checkpoints", "step-0000016"))

	out := filepath.Join(t.TempDir(), "run")
	root := filepath.Join(out, "checkpoints")
	args := append(recipeArgs(out, sets...), "--resume", "auto")
	rng := rand.New(rand.NewPCG(3, 11))
	signals := 0
	for round := 0; ; round++ {
		if round == 60 {
			t.Fatal("no end after 60 rounds")
		}
		cmd := startTrain(t, out, args...)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		sig := syscall.SIGTERM
		if rng.IntN(3) == 0 {
			sig = syscall.SIGINT
		}
		started := waitOpens(cmd.Process.Pid, out, e2e.model, done)
		select {
		case <-done:
		// A random moment within the first quarter of a straight run's time, later each round so
		// that the run ends: each interrupted round resumes further on, so later rounds hit
		// the last phases (final evaluation, plots) however fast the machine is.
		case <-time.After(time.Duration(rng.Float64()*0.25*float64(took)) + time.Duration(round)*took/50):
			if !started {
				<-done
				break
			}
			cmd.Process.Signal(sig)
			<-done
			signals++
		}
		code := cmd.ProcessState.ExitCode()
		if code == 0 {
			break
		}
		wantCode := 143
		if sig == syscall.SIGINT {
			wantCode = 130
		}
		if code != wantCode {
			log, _ := os.ReadFile(out + ".log")
			t.Fatalf("round %d: exit %d after %v, want %d\n%s", round, code, sig, wantCode, tail(log, 2000))
		}
		if last, ck := lastTrainStep(t, out), newestStep(root); ck < last {
			t.Fatalf("round %d: metrics.jsonl logged step %d but the newest checkpoint is step %d", round, last, ck)
		}
	}
	got := adapterOf(t, filepath.Join(root, "step-0000016"))
	var worst float64
	for n, v := range want {
		for i := range v {
			worst = math.Max(worst, math.Abs(float64(v[i]-got[n][i])))
		}
	}
	t.Logf("%d signals; max |adapter difference| %.3g", signals, worst)
	if worst > 1e-6 {
		t.Errorf("adapters differ by %.3g from an uninterrupted run", worst)
	}
	if signals < 5 {
		t.Errorf("only %d signals sent", signals)
	}
	evals := map[int]int{}
	recs, _ := plots.ReadRecords(filepath.Join(out, "metrics.jsonl"))
	for _, r := range recs {
		if r.IsEval() {
			evals[r.Step]++
		}
	}
	for _, s := range []int{4, 8, 12, 16} {
		if evals[s] != 1 {
			t.Errorf("eval lines: %v, want one at each of 4, 8, 12, 16", evals)
			break
		}
	}
	var ev struct{ Subsets map[string]any }
	if b, err := os.ReadFile(filepath.Join(out, "eval.json")); err != nil || json.Unmarshal(b, &ev) != nil || len(ev.Subsets) == 0 {
		t.Errorf("no eval.json after the run: %v", err)
	}
}

// waitOpens waits until process pid has a file under one of dirs open (the
// run lock, the model being read: mose's main is running and handles
// signals), or it ends.
func waitOpens(pid int, out, model string, done chan error) bool {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if strings.HasPrefix(target, out+"/") || strings.HasPrefix(target, model+"/") {
				return true
			}
		}
		select {
		case err := <-done:
			done <- err
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return false
}

func lastTrainStep(t *testing.T, out string) int {
	recs, _ := plots.ReadRecords(filepath.Join(out, "metrics.jsonl"))
	last := 0
	for _, r := range recs {
		if !r.IsEval() && r.Step > last {
			last = r.Step
		}
	}
	return last
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
