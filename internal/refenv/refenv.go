// Package refenv finds, for tests, what scripts/setup/pyenv.sh and
// scripts/setup/real_model.sh put in mose's cache: the Python reference
// environment (transformers, PEFT, tokenizers, TensorBoard on torch 2.11, CPU)
// and the converted SmolLM2-135M model. `make test` builds both; a test that
// needs one and does not find it skips, naming why (the package index could
// not be reached, or the command that builds it). It depends on the standard
// library only, so every package's tests can use it; internal/testfix.RefPython
// is the same lookup for the packages above the stack.
package refenv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PythonEnv is the environment variable that overrides the reference python:
// a path to an interpreter with the packages of scripts/setup/requirements-ref.txt.
const PythonEnv = "MOSE_REF_PYTHON"

// SmolLM2Env is the environment variable that overrides the converted SmolLM2 dir.
const SmolLM2Env = "MOSE_SMOLLM2_DIR"

// stampFile is written by scripts/setup/pyenv.sh when a venv is complete.
const stampFile = ".mose-venv-stamp"

// skipFile holds why scripts/setup/pyenv.sh could not build the venv.
const skipFile = "pyenv-skip.txt"

// Cache is mose's cache dir: $MOSE_CACHE, else ~/.cache/mose ("" when there is
// no home directory).
func Cache() string {
	if c := os.Getenv("MOSE_CACHE"); c != "" {
		return c
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "mose")
}

// NotBuilt says why the reference venv is not there: the reason
// scripts/setup/pyenv.sh recorded (the package index could not be reached), or
// the command that builds it.
func NotBuilt() string {
	if b, err := os.ReadFile(filepath.Join(Cache(), skipFile)); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return "scripts/setup/pyenv.sh could not build it: " + strings.TrimSpace(string(b))
	}
	return "make pyenv builds it (make test does)"
}

// Python returns the reference python: $MOSE_REF_PYTHON (the test fails when
// that is not an executable), else the venv scripts/setup/pyenv.sh built in the
// cache. Without either the test is skipped, naming why.
func Python(t testing.TB) string {
	t.Helper()
	if py := os.Getenv(PythonEnv); py != "" {
		if st, err := os.Stat(py); err != nil || st.IsDir() {
			t.Fatalf("%s=%s is not a python executable: %v", PythonEnv, py, err)
		}
		return py
	}
	cache := Cache()
	if cache == "" {
		t.Skip("no reference venv: no home directory to find mose's cache in (set MOSE_CACHE or " + PythonEnv + ")")
	}
	venv := filepath.Join(cache, "venv")
	py := filepath.Join(venv, "bin", "python")
	if _, err := os.Stat(filepath.Join(venv, stampFile)); err != nil {
		if _, old := os.Stat(filepath.Join(venv, ".mose-requirements.sha256")); old == nil {
			t.Skipf("the reference venv %s was built by an older scripts/setup/pyenv.sh (torch 2.1): make pyenv rebuilds it", venv)
		}
		t.Skipf("no reference venv at %s: %s", venv, NotBuilt())
	}
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no reference venv python: %v; %s", err, NotBuilt())
	}
	return py
}

// SmolLM2Dir returns the converted SmolLM2-135M-Instruct dir
// ($MOSE_SMOLLM2_DIR, else <cache>/models/smollm2-135m) that
// scripts/fixtures/fetch_smollm2.py writes; the test is skipped, naming why,
// when its mose-source.json (written last) is not there.
func SmolLM2Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(SmolLM2Env)
	if dir == "" {
		cache := Cache()
		if cache == "" {
			t.Skip("no SmolLM2 dir: no home directory to find mose's cache in (set MOSE_CACHE or " + SmolLM2Env + ")")
		}
		dir = filepath.Join(cache, "models", "smollm2-135m")
	}
	_, err := os.Stat(filepath.Join(dir, "mose-source.json"))
	if errors.Is(err, os.ErrNotExist) {
		why := "make test converts it once (scripts/setup/real_model.sh runs scripts/fixtures/fetch_smollm2.py in the reference venv)"
		if _, verr := os.Stat(filepath.Join(Cache(), "venv", stampFile)); verr != nil {
			why = "no reference venv to convert it with: " + NotBuilt()
		}
		t.Skipf("%s is not a converted SmolLM2 dir: %s", dir, why)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
