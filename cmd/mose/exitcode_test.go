package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/strictjson"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/recipes"
)

// The exit code follows the cause, not the call site: a bad sample met by
// the loader mid-training (wrapped as "data: ...") is still bad input.
func TestExitCodeByCause(t *testing.T) {
	sample := &data.SampleError{File: "train.jsonl", Line: 7, ID: "x", Path: "f.npy", Err: fmt.Errorf("%w: NaN at element 3", data.ErrNonFinite)}
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"loader error mid-training", fmt.Errorf("data: %w", sample), 2},
		{"eval loader error", fmt.Errorf("eval: %w", fmt.Errorf("data: %w", sample)), 2},
		{"safetensors header", fmt.Errorf("loading: %w", &safetensors.Error{Path: "m.safetensors", Err: safetensors.ErrInvalidHeader}), 2},
		{"model config", fmt.Errorf("%w: hidden_size", model.ErrConfig), 2},
		{"repeated key", &strictjson.Error{File: "c.json", Line: 2, Key: "k", Err: strictjson.ErrDuplicateKey}, 2},
		{"fifo", &fs.PathError{Op: "open", Path: "p", Err: fsutil.ErrNotRegular}, 2},
		{"mkdir under a file", &fs.PathError{Op: "mkdir", Path: "f/run", Err: syscall.ENOTDIR}, 2},
		{"rename denied", &os.LinkError{Op: "rename", Old: "a", New: "b", Err: syscall.EACCES}, 2},
		{"recipe", fmt.Errorf("%w: x", recipes.ErrRecipe), 2},
		{"disk full", fmt.Errorf("checkpoint: %w", &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), 1},
		{"disk full while exporting (inside a recipe wrap)", fmt.Errorf("%w: %w", recipes.ErrRecipe, &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), 1},
		{"out of memory", fmt.Errorf("alloc: %w", syscall.ENOMEM), 1},
		{"libtorch", errors.New("torch: CUDA error: an illegal memory access"), 1},
	}
	stderr := os.Stderr
	os.Stderr, _ = os.Open(os.DevNull)
	defer func() { os.Stderr = stderr }()
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("%s: exit %d, want %d (%v)", c.name, got, c.want, c.err)
		}
	}
}
