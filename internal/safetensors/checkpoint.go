package safetensors

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mose-llm/mose/internal/fsutil"
)

// Checkpoint is one view over the tensors of a single safetensors file or of
// the shards of a sharded checkpoint. Every shard stays open until Close;
// tensor data is read on demand. A Checkpoint is safe for concurrent use.
type Checkpoint struct {
	path  string           // what it was opened from
	files []*File          // shards, sorted by name
	where map[string]*File // tensor name → file holding it
	names []string         // sorted
}

// OpenCheckpoint opens path as a checkpoint: a directory (see OpenDir), an
// index file ending in ".json" (see OpenIndex), or a single safetensors file.
func OpenCheckpoint(path string) (*Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fileErr(path, stripPath(err))
	}
	switch {
	case st.IsDir():
		return OpenDir(path)
	case strings.HasSuffix(path, ".json"):
		return OpenIndex(path)
	}
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	return newCheckpoint(path, []*File{f})
}

// OpenDir opens the model checkpoint in directory dir: model.safetensors if
// present, otherwise the shards listed by model.safetensors.index.json (the
// order of preference of transformers). Neither being present is an error
// wrapping fs.ErrNotExist.
func OpenDir(dir string) (*Checkpoint, error) {
	single := filepath.Join(dir, SingleFileName(DefaultPrefix))
	if _, err := os.Stat(single); err == nil {
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		return newCheckpoint(dir, []*File{f})
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fileErr(single, stripPath(err))
	}
	idx := filepath.Join(dir, IndexFileName(DefaultPrefix))
	if _, err := os.Stat(idx); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fileErr(dir, fmt.Errorf("no %s or %s: %w",
				SingleFileName(DefaultPrefix), IndexFileName(DefaultPrefix), fs.ErrNotExist))
		}
		return nil, fileErr(idx, stripPath(err))
	}
	return OpenIndex(idx)
}

// OpenDirWith opens the checkpoint in dir (see OpenDir) together with those
// of the extra safetensors files (names relative to dir) that exist: tensors
// kept out of the index on purpose, such as a merged export's projectors. A
// tensor held by two files is an error (ErrDuplicate).
func OpenDirWith(dir string, extra ...string) (*Checkpoint, error) {
	c, err := OpenDir(dir)
	if err != nil {
		return nil, err
	}
	files := c.files
	for _, name := range extra {
		path := filepath.Join(dir, name)
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		f, err := Open(path)
		if err != nil {
			c.Close()
			for _, g := range files[len(c.files):] {
				g.Close()
			}
			return nil, err
		}
		files = append(files, f)
	}
	if len(files) == len(c.files) {
		return c, nil
	}
	all, err := newCheckpoint(c.path, files)
	if err != nil {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	return all, nil
}

// OpenIndex opens the sharded checkpoint described by the index file at path
// (model.safetensors.index.json layout); shard names are resolved relative to
// the index's directory. It fails on a shard name that is absolute or
// escapes that directory (ErrUnsafePath), a shard that does not exist
// (ErrMissingShard), a tensor the index assigns to a shard that does not
// hold it (ErrInvalidIndex), or a tensor held by two shards (ErrDuplicate).
// Tensors a shard holds but the index omits are part of the view.
func OpenIndex(path string) (*Checkpoint, error) {
	b, err := readIndexFile(path)
	if err != nil {
		return nil, err
	}
	idx, err := parseIndex(path, b)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	files := make([]*File, 0, len(idx.shards))
	byShard := make(map[string]*File, len(idx.shards))
	fail := func(err error) (*Checkpoint, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	for _, shard := range idx.shards {
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				cause := err
				var se *Error
				if errors.As(err, &se) {
					cause = se.Err
				}
				err = fileErr(path, fmt.Errorf("%w: %q, listed in the index: %w", ErrMissingShard, shard, cause))
			}
			return fail(err)
		}
		files = append(files, f)
		byShard[shard] = f
	}
	c, err := newCheckpoint(path, files)
	if err != nil {
		return fail(err)
	}
	names := make([]string, 0, len(idx.weightMap))
	for name := range idx.weightMap {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		shard := idx.weightMap[name]
		if got := c.where[name]; got != byShard[shard] {
			msg := fmt.Sprintf("the index assigns it to shard %q, which does not hold it", shard)
			if got != nil {
				msg += fmt.Sprintf(" (it is in %q)", got.Path())
			}
			return fail(tensorErr(path, name, fmt.Errorf("%w: %s", ErrInvalidIndex, msg)))
		}
	}
	return c, nil
}

