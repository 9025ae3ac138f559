package safetensors

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"unicode/utf8"
)

// TensorSpec declares a tensor to be written: its name, dtype and shape.
type TensorSpec struct {
	Name  string
	DType DType
	Shape []int64
}

// Tensor is a tensor with its little-endian, C-order bytes, for WriteFile.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  []byte
}

// Spec returns the declaration of t.
func (t Tensor) Spec() TensorSpec { return TensorSpec{Name: t.Name, DType: t.DType, Shape: t.Shape} }

// SortSpecs sorts specs the way the reference writer orders data: by
// descending dtype (larger elements first), then by name. This keeps every
// tensor's data aligned to its element size. Writers lay data out in
// declared order, so callers who want aligned data sort with SortSpecs first.
func SortSpecs(specs []TensorSpec) {
	slices.SortStableFunc(specs, func(a, b TensorSpec) int {
		if c := cmp.Compare(dtypeRanks[b.DType], dtypeRanks[a.DType]); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
}

// writer states.
const (
	stateOpen     = iota // accepting data
	stateFinished        // data synced and file closed, not yet renamed
	stateDone            // renamed into place, or aborted
)

// Writer streams one safetensors file. All tensors are declared when it is
// created and the header is written first; the data then follows in declared
// order, through Write (any chunking) or WriteTensor (one whole tensor).
//
// The file is built under a temporary name in the destination directory and
// only Close renames it into place, after checking that exactly the declared
// number of bytes was written and syncing it. Any error poisons the Writer:
// Close then removes the temporary file and returns the error. Callers should
// defer Abort, which is a no-op after a successful Close.
type Writer struct {
	path    string
	tmp     string
	f       *os.File
	bw      *bufio.Writer
	entries []entry // declared (= data) order
	byName  map[string]int
	total   int64
	written int64
	err     error
	state   int
}

// Create starts writing a safetensors file at path holding specs, in that
// data order, with the given "__metadata__" (omitted when empty). It writes
// the header to a temporary file and fails if a spec is invalid: empty,
// duplicate or reserved name, unsupported dtype, or invalid shape.
func Create(path string, specs []TensorSpec, metadata map[string]string) (*Writer, error) {
	entries, total, err := layout(path, specs)
	if err != nil {
		return nil, err
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fileErr(path, fmt.Errorf("%w: metadata %q is not valid UTF-8", ErrInvalidHeader, k))
		}
	}
	hdr, err := encodeHeader(entries, metadata)
	if err != nil {
		return nil, fileErr(path, err)
	}
	f, err := createTemp(path)
	if err != nil {
		return nil, fileErr(path, stripPath(err))
	}
	w := &Writer{
		path: path, tmp: f.Name(), f: f,
		bw:      bufio.NewWriterSize(f, 1<<20),
		entries: entries, byName: make(map[string]int, len(entries)),
		total: total,
	}
	for i, e := range entries {
		w.byName[e.name] = i
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(hdr)))
	if _, err := w.bw.Write(prefix[:]); err != nil {
		return nil, w.fail(stripPath(err))
	}
	if _, err := w.bw.Write(hdr); err != nil {
		return nil, w.fail(stripPath(err))
	}
	return w, nil
}

// layout validates specs and assigns them consecutive data offsets.
func layout(path string, specs []TensorSpec) ([]entry, int64, error) {
	entries := make([]entry, len(specs))
	seen := make(map[string]bool, len(specs))
	var off int64
	for i, s := range specs {
		switch {
		case s.Name == "":
			return nil, 0, fileErr(path, fmt.Errorf("%w: tensor %d has an empty name", ErrInvalidHeader, i))
		case s.Name == metadataKey:
			return nil, 0, tensorErr(path, s.Name, fmt.Errorf("%w: reserved name", ErrInvalidHeader))
		case !utf8.ValidString(s.Name):
			return nil, 0, tensorErr(path, s.Name, fmt.Errorf("%w: name is not valid UTF-8", ErrInvalidHeader))
		case seen[s.Name]:
			return nil, 0, tensorErr(path, s.Name, fmt.Errorf("%w: tensor declared twice", ErrDuplicate))
		}
		seen[s.Name] = true
		size, err := ByteSize(s.DType, s.Shape)
		if err != nil {
			return nil, 0, tensorErr(path, s.Name, err)
		}
		if off+size < off {
			return nil, 0, tensorErr(path, s.Name, fmt.Errorf("%w: total data size overflows int64", ErrShape))
		}
		entries[i] = entry{name: s.Name, dtype: s.DType, shape: append([]int64{}, s.Shape...), begin: off, end: off + size}
		off += size
	}
	return entries, off, nil
}

// fail poisons the writer with err (wrapped as an *Error about the file
// unless it already is one), removes the temporary file and returns the
// error.
func (w *Writer) fail(err error) error {
	var se *Error
	if !errors.As(err, &se) {
		err = fileErr(w.path, err)
	}
	if w.err == nil {
		w.err = err
	}
	w.Abort()
	return w.err
}

