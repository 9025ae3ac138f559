// Package inputerr classifies errors by cause. An error caused by the user's
// files, flags or recipe wraps ErrInput (test with errors.Is, or Classify);
// a fault of the machine (disk full, out of memory, an I/O error) does not,
// even when it happens while reading a user's file.
//
// Packages declare their bad-input sentinels with New, so that the class
// follows the cause through every wrap (fmt.Errorf("...: %w", err)), not
// the call site.
package inputerr

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// ErrInput is the class of every bad-input error.
var ErrInput = errors.New("bad input")

// sentinel is a named error that is also ErrInput.
type sentinel struct{ msg string }

func (s *sentinel) Error() string        { return s.msg }
func (s *sentinel) Is(target error) bool { return target == ErrInput }

// New returns a sentinel error with message msg that errors.Is reports as
// ErrInput (and as itself).
func New(msg string) error { return &sentinel{msg} }

// marked is an error re-classified as bad input, message unchanged.
type marked struct{ err error }

func (m marked) Error() string        { return m.err.Error() }
func (m marked) Unwrap() error        { return m.err }
func (m marked) Is(target error) bool { return target == ErrInput }

// Mark classifies err (non-nil) as bad input without changing its message.
// A machine fault inside err still wins in Classify.
func Mark(err error) error {
	if err == nil {
		return nil
	}
	return marked{err}
}

// Class is the cause of an error.
type Class int

// Classes, in the order Classify tests them.
const (
	None    Class = iota // no error
	Machine              // a fault of the machine: exit 1
	Input                // the user's files, flags or recipe: exit 2
	Other                // anything else (a bug, a libtorch failure): exit 1
)

// machineErrnos are faults of the machine, whatever file they concern.
var machineErrnos = []error{syscall.ENOSPC, syscall.EDQUOT, syscall.ENOMEM, syscall.EIO, syscall.EMFILE, syscall.ENFILE}

// pathErrnos are errors about a path itself: the user named a path that does
// not exist, is not a directory, is a directory, cannot be read, and so on.
var pathErrnos = []error{syscall.ENOENT, syscall.ENOTDIR, syscall.EISDIR, syscall.EACCES, syscall.EPERM,
	syscall.ELOOP, syscall.ENAMETOOLONG, syscall.EEXIST, syscall.EROFS, syscall.ENXIO}

// Classify says what caused err: a machine fault first (disk full inside a
// bad-input wrap is still the machine's), then bad input (ErrInput, or a
// path error such as ENOENT or ENOTDIR), else Other.
func Classify(err error) Class {
	if err == nil {
		return None
	}
	for _, e := range machineErrnos {
		if errors.Is(err, e) {
			return Machine
		}
	}
	if errors.Is(err, ErrInput) {
		return Input
	}
	var pe *fs.PathError
	var le *os.LinkError
	if errors.As(err, &pe) || errors.As(err, &le) {
		for _, e := range pathErrnos {
			if errors.Is(err, e) {
				return Input
			}
		}
	}
	return Other
}

// The classes of bad input that the message a user sees starts with, beside
// recipes.ErrRecipe ("bad recipe") and checkpoint.ErrCheckpoint ("invalid
// checkpoint"): the error names the kind of file or value at fault.
var (
	// ErrManifest: a manifest (JSONL) or one of its samples.
	ErrManifest = New("bad manifest")
	// ErrFeatures: a feature file a manifest names (.npy).
	ErrFeatures = New("bad features")
	// ErrModel: a model directory (config.json, weights, tokenizer).
	ErrModel = New("bad model")
	// ErrAdapter: adapter weights or their config (a checkpoint's
	// adapter.safetensors, an export, a PEFT adapter).
	ErrAdapter = New("bad adapter")
	// ErrFlag: a command-line flag's value.
	ErrFlag = New("bad flag")
)
