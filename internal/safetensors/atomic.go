package safetensors

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/mose-llm/mose/internal/fsutil"
)

// filePerm is the mode of the files this package writes.
const filePerm = 0o644

// createTemp creates a hidden temporary file in the directory of path, so
// that it can later be renamed over path atomically.
func createTemp(path string) (*os.File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	return os.CreateTemp(dir, "."+base+".tmp-*")
}

// syncDir fsyncs a directory so that renames and removals in it are durable.
func syncDir(dir string) error { return fsutil.SyncDir(dir) }

// writeFileAtomic writes data to path through a synced temporary file that is
// renamed into place, then syncs the directory. On error nothing is left.
func writeFileAtomic(path string, data []byte) error { return fsutil.WriteBytes(path, data) }

// removeIfExists removes path, ignoring a missing file.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
