package recipes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// minimal is the smallest valid recipe: the two required keys.
const minimal = `model:
  path: m
data:
  train: d/train.jsonl
`

// cleanEnv removes recipe variables inherited from the environment for the
// duration of the test (t.Setenv restores them afterwards).
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if isRecipeEnv(name) {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// writeRecipe writes body to dir/name and returns its path.
func writeRecipe(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// keyErrors flattens an error returned by Load or Validate.
func keyErrors(err error) []*KeyError {
	var out []*KeyError
	var walk func(error)
	walk = func(e error) {
		if ke, ok := e.(*KeyError); ok {
			out = append(out, ke)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

func mustLoad(t *testing.T, path string, sets ...string) *Config {
	t.Helper()
	c, err := Load(path, sets)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return c
}

func isRecipeErr(err error) bool { return errors.Is(err, ErrRecipe) }
