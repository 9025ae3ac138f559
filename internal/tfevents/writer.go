package tfevents

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mose-llm/mose/internal/fsutil"
)

// filePrefix starts the name of every event file this package writes, as
// TensorFlow and PyTorch name theirs. TensorBoard reads every file of a
// directory whose name contains "tfevents", in name order.
const filePrefix = "events.out.tfevents."

// IsEventFile reports whether TensorBoard reads a file of this name (its
// base name contains "tfevents" and it is not one of our hidden temporary files).
func IsEventFile(name string) bool {
	base := filepath.Base(name)
	return strings.Contains(base, "tfevents") && !strings.HasPrefix(base, ".")
}

// Files lists dir's event files in the order TensorBoard reads them (by
// name). A missing dir has none.
func Files(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && IsEventFile(e.Name()) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out, nil
}

// ReadFile decodes the events of one file. A torn last record (a writer
// killed mid-write) ends the file with the events before it and ErrTorn; a
// record that fails its CRC or does not decode gives ErrCorrupt.
func ReadFile(path string) ([]Event, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, _, serr := SplitRecords(b)
	events := make([]Event, 0, len(recs))
	for i, r := range recs {
		e, err := Unmarshal(r)
		if err != nil {
			return events, fmt.Errorf("%s: record %d: %w: %v", path, i, ErrCorrupt, err)
		}
		events = append(events, e)
	}
	if serr != nil {
		return events, fmt.Errorf("%s: %w", path, serr)
	}
	return events, nil
}

// Cut makes dir's event files hold only the events of steps <= from (none
// when from is 0), the rule metrics.jsonl follows on resume, so that a
// resumed run continues one curve per tag instead of drawing a second one
// over the steps it redoes. In each file the records are kept up to the first
// torn or corrupt one; a file left without scalars is removed, a changed file
// is rewritten atomically, an unchanged one is left alone. Temporary files of
// an interrupted rewrite are removed. A missing dir is fine.
func Cut(dir string, from int64) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") && strings.Contains(name, "tfevents") && strings.Contains(name, ".tmp-") {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	files, err := Files(dir)
	if err != nil {
		return err
	}
	for _, path := range files {
		if err := cutFile(path, from); err != nil {
			return fmt.Errorf("tfevents: cut %s: %w", path, err)
		}
	}
	return nil
}

func cutFile(path string, from int64) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	recs, _, _ := SplitRecords(b) // whatever follows a torn or corrupt record is lost anyway
	var keep []byte
	scalars, kept := false, 0
	for _, r := range recs {
		e, err := Unmarshal(r)
		if err != nil {
			break
		}
		if from <= 0 || e.Step > from {
			continue
		}
		keep = AppendRecord(keep, r)
		kept++
		scalars = scalars || len(e.Values) > 0
	}
	switch {
	case !scalars:
		return os.Remove(path)
	case len(keep) == len(b):
		return nil
	}
	return fsutil.WriteBytes(path, keep)
}

// Writer appends scalar events to one new event file. Every Write is one
// write(2) of a whole record, so a TensorBoard watching the directory sees
// each record as soon as it is written (no fsync: a crash may lose the last
// records, never corrupt the earlier ones). A Writer is not safe for
// concurrent use; a run has one (under data parallel training, rank 0's).
type Writer struct {
	f    *os.File
	path string
}

// Create prepares dir for a run that continues after step from (0 for a
// fresh run): it cuts the existing event files back to steps <= from (see
// Cut), then starts a new file named to sort after them, holding the
// file_version event and a SessionLog START at step from+1, which tells a
// TensorBoard that already read the dropped events to forget them too.
func Create(dir string, from int64, now time.Time) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := Cut(dir, from); err != nil {
		return nil, err
	}
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	ts := now.Unix()
	for _, p := range files { // TensorBoard reads files in name order: sort after every existing one
		if t, ok := fileTime(filepath.Base(p)); ok && t >= ts {
			ts = t + 1
		}
	}
	host, err := os.Hostname()
	if err != nil || host == "" || strings.ContainsAny(host, `/\`) {
		host = "localhost"
	}
	var f *os.File
	var path string
	for range 100 {
		path = filepath.Join(dir, fmt.Sprintf("%s%010d.%s.%d.mose", filePrefix, ts, host, os.Getpid()))
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, os.ErrExist) {
			break
		}
		ts++
	}
	if err != nil {
		return nil, err
	}
	if err := fsutil.SyncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	w := &Writer{f: f, path: path}
	wall := wallTime(now)
	head := AppendRecord(nil, (&Event{WallTime: wall, FileVersion: FileVersion}).Marshal())
	head = AppendRecord(head, (&Event{WallTime: wall, Step: from + 1, SessionStart: true}).Marshal())
	if _, err := f.Write(head); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// fileTime reads the Unix time in an event file name events.out.tfevents.<time>.….
func fileTime(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, filePrefix)
	if !ok {
		return 0, false
	}
	digits, _, _ := strings.Cut(rest, ".")
	t, err := strconv.ParseInt(digits, 10, 64)
	return t, err == nil
}

func wallTime(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Path is the file being written.
func (w *Writer) Path() string { return w.path }

// Write appends one event holding values at step, stamped with wall. No
// values, no event.
func (w *Writer) Write(step int64, wall time.Time, values []Value) error {
	if len(values) == 0 {
		return nil
	}
	e := Event{WallTime: wallTime(wall), Step: step, Values: values}
	_, err := w.f.Write(AppendRecord(nil, e.Marshal()))
	return err
}

// Close closes the file. A nil Writer is closed.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	return w.f.Close()
}
