package tokenizer

import (
	"errors"

	"github.com/mose-llm/mose/internal/inputerr"
)

// Sentinel errors. Errors returned by this package wrap one of these, so callers can
// test them with errors.Is.
var (
	// ErrUnsupported reports a tokenizer.json feature this package does not implement.
	ErrUnsupported = inputerr.New("tokenizer: unsupported feature")
	// ErrInvalid reports a malformed or inconsistent tokenizer.json.
	ErrInvalid = inputerr.New("tokenizer: invalid tokenizer.json")
	// ErrInvalidUTF8 reports input text that is not valid UTF-8 (HF tokenizers only
	// accept Unicode strings).
	ErrInvalidUTF8 = inputerr.New("tokenizer: text is not valid UTF-8")
	// ErrBuild reports bad input to BuildTiny.
	ErrBuild = errors.New("tokenizer: cannot build tokenizer")
)
