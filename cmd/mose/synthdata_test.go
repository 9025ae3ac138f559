package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runDataCmd runs mose with args and returns its stdout and exit code.
func runDataCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"--log-level", "error"}, args...))
	err := root.ExecuteContext(context.Background())
	if err != nil {
		t.Logf("mose %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), exitCode(err)
}

func TestSynthData(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "synth")
	out, code := runDataCmd(t, "synth-data", "--out", dir, "--samples", "30", "--seed", "3")
	if code != 0 || !strings.Contains(out, "wrote 30 train and 7 eval samples") {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, f := range []string{"train.jsonl", "eval.jsonl", "synth.json", "features/frames/train-00029.npy", "features/audio/eval-00006.npy"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	// A second run into the same directory is refused without --force.
	if _, code := runDataCmd(t, "synth-data", "--out", dir, "--samples", "30"); code != 2 {
		t.Fatalf("overwrite without --force: exit %d", code)
	}
	if _, code := runDataCmd(t, "synth-data", "--out", dir, "--samples", "30", "--force"); code != 0 {
		t.Fatalf("--force: exit %d", code)
	}
	for _, args := range [][]string{
		{"synth-data"},
		{"synth-data", "--out", dir + "2", "--preset", "huge"},
		{"synth-data", "--out", dir + "3", "--samples", "1", "--eval-samples", "1"},
		{"synth-data", "--out", dir + "4", "--noise", "-1"},
		{"synth-data", "--out", dir + "5", "--samples", "many"},
	} {
		if _, code := runDataCmd(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
