package data

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// Root is a data root: the directory manifest feature paths are relative to.
// Resolved paths never leave it, symlinks included.
type Root struct {
	dir string // absolute, symlinks resolved
}

// NewRoot resolves dir (which must exist) to its real absolute path.
func NewRoot(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("data root %s: %w", dir, ErrMissingFile)
		}
		return nil, fmt.Errorf("data root %s: %w", dir, err)
	}
	return &Root{dir: real}, nil
}

// Dir is the resolved root directory.
func (r *Root) Dir() string { return r.dir }

// Resolve maps a manifest path (relative, forward slashes) to the real path
// of an existing file inside the root. It fails with ErrEscapesRoot for
// absolute paths, ".." components that leave the root, and symlinks that
// point outside it, and with ErrMissingFile if the file does not exist.
func (r *Root) Resolve(rel string) (string, error) {
	if rel == "" {
		return "", fmt.Errorf("%w: empty path", ErrMissingField)
	}
	native := filepath.FromSlash(rel)
	if filepath.IsAbs(native) || strings.HasPrefix(rel, "/") || !filepath.IsLocal(native) {
		return "", fmt.Errorf("%w: %q", ErrEscapesRoot, rel)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(r.dir, native))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: %s", ErrMissingFile, rel)
		}
		return "", err
	}
	if !r.contains(real) {
		return "", fmt.Errorf("%w: %q resolves to %s", ErrEscapesRoot, rel, real)
	}
	return real, nil
}

// Rel returns path (which must lie inside the root once symlinks are
// resolved) relative to the root with forward slashes, for writing manifests.
func (r *Root) Rel(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: %s", ErrMissingFile, path)
		}
		return "", err
	}
	if !r.contains(real) {
		return "", fmt.Errorf("%w: %s is outside %s", ErrEscapesRoot, path, r.dir)
	}
	rel, err := filepath.Rel(r.dir, real)
	if err != nil {
		return "", err
	}
	return filepath.ToSlash(rel), nil
}

func (r *Root) contains(real string) bool {
	rel, err := filepath.Rel(r.dir, real)
	return err == nil && filepath.IsLocal(rel)
}
