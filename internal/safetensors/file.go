package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/mose-llm/mose/internal/fsutil"
)

// TensorInfo describes one tensor of a safetensors file.
type TensorInfo struct {
	Name   string
	DType  DType
	Shape  []int64
	Offset int64  // absolute byte offset of the tensor's data in the file
	Size   int64  // byte length of the tensor's data
	Path   string // file holding the tensor
}

// NumElements returns the number of elements of the tensor.
func (t TensorInfo) NumElements() int64 {
	if s := t.DType.Size(); s > 0 {
		return t.Size / int64(s)
	}
	return 0
}

// readerAtCloser is the part of *os.File a File needs.
type readerAtCloser interface {
	io.ReaderAt
	io.Closer
}

// File is an open safetensors file whose header has been parsed and
// validated. Tensor data is read on demand with ReadAt, so only the tensors
// asked for are ever in memory. A File is safe for concurrent use.
type File struct {
	path      string
	r         readerAtCloser
	h         *header
	dataStart int64 // absolute offset of the data buffer
}

// Open opens the safetensors file at path and validates its header: header
// length, JSON structure, dtypes, shapes against byte lengths, unique names,
// and data offsets that cover the data buffer exactly, which must end at the
// end of the file. No tensor data is read. The file stays open until Close.
func Open(path string) (*File, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, fileErr(path, stripPath(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fileErr(path, stripPath(err))
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fileErr(path, fmt.Errorf("not a regular file (%s)", st.Mode().Type()))
	}
	sf, err := newFile(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	return sf, nil
}

// newFile reads and validates the header of r, which holds size bytes.
func newFile(path string, r readerAtCloser, size int64) (*File, error) {
	if size < 8 {
		return nil, fileErr(path, fmt.Errorf("%w: file is %d bytes, shorter than the 8-byte header length", ErrTruncated, size))
	}
	var prefix [8]byte
	if err := readFull(r, prefix[:], 0); err != nil {
		return nil, fileErr(path, err)
	}
	n, err := headerLength(path, binary.LittleEndian.Uint64(prefix[:]), size)
	if err != nil {
		return nil, err
	}
	hb := make([]byte, n)
	if err := readFull(r, hb, 8); err != nil {
		return nil, fileErr(path, err)
	}
	h, err := parseHeader(path, hb)
	if err != nil {
		return nil, err
	}
	dataStart := 8 + n
	avail := size - dataStart
	if h.dataSize > avail {
		for _, i := range h.layoutOrder() {
			if e := &h.entries[i]; e.end > avail {
				return nil, tensorErr(path, e.name, fmt.Errorf("%w: data_offsets [%d, %d] end past the %d bytes of data in the file (truncated file or lying offsets)",
					ErrTruncated, e.begin, e.end, avail))
			}
		}
	}
	if h.dataSize < avail {
		return nil, fileErr(path, fmt.Errorf("%w: the last %d bytes of the file belong to no tensor (tensors cover %d of %d data bytes)",
			ErrOffsets, avail-h.dataSize, h.dataSize, avail))
	}
	return &File{path: path, r: r, h: h, dataStart: dataStart}, nil
}

// readFull reads len(p) bytes at off, reporting a short read as ErrTruncated.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: short read at offset %d: got %d of %d bytes", ErrTruncated, off, n, len(p))
	}
	return stripPath(err)
}

// stripPath removes the *fs.PathError wrapper (our errors name the path
// already) while keeping the operation and cause.
func stripPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Len returns the number of tensors.
func (f *File) Len() int { return len(f.h.entries) }

// Names returns the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, len(f.h.entries))
	for i, e := range f.h.entries {
		names[i] = e.name
	}
	return names
}

// Tensors returns every tensor's description in the order of their data in
// the file, which is the fastest order to read them in.
func (f *File) Tensors() []TensorInfo {
	order := f.h.layoutOrder()
	out := make([]TensorInfo, len(order))
	for k, i := range order {
		out[k] = f.info(&f.h.entries[i])
	}
	return out
}

// Metadata returns a copy of the header's "__metadata__" map (nil if absent).
func (f *File) Metadata() map[string]string {
	if f.h.metadata == nil {
		return nil
	}
	md := make(map[string]string, len(f.h.metadata))
	for k, v := range f.h.metadata {
		md[k] = v
	}
	return md
}

// Info describes the named tensor; it fails with ErrNotFound if there is no
// such tensor.
func (f *File) Info(name string) (TensorInfo, error) {
	e, err := f.lookup(name)
	if err != nil {
		return TensorInfo{}, err
	}
	return f.info(e), nil
}

func (f *File) lookup(name string) (*entry, error) {
	i, ok := f.h.byName[name]
	if !ok {
		return nil, tensorErr(f.path, name, ErrNotFound)
	}
	return &f.h.entries[i], nil
}

func (f *File) info(e *entry) TensorInfo {
	return TensorInfo{
		Name:   e.name,
		DType:  e.dtype,
		Shape:  append([]int64{}, e.shape...),
		Offset: f.dataStart + e.begin,
		Size:   e.end - e.begin,
		Path:   f.path,
	}
}

// ReadInto reads the named tensor's bytes into dst, whose length must be
// exactly the tensor's byte size (ErrSize otherwise).
func (f *File) ReadInto(name string, dst []byte) error {
	e, err := f.lookup(name)
	if err != nil {
		return err
	}
	if size := e.end - e.begin; int64(len(dst)) != size {
		return tensorErr(f.path, name, fmt.Errorf("%w: destination holds %d bytes, tensor has %d", ErrSize, len(dst), size))
	}
	if err := readFull(f.r, dst, f.dataStart+e.begin); err != nil {
		return tensorErr(f.path, name, err)
	}
	return nil
}

// Read returns a newly allocated copy of the named tensor's bytes.
func (f *File) Read(name string) ([]byte, error) {
	e, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, e.end-e.begin)
	if err := f.ReadInto(name, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// Section returns a reader over the named tensor's bytes, for copying a large
// tensor in chunks.
func (f *File) Section(name string) (*io.SectionReader, error) {
	e, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(f.r, f.dataStart+e.begin, e.end-e.begin), nil
}

// Close closes the underlying file.
func (f *File) Close() error {
	if err := f.r.Close(); err != nil {
		return fileErr(f.path, stripPath(err))
	}
	return nil
}
