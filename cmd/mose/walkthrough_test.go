package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mose-llm/mose/checkpoint"
)

// TestReadmeWalkthrough runs the README's "Train on your own features" screen end
// to end, as a user would, with the mose binary: attach a plain model, check
// the manifest, validate, train, Ctrl-C, resume with the command the run
// printed, evaluate the checkpoint without --recipe, export, predict. The
// recipe is the README's (emotion-llama-lora with the CPU flags it gives),
// shortened to a few steps.
func TestReadmeWalkthrough(t *testing.T) {
	if e2e.err != nil {
		t.Skipf("mose binary did not build: %v", e2e.err)
	}
	dir := t.TempDir()
	plain := plainModel(t, 0) // attach_test.go: e2e's model without its mose section and projectors
	attached := filepath.Join(dir, "models", "my-emotion")
	run := moseIn(t, dir)

	// 1. attach
	run("attach", "--model", plain, "--out", attached,
		"--input", "name=frames,modality=visual,dim=64,tokens=32", "--input", "name=audio,modality=audio,dim=64")
	// 2. the manifest
	run("validate-data", "--manifest", e2e.train, "--model", attached)
	// 3. the recipe, and validate
	out := filepath.Join(dir, "runs", "mine")
	r := []string{"--recipe", "emotion-llama-lora", "--set", "run.name=mine", "--set", "model.path=" + attached,
		"--set", "data.train=" + e2e.train, "--set", "data.eval=" + e2e.eval,
		"--set", "run.device=cpu", "--set", "model.dtype=float32", // the README's CPU flags
		"--set", "run.output_dir=" + out, "--set", "run.threads=1", "--set", "data.workers=2", "--set", "data.max_len=256",
		"--set", "train.max_steps=12", "--set", "train.batch_size=8", "--set", "train.grad_accum=1",
		"--set", "train.warmup_steps=2", "--set", "train.save_every=2", "--set", "train.eval_every=6", "--set", "train.log_every=1"}
	run(append([]string{"validate"}, r...)...)

	// 4. train, Ctrl-C, resume with the printed command
	var logs bytes.Buffer
	cmd := exec.Command(e2e.bin, append([]string{"train"}, r...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(out, "checkpoints", checkpoint.StepDir(2))
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(first, checkpoint.StateFile)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no checkpoint after 2 minutes:\n%s", logs.String())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("Ctrl-C: exit %d, want 130\n%s", code, logs.String())
	}
	resume := resumeHint(t, logs.String())
	if !strings.Contains(resume, "--set data.train="+e2e.train) || !strings.HasSuffix(resume, "--resume auto") {
		t.Fatalf("the printed resume command drops the run's flags: %s", resume)
	}
	words := shellWords(t, resume)
	if words[0] != "mose" {
		t.Fatalf("resume command %q does not start with mose", resume)
	}
	run(words[1:]...)
	ck := filepath.Join(out, "checkpoints", checkpoint.StepDir(12))
	if latest, _ := os.ReadFile(filepath.Join(out, "checkpoints", checkpoint.LatestFile)); strings.TrimSpace(string(latest)) != checkpoint.StepDir(12) {
		t.Fatalf("latest is %q after the resumed run", latest)
	}

	// 5. evaluate (no --recipe: the checkpoint's own), export, predict
	evalDir := filepath.Join(dir, "eval")
	run("eval", "--checkpoint", ck, "--out", evalDir)
	var rep struct {
		Step       int    `json:"step"`
		Checkpoint string `json:"checkpoint"`
	}
	b, _ := os.ReadFile(filepath.Join(evalDir, "eval.json"))
	if err := json.Unmarshal(b, &rep); err != nil || rep.Step != 12 || rep.Checkpoint != ck {
		t.Errorf("eval.json: step %d checkpoint %q (%v), want 12 and %s", rep.Step, rep.Checkpoint, err, ck)
	}
	run("export", "--checkpoint", ck, "--format", "peft", "--out", filepath.Join(dir, "exports", "mine"))
	preds := filepath.Join(dir, "predictions.jsonl")
	run("predict", "--checkpoint", ck, "--manifest", e2e.eval, "--out", preds, "--set", "eval.max_new_tokens=2")
	b, _ = os.ReadFile(preds)
	if n := strings.Count(string(b), "\n"); n != 27 {
		t.Errorf("predictions.jsonl has %d lines, want 27", n)
	}
}

// moseIn runs the mose binary in dir as a user would, failing the test on
// a non-zero exit; it returns the combined output.
func moseIn(t *testing.T, dir string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		cmd := exec.Command(e2e.bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
}

// resumeHint is the command an interrupted run logged (JSON log lines).
func resumeHint(t *testing.T, logs string) string {
	t.Helper()
	const prefix = "interrupted; resume with: "
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && strings.HasPrefix(line.Msg, prefix) {
			return strings.TrimPrefix(line.Msg, prefix)
		}
	}
	t.Fatalf("no resume hint in the logs:\n%s", logs)
	return ""
}

// shellWords splits a command as a POSIX shell would, for the quoting
// resumeCommand uses (single quotes).
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	in, quoted, escaped := false, false, false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, in = true, true
		case r == '\\':
			escaped, in = true, true
		case r == ' ':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quoted || escaped {
		t.Fatalf("unterminated quoting in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}
