package data

import (
	"fmt"
	"strings"

	"github.com/mose-llm/mose/data/npy"
	"github.com/mose-llm/mose/internal/inputerr"
)

// Sentinel errors. Every input problem reported by this package wraps one of
// them (test with errors.Is) inside a *SampleError that names the place.
var (
	ErrMalformed     = inputerr.New("malformed line")
	ErrMissingField  = inputerr.New("missing field")
	ErrUnknownField  = inputerr.New("unknown field")
	ErrUnknownLabel  = inputerr.New("unknown label")
	ErrUnknownSubset = inputerr.New("unknown subset")
	ErrDuplicateID   = inputerr.New("duplicate id")
	ErrMissingFile   = inputerr.New("missing file")
	ErrEscapesRoot   = inputerr.New("path escapes the data root")
	ErrShape         = inputerr.New("wrong shape")
	ErrNonFinite     = inputerr.New("non-finite value (NaN or Inf)")
	ErrEmpty         = inputerr.New("empty dataset")
	ErrMissingColumn = inputerr.New("missing column")
	ErrTooLong       = inputerr.New("sample longer than the maximum length")
	ErrSpec          = inputerr.New("invalid model spec")

	// ErrDType is npy.ErrDType: a feature file that is not float32/float16
	// little-endian. ErrBadNpy is npy.ErrFormat: a file that is not a valid .npy.
	ErrDType  = npy.ErrDType
	ErrBadNpy = npy.ErrFormat
)

// SampleError locates an input problem: the file (a manifest, CSV or
// annotation file), the 1-based line, the sample id and the feature file
// involved, where known.
type SampleError struct {
	File string // manifest / CSV / annotation file
	Line int    // 1-based line number, 0 if not applicable
	ID   string // sample id, "" if unknown
	Path string // feature file involved, "" if none
	Err  error
}

func (e *SampleError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.ID != "" {
		fmt.Fprintf(&b, "sample %q: ", e.ID)
	}
	if e.Path != "" {
		fmt.Fprintf(&b, "%s: ", e.Path)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *SampleError) Unwrap() error { return e.Err }

// MaxProblems is how many problems a Problems error keeps; more are counted.
const MaxProblems = 50

// Problems collects input problems so that a whole file is checked at once.
// It is an error; errors.Is and errors.As see every kept problem.
type Problems struct {
	Errs    []error
	Omitted int // problems beyond MaxProblems, counted but not kept
}

// Add records err (nil is ignored).
func (p *Problems) Add(err error) {
	if err == nil {
		return
	}
	if len(p.Errs) >= MaxProblems {
		p.Omitted++
		return
	}
	p.Errs = append(p.Errs, err)
}

// Len is the number of problems seen, kept or not.
func (p *Problems) Len() int { return len(p.Errs) + p.Omitted }

// Err returns p as an error, or nil if there were no problems.
func (p *Problems) Err() error {
	if p.Len() == 0 {
		return nil
	}
	return p
}

func (p *Problems) Error() string {
	if len(p.Errs) == 1 && p.Omitted == 0 {
		return p.Errs[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", p.Len())
	for _, e := range p.Errs {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	if p.Omitted > 0 {
		fmt.Fprintf(&b, "\n  ... and %d more", p.Omitted)
	}
	return b.String()
}

func (p *Problems) Unwrap() []error { return p.Errs }
