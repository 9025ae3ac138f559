package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.txt")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFile(p, 0o644, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Fatalf("failed write changed the file: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary file left: %v", entries)
	}
	if err := WriteFile(p, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Fatalf("got %q", b)
	}
}

func TestReplaceDir(t *testing.T) {
	base := t.TempDir()
	final := filepath.Join(base, "out")
	mk := func() string {
		tmp, err := TempDir(final)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, "f"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return tmp
	}
	if err := ReplaceDir(mk(), final, false); err != nil {
		t.Fatal(err)
	}
	tmp := mk()
	if err := ReplaceDir(tmp, final, false); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("got %v", err)
	}
	if err := ReplaceDir(tmp, final, true); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(base)
	if len(entries) != 1 || entries[0].Name() != "out" {
		t.Fatalf("left behind: %v", entries)
	}
}
