package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// refPython returns the reference venv's python (scripts/setup/pyenv.sh), or skips
// the test when that venv has not been built: Go tests never build it.
// MOSE_REF_PYTHON names another python with the same packages.
func refPython(t *testing.T) string {
	t.Helper()
	if py := os.Getenv("MOSE_REF_PYTHON"); py != "" {
		return py
	}
	cache := os.Getenv("MOSE_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "mose")
	}
	py := filepath.Join(cache, "venv", "bin", "python")
	if _, err := os.Stat(filepath.Join(cache, "venv", ".mose-requirements.sha256")); err != nil {
		t.Skipf("no reference venv (run scripts/setup/pyenv.sh): %v", err)
	}
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no reference venv python: %v", err)
	}
	return py
}

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
