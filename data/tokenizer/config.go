package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// fileJSON is the top level of a tokenizer.json file. Components stay raw until the
// matching parse function reads them, so each can report its own unsupported parts.
type fileJSON struct {
	Version       string           `json:"version"`
	Truncation    json.RawMessage  `json:"truncation"`
	Padding       json.RawMessage  `json:"padding"`
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	Model         json.RawMessage  `json:"model"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
}

// addedTokenJSON is one entry of "added_tokens". Missing flags take HF's defaults
// (normalized defaults to true).
type addedTokenJSON struct {
	ID         int64  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized *bool  `json:"normalized"`
	Special    bool   `json:"special"`
}

// paddingJSON is the part of "padding" that matters for single-sequence encoding.
type paddingJSON struct {
	Strategy json.RawMessage `json:"strategy"`
	PadID    *int64          `json:"pad_id"`
	PadToken string          `json:"pad_token"`
}

// patternJSON is HF's {"String": "..."} or {"Regex": "..."} pattern.
type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// isNull reports whether a raw JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// componentType returns the "type" field of a component object.
func componentType(raw json.RawMessage, what string) (string, error) {
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	if head.Type == nil {
		return "", fmt.Errorf("%w: %s has no \"type\" field", ErrInvalid, what)
	}
	return *head.Type, nil
}

// decodeComponent unmarshals a component into v, naming it in the error.
func decodeComponent(raw json.RawMessage, what string, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	return nil
}

// unsupported builds an ErrUnsupported error naming the feature.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// invalid builds an ErrInvalid error.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// parsePattern turns a pattern object into a matcher.
func parsePattern(p patternJSON, what string) (matcher, error) {
	switch {
	case p.String != nil && p.Regex == nil:
		return literalMatcher(*p.String), nil
	case p.Regex != nil && p.String == nil:
		return compileRegex(*p.Regex, what)
	default:
		return nil, invalid("%s: pattern must have exactly one of String or Regex", what)
	}
}

// checkPadding accepts a null padding, or one whose strategy cannot change a single
// sequence (BatchLongest); a Fixed length would pad every encoding, which Encode does
// not do. It returns the pad token named there, if any.
func checkPadding(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var p paddingJSON
	if err := decodeComponent(raw, "padding", &p); err != nil {
		return "", err
	}
	var strategy string
	if err := json.Unmarshal(p.Strategy, &strategy); err != nil || strategy != "BatchLongest" {
		return "", unsupported("padding strategy %s (only BatchLongest, which leaves single sequences alone)", bytes.TrimSpace(p.Strategy))
	}
	return p.PadToken, nil
}
