package torch

// #include <stdlib.h>
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

// Sentinel errors for checks done on the Go side.
var (
	// ErrFreed: a nil or already freed tensor was given to an op.
	ErrFreed = errors.New("tensor is nil or freed")
	// ErrShape: data and shape disagree, or a shape is invalid.
	ErrShape = errors.New("bad shape")
	// ErrDType: the op does not support the tensor's dtype.
	ErrDType = errors.New("unsupported dtype")
)

// OpError is an op that failed, with libtorch's message or a Go-side cause.
type OpError struct {
	Op  string // the op's name, e.g. "matmul"
	Msg string // libtorch's message, first line(s) only; empty if Err is set
	Err error  // a Go-side cause (ErrFreed, ErrShape, ...), or nil
}

func (e *OpError) Error() string {
	if e.Err != nil {
		return "torch: " + e.Op + ": " + e.Err.Error()
	}
	return "torch: " + e.Op + ": " + e.Msg
}

func (e *OpError) Unwrap() error { return e.Err }

// lastError takes libtch's thread-local error, if any, and turns it into an
// OpError for op. It must run on the thread that made the call (see Run).
func lastError(op string) error {
	p := lib.GetAndResetLastErr()
	if p == nil {
		return nil
	}
	msg := C.GoString((*C.char)(unsafe.Pointer(p)))
	C.free(unsafe.Pointer(p))
	return &OpError{Op: op, Msg: trimTrace(msg)}
}

// maxMsg caps libtorch messages, some of which list every dispatch key.
const maxMsg = 600

// trimTrace keeps the first paragraph of a libtorch message: it drops the C++
// backtrace and the dispatcher's registration tables.
func trimTrace(msg string) string {
	for _, cut := range []string{"\nException raised from", "\n\n"} {
		if i := strings.Index(msg, cut); i >= 0 {
			msg = msg[:i]
		}
	}
	msg = strings.TrimSpace(msg)
	if len(msg) > maxMsg {
		msg = strings.ToValidUTF8(msg[:maxMsg], "") + " …"
	}
	return msg
}

func goErr(op string, format string, args ...any) error {
	return &OpError{Op: op, Err: fmt.Errorf(format, args...)}
}
