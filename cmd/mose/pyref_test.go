package main

import (
	"os"
	"os/exec"
	"testing"
)

// runPython runs a repo script with the reference python; it returns the exit
// code and the combined output.
func runPython(t *testing.T, py string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(py, args...)
	cmd.Env = append(os.Environ(), "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "OMP_NUM_THREADS=1")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}
