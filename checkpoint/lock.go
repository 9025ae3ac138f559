package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/mose-llm/mose/recipes"
)

// lockFile is the run directory's lock: `mose train` holds an exclusive
// flock(2) on it while it runs. The kernel drops the lock when the process
// exits, however it exits (kill -9 included), so a stale file never blocks a
// later run. It holds the PID of the process that took it last.
const lockFile = ".lock"

// RunLock is a held run-directory lock.
type RunLock struct{ f *os.File }

// Lock takes the lock of run directory dir without waiting. When create
// is false and the lock file does not exist yet it returns (nil, nil): the
// caller takes it later with create (so that refused runs write nothing
// into dir). A held lock is ErrBusy naming the holder's PID.
func Lock(dir string, create bool) (*RunLock, error) {
	path := filepath.Join(dir, lockFile)
	flags := os.O_RDWR
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST) {
				return nil, fmt.Errorf("%w: run.output_dir %s is not a directory", recipes.ErrRecipe, dir)
			}
			return nil, err
		}
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrNotExist) && !create {
		return nil, nil
	}
	if errors.Is(err, syscall.ENOTDIR) {
		return nil, fmt.Errorf("%w: run.output_dir %s is not a directory", recipes.ErrRecipe, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another process"
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b[:n]))); perr == nil {
				holder = fmt.Sprintf("another mose train (PID %d)", pid)
			}
			return nil, fmt.Errorf("%w: %s is being trained by %s (it holds %s); wait for it to end, or use another run.output_dir", ErrBusy, dir, holder, path)
		}
		return nil, fmt.Errorf("run lock: %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &RunLock{f: f}, nil
}

// Close releases the lock. The file stays, emptied of the PID, so a run that
// ends (refused or finished) leaves the run directory's bytes as it found them;
// after a kill -9 the stale PID is harmless (the kernel dropped the lock).
func (l *RunLock) Close() error {
	if l == nil {
		return nil
	}
	l.f.Truncate(0)
	return l.f.Close()
}
