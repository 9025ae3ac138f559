package safetensors

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header accepted, in bytes (the limit of
// the reference implementation).
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header entry holding string metadata.
const metadataKey = "__metadata__"

// entry is one tensor of a parsed header. begin and end are relative to the
// start of the data buffer.
type entry struct {
	name       string
	dtype      DType
	shape      []int64
	begin, end int64
}

// header is a parsed and validated safetensors header.
type header struct {
	entries  []entry        // sorted by name
	byName   map[string]int // index into entries
	metadata map[string]string
	dataSize int64 // bytes of the data buffer the tensors cover
}

// parseHeader parses and validates the JSON header b of the file path (used
// only in error messages). On success the tensors' data ranges tile
// [0, dataSize) exactly, with no holes and no overlaps.
func parseHeader(path string, b []byte) (*header, error) {
	if len(b) == 0 || b[0] != '{' {
		return nil, fileErr(path, fmt.Errorf("%w: header does not start with '{'", ErrInvalidHeader))
	}
	if !utf8.Valid(b) {
		return nil, fileErr(path, fmt.Errorf("%w: header is not valid UTF-8", ErrInvalidHeader))
	}
	p := newWalker(path, b, ErrInvalidHeader)
	h, err := p.header()
	if err != nil {
		return nil, err
	}
	if err := h.checkLayout(path); err != nil {
		return nil, err
	}
	return h, nil
}

// header reads the top-level header object: tensor entries and at most one
// "__metadata__", rejecting duplicate names.
func (p *walker) header() (*header, error) {
	h := &header{byName: make(map[string]int)}
	if err := p.expectDelim("", '{', "header"); err != nil {
		return nil, err
	}
	sawMetadata := false
	for p.dec.More() {
		name, err := p.key("")
		if err != nil {
			return nil, err
		}
		if name == metadataKey {
			if sawMetadata {
				return nil, fileErr(p.path, fmt.Errorf("%w: %q appears twice", ErrDuplicate, metadataKey))
			}
			sawMetadata = true
			if h.metadata, err = p.metadata(); err != nil {
				return nil, err
			}
			continue
		}
		if _, dup := h.byName[name]; dup {
			return nil, tensorErr(p.path, name, fmt.Errorf("%w: tensor appears twice in the header", ErrDuplicate))
		}
		e, err := p.entry(name)
		if err != nil {
			return nil, err
		}
		h.byName[name] = len(h.entries)
		h.entries = append(h.entries, e)
	}
	if err := p.expectDelim("", '}', "header"); err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	slices.SortFunc(h.entries, func(a, b entry) int { return cmp.Compare(a.name, b.name) })
	for i, e := range h.entries {
		h.byName[e.name] = i
	}
	return h, nil
}

// metadata reads the "__metadata__" value: null or an object of strings.
func (p *walker) metadata() (map[string]string, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, p.syntax("", err)
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, p.invalid("", "%s must be an object of strings, found %s", metadataKey, describe(tok))
	}
	md := make(map[string]string)
	for p.dec.More() {
		k, err := p.key("")
		if err != nil {
			return nil, err
		}
		if _, dup := md[k]; dup {
			return nil, fileErr(p.path, fmt.Errorf("%w: metadata key %q appears twice", ErrDuplicate, k))
		}
		tok, err := p.dec.Token()
		if err != nil {
			return nil, p.syntax("", err)
		}
		v, ok := tok.(string)
		if !ok {
			return nil, p.invalid("", "metadata value of %q must be a string, found %s", k, describe(tok))
		}
		md[k] = v
	}
	if err := p.expectDelim("", '}', metadataKey); err != nil {
		return nil, err
	}
	return md, nil
}

