package mer

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/strictjson"
)

// ReadTranscripts reads a CSV with a header row and returns clip name →
// text, from the columns nameCol and textCol (matched case-insensitively).
// A missing column is data.ErrMissingColumn; a repeated name is
// data.ErrDuplicateID.
func ReadTranscripts(r io.Reader, name, nameCol, textCol string) (map[string]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, &data.SampleError{File: name, Err: fmt.Errorf("%w: no header row", data.ErrEmpty)}
	}
	if err != nil {
		return nil, &data.SampleError{File: name, Line: 1, Err: fmt.Errorf("%w: %v", data.ErrMalformed, err)}
	}
	col := func(want string) int {
		for i, h := range header {
			h = strings.TrimPrefix(h, "\ufeff") // Excel's BOM
			if strings.EqualFold(strings.TrimSpace(h), want) {
				return i
			}
		}
		return -1
	}
	ni, ti := col(nameCol), col(textCol)
	var missing []string
	if ni < 0 {
		missing = append(missing, nameCol)
	}
	if ti < 0 {
		missing = append(missing, textCol)
	}
	if len(missing) > 0 {
		return nil, &data.SampleError{File: name, Line: 1, Err: fmt.Errorf("%w %q (header has %q)", data.ErrMissingColumn, missing, header)}
	}
	out := map[string]string{}
	lines := map[string]int{}
	var probs data.Problems
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			probs.Add(&data.SampleError{File: name, Line: line, Err: fmt.Errorf("%w: %v", data.ErrMalformed, err)})
			if pe == nil {
				break
			}
			continue
		}
		if len(rec) <= max(ni, ti) {
			probs.Add(&data.SampleError{File: name, Line: line, Err: fmt.Errorf("%w: %d fields, want at least %d", data.ErrMalformed, len(rec), max(ni, ti)+1)})
			continue
		}
		clip := strings.TrimSpace(rec[ni])
		if first, dup := lines[clip]; dup {
			probs.Add(&data.SampleError{File: name, Line: line, ID: clip, Err: fmt.Errorf("%w (first on line %d)", data.ErrDuplicateID, first)})
			continue
		}
		lines[clip] = line
		out[clip] = strings.TrimSpace(rec[ti])
	}
	return out, probs.Err()
}

// ReadReasons reads a MERR-style JSON object {"clip": {"<field>": "text", ...}}
// and returns clip → text for the given field (entries without it are skipped).
func ReadReasons(path, field string) (map[string]string, error) {
	b, err := fsutil.ReadRegular(path)
	if err != nil {
		return nil, &data.SampleError{File: path, Err: fmt.Errorf("%w: %w", data.ErrMissingFile, err)}
	}
	var raw map[string]map[string]any
	if err := strictjson.Unmarshal(b, &raw, ""); err != nil {
		return nil, &data.SampleError{File: path, Err: fmt.Errorf("%w: %v", data.ErrMalformed, err)}
	}
	out := map[string]string{}
	for clip, entry := range raw {
		if s, ok := entry[field].(string); ok && strings.TrimSpace(s) != "" {
			out[clip] = strings.TrimSpace(s)
		}
	}
	return out, nil
}
