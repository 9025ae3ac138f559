package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// walker walks JSON tokens one by one, so that duplicate keys (which
// encoding/json would silently collapse) are seen. Malformed input is
// reported with the sentinel bad.
type walker struct {
	path string
	dec  *json.Decoder
	bad  error
}

func newWalker(path string, b []byte, bad error) *walker {
	w := &walker{path: path, dec: json.NewDecoder(bytes.NewReader(b)), bad: bad}
	w.dec.UseNumber()
	return w
}

// syntax wraps a JSON decoding error for tensor name ("" when not inside a
// tensor entry).
func (p *walker) syntax(name string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return tensorErr(p.path, name, fmt.Errorf("%w: %v (at byte %d)", p.bad, se, se.Offset))
	}
	return tensorErr(p.path, name, fmt.Errorf("%w: %v", p.bad, err))
}

// invalid builds an error wrapping p.bad about tensor name.
func (p *walker) invalid(name, format string, args ...any) error {
	return tensorErr(p.path, name, fmt.Errorf("%w: "+format, append([]any{p.bad}, args...)...))
}

// end checks that only whitespace follows the top-level value.
func (p *walker) end() error {
	tok, err := p.dec.Token()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return p.syntax("", err)
	}
	return p.invalid("", "unexpected %s after the top-level object", describe(tok))
}

// skip consumes one JSON value.
func (p *walker) skip(name string) error {
	var raw json.RawMessage
	if err := p.dec.Decode(&raw); err != nil {
		return p.syntax(name, err)
	}
	return nil
}

// expectDelim reads the next token and checks it is the delimiter want.
func (p *walker) expectDelim(name string, want json.Delim, what string) error {
	tok, err := p.dec.Token()
	if err != nil {
		return p.syntax(name, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return p.invalid(name, "%s: expected %q, found %s", what, string(want), describe(tok))
	}
	return nil
}

// key reads an object key.
func (p *walker) key(name string) (string, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return "", p.syntax(name, err)
	}
	k, ok := tok.(string)
	if !ok {
		return "", p.invalid(name, "expected an object key, found %s", describe(tok))
	}
	return k, nil
}

// describe names a JSON token for error messages.
func describe(tok json.Token) string {
	switch t := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		return strconv.Quote(string(t))
	case string:
		return "string " + strconv.Quote(t)
	case json.Number:
		return "number " + string(t)
	case bool:
		return "boolean " + strconv.FormatBool(t)
	default:
		return fmt.Sprintf("%v", t)
	}
}