// readIndexFile reads an index file, refusing one larger than maxIndexSize.
func readIndexFile(path string) ([]byte, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, fileErr(path, stripPath(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxIndexSize+1))
	if err != nil {
		return nil, fileErr(path, stripPath(err))
	}
	if len(b) > maxIndexSize {
		return nil, fileErr(path, fmt.Errorf("%w: index file larger than %d bytes", ErrInvalidIndex, maxIndexSize))
	}
	return b, nil
}

// newCheckpoint builds the view over files, which it takes ownership of:
// it fails with ErrDuplicate if two files hold the same tensor name.
func newCheckpoint(path string, files []*File) (*Checkpoint, error) {
	c := &Checkpoint{path: path, files: files, where: make(map[string]*File)}
	for _, f := range files {
		for _, name := range f.Names() {
			if other, dup := c.where[name]; dup {
				return nil, tensorErr(path, name, fmt.Errorf("%w: tensor is in both %q and %q", ErrDuplicate, other.Path(), f.Path()))
			}
			c.where[name] = f
			c.names = append(c.names, name)
		}
	}
	slices.Sort(c.names)
	return c, nil
}

// Path returns the directory, index or file the checkpoint was opened from.
func (c *Checkpoint) Path() string { return c.path }

// Files returns the open files of the checkpoint, sorted by path. They are
// owned by the Checkpoint: do not close them.
func (c *Checkpoint) Files() []*File { return append([]*File{}, c.files...) }

// Len returns the number of tensors.
func (c *Checkpoint) Len() int { return len(c.names) }

// Names returns every tensor name, sorted.
func (c *Checkpoint) Names() []string { return append([]string{}, c.names...) }

// Tensors returns every tensor's description, file by file, each file in
// data order: the fastest order to read them in.
func (c *Checkpoint) Tensors() []TensorInfo {
	out := make([]TensorInfo, 0, len(c.names))
	for _, f := range c.files {
		out = append(out, f.Tensors()...)
	}
	return out
}

// TotalSize returns the number of tensor data bytes over all files.
func (c *Checkpoint) TotalSize() int64 {
	var n int64
	for _, f := range c.files {
		n += f.h.dataSize
	}
	return n
}

// file returns the file holding the named tensor.
func (c *Checkpoint) file(name string) (*File, error) {
	f, ok := c.where[name]
	if !ok {
		return nil, tensorErr(c.path, name, ErrNotFound)
	}
	return f, nil
}

// Info describes the named tensor (ErrNotFound if absent); its Path is the
// file holding it.
func (c *Checkpoint) Info(name string) (TensorInfo, error) {
	f, err := c.file(name)
	if err != nil {
		return TensorInfo{}, err
	}
	return f.Info(name)
}

// ReadInto reads the named tensor's bytes into dst, whose length must be the
// tensor's byte size.
func (c *Checkpoint) ReadInto(name string, dst []byte) error {
	f, err := c.file(name)
	if err != nil {
		return err
	}
	return f.ReadInto(name, dst)
}

// Read returns a newly allocated copy of the named tensor's bytes.
func (c *Checkpoint) Read(name string) ([]byte, error) {
	f, err := c.file(name)
	if err != nil {
		return nil, err
	}
	return f.Read(name)
}

// Section returns a reader over the named tensor's bytes.
func (c *Checkpoint) Section(name string) (*io.SectionReader, error) {
	f, err := c.file(name)
	if err != nil {
		return nil, err
	}
	return f.Section(name)
}

// Close closes every file and returns the first error.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