// Write appends p to the data buffer. Writing past the declared total is an
// ErrSize error.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.state != stateOpen {
		return 0, fileErr(w.path, ErrClosed)
	}
	if rest := w.total - w.written; int64(len(p)) > rest {
		return 0, w.fail(fmt.Errorf("%w: write of %d bytes exceeds the declared data by %d bytes", ErrSize, len(p), int64(len(p))-rest))
	}
	n, err := w.bw.Write(p)
	w.written += int64(n)
	if err != nil {
		return n, w.fail(stripPath(err))
	}
	return n, nil
}

// WriteTensor writes the whole data of the named tensor, which must be the
// next tensor in declared order (ErrOrder) and have exactly its declared
// byte length (ErrSize). Zero-size tensors need no call.
func (w *Writer) WriteTensor(name string, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.state != stateOpen {
		return fileErr(w.path, ErrClosed)
	}
	i, ok := w.byName[name]
	if !ok {
		return w.fail(tensorErr(w.path, name, fmt.Errorf("%w: not declared", ErrNotFound)))
	}
	e := &w.entries[i]
	if size := e.end - e.begin; int64(len(data)) != size {
		return w.fail(tensorErr(w.path, name, fmt.Errorf("%w: got %d bytes, %s%v needs %d", ErrSize, len(data), e.dtype, e.shape, size)))
	}
	if e.end == e.begin {
		return nil
	}
	if e.begin != w.written {
		return w.fail(tensorErr(w.path, name, fmt.Errorf("%w: its data starts at byte %d but the writer is at byte %d (expected tensor %q)",
			ErrOrder, e.begin, w.written, w.current())))
	}
	_, err := w.Write(data)
	return err
}

// current returns the name of the tensor the next data byte belongs to.
func (w *Writer) current() string {
	for _, e := range w.entries {
		if e.end > w.written {
			return e.name
		}
	}
	return ""
}

// complete reports whether all declared data has been written.
func (w *Writer) complete() bool { return w.written == w.total }

// finish checks that all data was written, then flushes, syncs and closes
// the temporary file.
func (w *Writer) finish() error {
	if w.err != nil {
		return w.err
	}
	if w.state != stateOpen {
		return fileErr(w.path, ErrClosed)
	}
	if !w.complete() {
		return w.fail(tensorErr(w.path, w.current(), fmt.Errorf("%w: only %d of %d data bytes were written", ErrSize, w.written, w.total)))
	}
	if err := w.bw.Flush(); err != nil {
		return w.fail(stripPath(err))
	}
	if err := w.f.Chmod(filePerm); err != nil {
		return w.fail(stripPath(err))
	}
	if err := w.f.Sync(); err != nil {
		return w.fail(stripPath(err))
	}
	if err := w.f.Close(); err != nil {
		return w.fail(stripPath(err))
	}
	w.state = stateFinished
	return nil
}

// commit renames the finished temporary file into place.
func (w *Writer) commit() error {
	if w.state != stateFinished {
		return fileErr(w.path, ErrClosed)
	}
	if err := os.Rename(w.tmp, w.path); err != nil {
		return w.fail(stripPath(err))
	}
	w.state = stateDone
	return nil
}

// Close completes the file: it checks that every declared byte was written,
// syncs the temporary file, renames it to the destination and syncs the
// directory. On any error the temporary file is removed and nothing is left
// at the destination.
func (w *Writer) Close() error {
	if err := w.finish(); err != nil {
		return err
	}
	if err := w.commit(); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(w.path)); err != nil {
		return fileErr(w.path, stripPath(err))
	}
	return nil
}

// Abort discards the file being written: the temporary file is closed and
// removed. It is a no-op once the file has been renamed into place or
// discarded, so it is safe to defer.
func (w *Writer) Abort() error {
	switch w.state {
	case stateDone:
		return nil
	case stateOpen:
		w.f.Close()
	}
	w.state = stateDone
	if w.err == nil {
		w.err = fileErr(w.path, ErrClosed)
	}
	if err := removeIfExists(w.tmp); err != nil {
		return fileErr(w.path, stripPath(err))
	}
	return nil
}

// WriteFile atomically writes tensors and metadata to a safetensors file at
// path. Data is laid out in SortSpecs order, so each tensor is aligned.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	return writeSorted(tensors, func(specs []TensorSpec) (tensorWriter, error) { return Create(path, specs, metadata) })
}

// tensorWriter is what Writer and ShardedWriter share for writeSorted.
type tensorWriter interface {
	WriteTensor(name string, data []byte) error
	Close() error
	Abort() error
}

// writeSorted lays tensors out in SortSpecs order through the writer create
// makes for their specs, aborting it on any error.
func writeSorted(tensors []Tensor, create func([]TensorSpec) (tensorWriter, error)) error {
	specs := make([]TensorSpec, len(tensors))
	byName := make(map[string]*Tensor, len(tensors))
	for i := range tensors {
		specs[i] = tensors[i].Spec()
		byName[tensors[i].Name] = &tensors[i]
	}
	SortSpecs(specs)
	w, err := create(specs)
	if err != nil {
		return err
	}
	defer w.Abort()
	for _, s := range specs {
		if err := w.WriteTensor(s.Name, byName[s.Name].Data); err != nil {
			return err
		}
	}
	return w.Close()
}