// entry reads and validates one tensor entry. Unknown fields are skipped, as
// the reference implementation does.
func (p *walker) entry(name string) (entry, error) {
	e := entry{name: name}
	if err := p.expectDelim(name, '{', "tensor entry"); err != nil {
		return e, err
	}
	var haveDtype, haveShape, haveOffsets bool
	seen := make(map[string]bool, 3)
	var offsets []int64
	for p.dec.More() {
		k, err := p.key(name)
		if err != nil {
			return e, err
		}
		if seen[k] {
			return e, p.invalid(name, "field %q appears twice", k)
		}
		seen[k] = true
		switch k {
		case "dtype":
			tok, err := p.dec.Token()
			if err != nil {
				return e, p.syntax(name, err)
			}
			s, ok := tok.(string)
			if !ok {
				return e, p.invalid(name, "dtype must be a string, found %s", describe(tok))
			}
			e.dtype, haveDtype = DType(s), true
		case "shape":
			if e.shape, err = p.ints(name, "shape", ErrShape); err != nil {
				return e, err
			}
			haveShape = true
		case "data_offsets":
			if offsets, err = p.ints(name, "data_offsets", ErrOffsets); err != nil {
				return e, err
			}
			haveOffsets = true
		default:
			if err := p.skip(name); err != nil {
				return e, err
			}
		}
	}
	if err := p.expectDelim(name, '}', "tensor entry"); err != nil {
		return e, err
	}
	switch {
	case !haveDtype:
		return e, p.invalid(name, "missing field \"dtype\"")
	case !haveShape:
		return e, p.invalid(name, "missing field \"shape\"")
	case !haveOffsets:
		return e, p.invalid(name, "missing field \"data_offsets\"")
	}
	if !e.dtype.Valid() {
		return e, tensorErr(p.path, name, fmt.Errorf("%w: %q", ErrDtype, string(e.dtype)))
	}
	if len(offsets) != 2 {
		return e, tensorErr(p.path, name, fmt.Errorf("%w: data_offsets must hold 2 integers, has %d", ErrOffsets, len(offsets)))
	}
	e.begin, e.end = offsets[0], offsets[1]
	if e.end < e.begin {
		return e, tensorErr(p.path, name, fmt.Errorf("%w: end %d is before begin %d", ErrOffsets, e.end, e.begin))
	}
	size, err := ByteSize(e.dtype, e.shape)
	if err != nil {
		return e, tensorErr(p.path, name, err)
	}
	if size != e.end-e.begin {
		return e, tensorErr(p.path, name, fmt.Errorf("%w: %s%v needs %d bytes but data_offsets [%d, %d] span %d",
			ErrShape, e.dtype, e.shape, size, e.begin, e.end, e.end-e.begin))
	}
	return e, nil
}

// ints reads an array of non-negative integers that fit in an int64. Values
// that are negative or too large fail with sentinel; non-integers with
// ErrInvalidHeader.
func (p *walker) ints(name, field string, sentinel error) ([]int64, error) {
	if err := p.expectDelim(name, '[', field); err != nil {
		return nil, err
	}
	out := []int64{}
	for p.dec.More() {
		tok, err := p.dec.Token()
		if err != nil {
			return nil, p.syntax(name, err)
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, p.invalid(name, "%s must hold integers, found %s", field, describe(tok))
		}
		s := string(num)
		v, err := strconv.ParseInt(s, 10, 64)
		switch {
		case err == nil && v < 0:
			return nil, tensorErr(p.path, name, fmt.Errorf("%w: %s holds negative value %s", sentinel, field, s))
		case err == nil:
			out = append(out, v)
		case errors.Is(err, strconv.ErrRange):
			return nil, tensorErr(p.path, name, fmt.Errorf("%w: %s value %s is out of range", sentinel, field, s))
		default:
			return nil, p.invalid(name, "%s must hold integers, found %s", field, s)
		}
	}
	if err := p.expectDelim(name, ']', field); err != nil {
		return nil, err
	}
	return out, nil
}

// checkLayout verifies that the tensors' data ranges, sorted by offset, tile
// [0, dataSize) with no holes and no overlaps, and sets dataSize.
func (h *header) checkLayout(path string) error {
	order := h.layoutOrder()
	var pos int64
	prev := ""
	for _, i := range order {
		e := &h.entries[i]
		switch {
		case e.begin > pos:
			return tensorErr(path, e.name, fmt.Errorf("%w: hole in the data buffer: bytes [%d, %d) belong to no tensor", ErrOffsets, pos, e.begin))
		case e.begin < pos:
			return tensorErr(path, e.name, fmt.Errorf("%w: data_offsets [%d, %d] overlap tensor %q, which ends at %d", ErrOffsets, e.begin, e.end, prev, pos))
		}
		pos, prev = e.end, e.name
	}
	h.dataSize = pos
	return nil
}

// layoutOrder returns the indices of the entries sorted by data offsets.
func (h *header) layoutOrder() []int {
	order := make([]int, len(h.entries))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ea, eb := &h.entries[a], &h.entries[b]
		if c := cmp.Compare(ea.begin, eb.begin); c != 0 {
			return c
		}
		return cmp.Compare(ea.end, eb.end)
	})
	return order
}

// headerLength validates the 8-byte little-endian header length n read from
// a file of fileSize bytes.
func headerLength(path string, n uint64, fileSize int64) (int64, error) {
	if n > MaxHeaderSize {
		return 0, fileErr(path, fmt.Errorf("%w: header length %d exceeds the limit of %d bytes", ErrHeaderTooLarge, n, MaxHeaderSize))
	}
	if int64(n) > fileSize-8 {
		return 0, fileErr(path, fmt.Errorf("%w: header length %d exceeds the %d bytes after the length prefix", ErrTruncated, n, max(fileSize-8, 0)))
	}
	return int64(n), nil
}
