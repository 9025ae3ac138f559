package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mose-llm/mose/internal/inputerr"
)

func TestReadRegularRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no mkfifo:", err)
	}
	reg := filepath.Join(dir, "ok.json")
	os.WriteFile(reg, []byte("{}"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(fifo, link)
	cases := []struct {
		path string
		want string
	}{{fifo, "named pipe"}, {link, "named pipe"}, {dir, "directory"}, {"/dev/null", "character device"}}
	for _, c := range cases {
		done := make(chan error, 1)
		go func() { _, err := ReadRegular(c.path); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: got %v", c.path, err)
			}
			if inputerr.Classify(err) != inputerr.Input {
				t.Errorf("%s: not classified as bad input", c.path)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: ReadRegular hangs", c.path)
		}
	}
	if b, err := ReadRegular(reg); err != nil || string(b) != "{}" {
		t.Fatalf("regular file: %q %v", b, err)
	}
	if _, err := ReadRegularLimit(reg, 1); err == nil || !strings.Contains(err.Error(), reg) {
		t.Fatalf("limit: %v", err)
	}
	// A FIFO swapped in after the stat is still refused by the check on the open file.
	f, err := openNoBlock(fifo)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}
