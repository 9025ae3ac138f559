package data

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRootResolve(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside.npy")
	for _, p := range []string{filepath.Join(root, "a", "f.npy"), outside} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustLink := func(target, link string) {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Skipf("symlinks unavailable: %v", err)
		}
	}
	mustLink(outside, "out.npy")
	mustLink(base, "up")
	mustLink(filepath.Join(root, "a", "f.npy"), "in.npy")
	mustLink("a", "alias")

	r, err := NewRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rel  string
		want error
	}{
		{"a/f.npy", nil},
		{"in.npy", nil},
		{"alias/f.npy", nil},
		{"a/../a/f.npy", nil},
		{"../outside.npy", ErrEscapesRoot},
		{"a/../../outside.npy", ErrEscapesRoot},
		{outside, ErrEscapesRoot},
		{"/etc/passwd", ErrEscapesRoot},
		{"out.npy", ErrEscapesRoot},
		{"up/outside.npy", ErrEscapesRoot},
		{"a/missing.npy", ErrMissingFile},
		{"", ErrMissingField},
	}
	for _, tc := range tests {
		t.Run(tc.rel, func(t *testing.T) {
			got, err := r.Resolve(tc.rel)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Resolve(%q) = %q, %v; want %v", tc.rel, got, err, tc.want)
			}
		})
	}
	if rel, err := r.Rel(filepath.Join(root, "a", "f.npy")); err != nil || rel != "a/f.npy" {
		t.Fatalf("Rel: %q %v", rel, err)
	}
	if _, err := r.Rel(outside); !errors.Is(err, ErrEscapesRoot) {
		t.Fatalf("Rel outside: %v", err)
	}
}
