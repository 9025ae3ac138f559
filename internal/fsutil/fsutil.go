// Package fsutil holds mose's atomic file and directory writes: nothing is
// ever left half-written under its final name.
package fsutil

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile writes path atomically: write produces the content into a
// temporary file in the same directory, which is synced and renamed over path
// only if write succeeds. The directory is synced after the rename.
func WriteFile(path string, perm os.FileMode, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that renames and removals in it are durable.
// File systems that cannot sync a directory (EINVAL, ENOTSUP) are tolerated.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, os.ErrInvalid) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteBytes writes data to path atomically (see WriteFile) with mode 0644.
func WriteBytes(path string, data []byte) error {
	return WriteFile(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// ErrNotEmpty reports an existing, non-empty destination directory.
var ErrNotEmpty = errors.New("directory exists and is not empty")

// TempDir creates a temporary directory next to final (same file system, so a
// later rename is atomic).
func TempDir(final string) (string, error) {
	parent := filepath.Dir(filepath.Clean(final))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(parent, "."+filepath.Base(final)+".tmp-*")
}

// ReplaceDir moves the fully written directory tmp to final. If final exists
// it must be empty unless replace is true, in which case the old directory is
// moved aside first and removed only after the new one is in place.
func ReplaceDir(tmp, final string, replace bool) error {
	st, err := os.Stat(final)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.Rename(tmp, final); err != nil {
			return err
		}
		return SyncDir(filepath.Dir(final))
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s exists and is not a directory", final)
	}
	entries, err := os.ReadDir(final)
	if err != nil {
		return err
	}
	if len(entries) > 0 && !replace {
		return fmt.Errorf("%w: %s", ErrNotEmpty, final)
	}
	old := tmp + ".old"
	if err := os.Rename(final, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Rename(old, final)
		return err
	}
	if err := SyncDir(filepath.Dir(final)); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// WriteJSON writes v as indented JSON with a final newline to path,
// atomically (WriteBytes).
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return WriteBytes(path, append(b, '\n'))
}
