//go:build linux

package data_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// dropCache asks the kernel to drop every file under dir from the page cache
// (POSIX_FADV_DONTNEED), so the next read comes from disk.
func dropCache(b *testing.B, dir string) {
	const fadvDontNeed = 4
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0)
		if errno != 0 {
			return errno
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
