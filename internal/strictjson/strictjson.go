// Package strictjson decodes JSON the way mose reads every user or
// checkpoint file: a key that repeats in an object is refused (encoding/json
// keeps the last value silently), naming the key, the file and the line;
// Decode also refuses unknown keys and requires every field. It is plain Go
// (no cgo), so data and recipes can use it.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/mose-llm/mose/internal/inputerr"
)

// Sentinel errors; all are bad input (inputerr.ErrInput).
var (
	ErrDuplicateKey = inputerr.New("duplicate key")
	ErrUnknownKey   = inputerr.New("unknown key")
	ErrMissingKey   = inputerr.New("missing key")
	ErrSyntax       = inputerr.New("invalid JSON")
)

// Error locates a problem in a JSON document.
type Error struct {
	File string // "" for a document without a file (one manifest line)
	Line int    // 1-based line, 0 if unknown
	Key  string // dotted path of the key ("mose.inputs[0].name"), "" if none
	Err  error  // wraps a sentinel above
}

func (e *Error) Error() string {
	s := ""
	if e.File != "" {
		s = e.File
		if e.Line > 0 {
			s += ":" + strconv.Itoa(e.Line)
		}
		s += ": "
	}
	if e.Key != "" {
		s += "key " + strconv.Quote(e.Key) + ": "
	}
	return s + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// All is the depth CheckKeys uses to look at every object.
const All = -1

// CheckKeys refuses b if a key repeats in one of its objects down to depth
// levels of nesting (0: the top-level object only; All: every object), or if
// b is not a single valid JSON value.
func CheckKeys(b []byte, file string, depth int) error {
	w := &walker{b: b, file: file, dec: json.NewDecoder(bytes.NewReader(b)), line: 1}
	w.dec.UseNumber()
	if err := w.value("", 0, depth); err != nil {
		return err
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return w.fail("", fmt.Errorf("%w: data after the top-level value", ErrSyntax))
	}
	return nil
}

// Unmarshal is json.Unmarshal after CheckKeys over every object.
func Unmarshal(b []byte, v any, file string) error {
	if err := CheckKeys(b, file, All); err != nil {
		return err
	}
	return unmarshal(b, v, file)
}

// UnmarshalTop is json.Unmarshal after CheckKeys on the top-level object
// only: for large files (tokenizer.json) whose nested maps are checked by
// their own readers.
func UnmarshalTop(b []byte, v any, file string) error {
	if err := CheckKeys(b, file, 0); err != nil {
		return err
	}
	return unmarshal(b, v, file)
}

func unmarshal(b []byte, v any, file string) error {
	err := json.Unmarshal(b, v)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return &Error{File: file, Line: lineAt(b, se.Offset), Err: fmt.Errorf("%w: %v", ErrSyntax, se)}
	case errors.As(err, &te):
		key := te.Field
		return &Error{File: file, Line: lineAt(b, te.Offset), Key: key, Err: fmt.Errorf("%w: a %s where %s is expected", ErrSyntax, te.Value, te.Type)}
	default:
		return &Error{File: file, Err: fmt.Errorf("%w: %v", ErrSyntax, err)}
	}
}

// lineAt is the 1-based line of byte offset off in b.
func lineAt(b []byte, off int64) int {
	off = min(max(off, 0), int64(len(b)))
	return bytes.Count(b[:off], []byte{'\n'}) + 1
}

// walker reads tokens one by one, so repeated keys are seen.
type walker struct {
	b       []byte
	file    string
	dec     *json.Decoder
	lastOff int64
	line    int
}

// at is the line of the decoder's current offset (offsets only grow).
func (w *walker) at() int {
	off := w.dec.InputOffset()
	w.line += bytes.Count(w.b[w.lastOff:off], []byte{'\n'})
	w.lastOff = off
	return w.line
}

func (w *walker) fail(key string, err error) error {
	return &Error{File: w.file, Line: w.at(), Key: key, Err: err}
}

func (w *walker) syntax(key string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return w.fail(key, fmt.Errorf("%w: %v", ErrSyntax, err))
}

// MaxNesting bounds how deeply arrays and objects may nest.
const MaxNesting = 1000

// value walks one value at path, checking objects down to maxDepth.
func (w *walker) value(path string, depth, maxDepth int) error {
	if depth > MaxNesting {
		return w.fail(path, fmt.Errorf("%w: nested deeper than %d levels", ErrSyntax, MaxNesting))
	}
	tok, err := w.dec.Token()
	if err != nil {
		return w.syntax(path, err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]int{}
		for w.dec.More() {
			tok, err := w.dec.Token()
			if err != nil {
				return w.syntax(path, err)
			}
			k, _ := tok.(string)
			kp := k
			if path != "" {
				kp = path + "." + k
			}
			line := w.at()
			if first, dup := seen[k]; dup {
				return &Error{File: w.file, Line: line, Key: kp,
					Err: fmt.Errorf("%w (first at line %d; JSON readers would silently keep the last value)", ErrDuplicateKey, first)}
			}
			seen[k] = line
			if maxDepth >= 0 && depth >= maxDepth {
				var raw json.RawMessage
				if err := w.dec.Decode(&raw); err != nil {
					return w.syntax(kp, err)
				}
				continue
			}
			if err := w.value(kp, depth+1, maxDepth); err != nil {
				return err
			}
		}
	case '[':
		for i := 0; w.dec.More(); i++ {
			if err := w.value(fmt.Sprintf("%s[%d]", path, i), depth+1, maxDepth); err != nil {
				return err
			}
		}
	}
	if _, err := w.dec.Token(); err != nil { // the closing delimiter
		return w.syntax(path, err)
	}
	return nil
}
