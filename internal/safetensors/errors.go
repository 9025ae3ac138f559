package safetensors

import (
	"errors"
	"strconv"

	"github.com/mose-llm/mose/internal/inputerr"
)

// Sentinel errors. Every error returned by this package for bad input wraps
// one of these (test with errors.Is), usually inside an [*Error] that names
// the file and tensor concerned.
var (
	// ErrHeaderTooLarge: the declared header length exceeds MaxHeaderSize.
	ErrHeaderTooLarge = inputerr.New("header too large")
	// ErrInvalidHeader: the header is not well-formed JSON or does not have
	// the structure of a safetensors header.
	ErrInvalidHeader = inputerr.New("invalid header")
	// ErrDtype: an unknown or unsupported dtype.
	ErrDtype = inputerr.New("unsupported dtype")
	// ErrShape: a shape is invalid (negative or overflowing dimensions), or
	// its element count times the dtype size differs from the byte length.
	ErrShape = inputerr.New("invalid shape")
	// ErrOffsets: data offsets are out of range, reversed, overlapping, or
	// leave holes in the data buffer.
	ErrOffsets = inputerr.New("invalid data offsets")
	// ErrDuplicate: a tensor name (or an index or metadata key) occurs twice.
	ErrDuplicate = inputerr.New("duplicate name")
	// ErrTruncated: the file is shorter than its header says.
	ErrTruncated = inputerr.New("file truncated")
	// ErrNotFound: no tensor with the requested name.
	ErrNotFound = inputerr.New("tensor not found")
	// ErrSize: a buffer or a write does not have the tensor's byte length.
	ErrSize = errors.New("size mismatch")
	// ErrOrder: tensor data written out of the declared order.
	ErrOrder = errors.New("tensor written out of order")
	// ErrInvalidIndex: a sharded checkpoint's index file is malformed or
	// disagrees with its shards.
	ErrInvalidIndex = inputerr.New("invalid index")
	// ErrMissingShard: a shard named by an index cannot be opened.
	ErrMissingShard = inputerr.New("missing shard")
	// ErrUnsafePath: a shard name in an index is absolute or escapes the
	// checkpoint directory.
	ErrUnsafePath = inputerr.New("unsafe shard path")
	// ErrClosed: the writer was already closed or aborted.
	ErrClosed = errors.New("writer closed")
)

// Error describes a failure concerning one file and, where relevant, one
// tensor. Err wraps a sentinel error of this package (or an I/O error).
type Error struct {
	Path   string // file the error concerns
	Tensor string // tensor name, or "" when the error is not about one tensor
	Err    error
}

func (e *Error) Error() string {
	s := "safetensors: "
	if e.Path != "" {
		s += e.Path + ": "
	}
	if e.Tensor != "" {
		s += "tensor " + strconv.Quote(e.Tensor) + ": "
	}
	return s + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// fileErr builds an *Error about a file.
func fileErr(path string, err error) error {
	return &Error{Path: path, Err: err}
}

// tensorErr builds an *Error about a tensor of a file.
func tensorErr(path, tensor string, err error) error {
	return &Error{Path: path, Tensor: tensor, Err: err}
}
