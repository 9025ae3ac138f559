package inputerr

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"
)

func TestClassify(t *testing.T) {
	bad := New("bad thing")
	cases := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, None},
		{"sentinel", bad, Input},
		{"wrapped sentinel", fmt.Errorf("data: %w", fmt.Errorf("x.npy: %w", bad)), Input},
		{"joined", errors.Join(errors.New("a"), bad), Input},
		{"marked", Mark(errors.New("plain")), Input},
		{"missing file", &fs.PathError{Op: "open", Path: "x", Err: syscall.ENOENT}, Input},
		{"not a dir", fmt.Errorf("mkdir: %w", &fs.PathError{Op: "mkdir", Path: "x", Err: syscall.ENOTDIR}), Input},
		{"rename", &os.LinkError{Op: "rename", Old: "a", New: "b", Err: syscall.EACCES}, Input},
		{"disk full", &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, Machine},
		{"disk full in a bad-input wrap", fmt.Errorf("%w: %w", bad, &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), Machine},
		{"oom", fmt.Errorf("alloc: %w", syscall.ENOMEM), Machine},
		{"other", errors.New("libtorch: something"), Other},
		{"bare errno without a path", syscall.ENOENT, Other},
	}
	for _, c := range cases {
		if got := Classify(c.err); got != c.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
	if !errors.Is(bad, bad) || errors.Is(New("bad thing"), bad) {
		t.Error("sentinels must be distinct values")
	}
	if Mark(errors.New("m")).Error() != "m" {
		t.Error("Mark changed the message")
	}
}
