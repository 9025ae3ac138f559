// Package mer imports the Emotion-LLaMA / MER2023 data layout into a mose
// manifest: an annotation file of "name n_frames label valence" lines, a
// transcript CSV with name and sentence columns, one .npy per clip in each
// feature extractor's folder, and optionally MERR reason captions.
package mer

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mose-llm/mose/data"
)

// Annotation is one line of an annotation file.
type Annotation struct {
	Name    string
	Frames  int
	Label   string  // as written in the file
	Valence float64 // 0 if the column is absent
	HasVal  bool
	Line    int
}

// ReadAnnotations parses space-separated "name n_frames label [valence]"
// lines. name is used in error messages. Every problem is reported (as a
// *data.Problems of *data.SampleError).
func ReadAnnotations(r io.Reader, name string) ([]Annotation, error) {
	var (
		out   []Annotation
		probs data.Problems
		seen  = map[string]int{}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		bad := func(id string, err error) { probs.Add(&data.SampleError{File: name, Line: line, ID: id, Err: err}) }
		if len(f) < 3 || len(f) > 4 {
			bad("", fmt.Errorf("%w: want \"name n_frames label [valence]\", got %d fields", data.ErrMalformed, len(f)))
			continue
		}
		a := Annotation{Name: f[0], Label: f[2], Line: line}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 0 {
			bad(a.Name, fmt.Errorf("%w: n_frames %q is not a count", data.ErrMalformed, f[1]))
			continue
		}
		a.Frames = n
		if len(f) == 4 {
			if a.Valence, err = strconv.ParseFloat(f[3], 64); err != nil {
				bad(a.Name, fmt.Errorf("%w: valence %q is not a number", data.ErrMalformed, f[3]))
				continue
			}
			a.HasVal = true
		}
		if first, dup := seen[a.Name]; dup {
			bad(a.Name, fmt.Errorf("%w (first on line %d)", data.ErrDuplicateID, first))
			continue
		}
		seen[a.Name] = line
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		probs.Add(&data.SampleError{File: name, Line: line + 1, Err: fmt.Errorf("%w: %v", data.ErrMalformed, err)})
	}
	if len(out) == 0 && probs.Len() == 0 {
		probs.Add(&data.SampleError{File: name, Err: fmt.Errorf("%w: no annotation lines", data.ErrEmpty)})
	}
	return out, probs.Err()
}

// Canonical maps a label through synonyms (case-insensitive) and checks it is
// one of labels.
func Canonical(label string, synonyms map[string]string, labels []string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(label))
	if s, ok := synonyms[l]; ok {
		l = s
	}
	for _, k := range labels {
		if k == l {
			return l, nil
		}
	}
	return "", fmt.Errorf("%w %q (known: %s)", data.ErrUnknownLabel, label, strings.Join(labels, ", "))
}
