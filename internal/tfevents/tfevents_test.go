package tfevents

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The CRC-32C check value of "123456789" is 0xe3069283 (RFC 3720, B.4);
// masked (rotated right by 15, plus 0xa282ead8) it is 0xc78ab0e5.
func TestMaskedCRC(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
	}{
		{"123456789", 0xc78ab0e5},
		{"", 0xa282ead8},
	} {
		if got := MaskedCRC([]byte(tc.in)); got != tc.want {
			t.Errorf("MaskedCRC(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

type goldenEvent struct {
	WallTime     float64 `json:"wall_time"`
	Step         int64   `json:"step"`
	FileVersion  string  `json:"file_version"`
	SessionStart bool    `json:"session_start"`
	Values       []struct {
		Tag   string  `json:"tag"`
		Value float64 `json:"value"`
	} `json:"values"`
}

func (g goldenEvent) event() Event {
	e := Event{WallTime: g.WallTime, Step: g.Step, FileVersion: g.FileVersion, SessionStart: g.SessionStart}
	if g.Values != nil {
		e.Values = []Value{}
	}
	for _, v := range g.Values {
		e.Values = append(e.Values, Value{Tag: v.Tag, Scalar: float32(v.Value)})
	}
	return e
}

func readGolden(t *testing.T) ([]byte, []Event) {
	t.Helper()
	b, err := os.ReadFile("testdata/golden.tfevents")
	if err != nil {
		t.Fatalf("%v (regenerate with make fixtures)", err)
	}
	j, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct{ Events []goldenEvent }
	if err := json.Unmarshal(j, &g); err != nil {
		t.Fatal(err)
	}
	var want []Event
	for _, e := range g.Events {
		want = append(want, e.event())
	}
	return b, want
}

// The file written by the Python tensorboard package decodes to the events it
// was given, and mose's encoder writes the same bytes for them.
func TestGoldenFromTensorBoard(t *testing.T) {
	b, want := readGolden(t)
	recs, n, err := SplitRecords(b)
	if err != nil || n != len(b) {
		t.Fatalf("SplitRecords: %d of %d bytes, %v", n, len(b), err)
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	var mine []byte
	for i, r := range recs {
		got, err := Unmarshal(r)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !eventsEqual(got, want[i]) {
			t.Errorf("record %d: decoded %+v, want %+v", i, got, want[i])
		}
		enc := want[i].Marshal()
		if !bytes.Equal(enc, r) {
			t.Errorf("record %d: encoded\n%x\nwant (tensorboard)\n%x", i, enc, r)
		}
		mine = AppendRecord(mine, enc)
	}
	if !bytes.Equal(mine, b) {
		t.Error("framed file differs from tensorboard's")
	}
	if want[0].FileVersion != FileVersion {
		t.Errorf("golden file_version %q", want[0].FileVersion)
	}
}

func eventsEqual(a, b Event) bool {
	return a.WallTime == b.WallTime && a.Step == b.Step && a.FileVersion == b.FileVersion &&
		a.SessionStart == b.SessionStart && slices.Equal(a.Values, b.Values) && (a.Values == nil) == (b.Values == nil)
}

// Every way of breaking the golden file is caught: a torn end, a flipped bit
// in a length, a payload or a CRC.
func TestSplitRecordsBroken(t *testing.T) {
	b, want := readGolden(t)
	first := headerLen + int(binary.LittleEndian.Uint64(b)) + footerLen
	flip := func(at int) []byte {
		c := slices.Clone(b)
		c[at] ^= 0x10
		return c
	}
	for _, tc := range []struct {
		name  string
		in    []byte
		recs  int
		isErr error
	}{
		{"whole", b, len(want), nil},
		{"torn header", b[:first+5], 1, ErrTorn},
		{"torn payload", b[:first+headerLen+3], 1, ErrTorn},
		{"torn footer", b[:len(b)-1], len(want) - 1, ErrTorn},
		{"length bit", flip(first + 1), 1, ErrCorrupt},
		{"length crc bit", flip(first + 9), 1, ErrCorrupt},
		{"payload bit", flip(first + headerLen + 2), 1, ErrCorrupt},
		{"payload crc bit", flip(len(b) - 2), len(want) - 1, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, n, err := SplitRecords(tc.in)
			if !errors.Is(err, tc.isErr) || len(recs) != tc.recs {
				t.Fatalf("%d records, %v; want %d, %v", len(recs), err, tc.recs, tc.isErr)
			}
			if tc.isErr == nil && n != len(tc.in) {
				t.Errorf("n = %d", n)
			}
		})
	}
}

func TestUnmarshalMalformed(t *testing.T) {
	good := (&Event{Step: 3, Values: []Value{{Tag: "a", Scalar: 1}}}).Marshal()
	for _, bad := range [][]byte{
		good[:len(good)-1],       // value cut short
		{0x10},                   // varint key without value
		{0x2a, 0x05, 0x0a},       // summary longer than the message
		{0x0b, 0x00},             // wire type 3 (groups) is not used
		{0x09, 1, 2, 3},          // fixed64 cut short
		{0x2a, 0x02, 0x0a, 0x09}, // Summary.value longer than the summary
	} {
		if e, err := Unmarshal(bad); err == nil {
			t.Errorf("Unmarshal(%x) = %+v, want an error", bad, e)
		}
	}
	if e, err := Unmarshal(good); err != nil || e.Step != 3 || len(e.Values) != 1 {
		t.Errorf("good: %+v %v", e, err)
	}
}

// eventsOf reads dir's files in order and returns the scalar events'
// (step, tag) pairs.
func stepsOf(t *testing.T, dir string) []int64 {
	t.Helper()
	files, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	var steps []int64
	for _, f := range files {
		evs, err := ReadFile(f)
		if err != nil && !errors.Is(err, ErrTorn) {
			t.Fatal(err)
		}
		for _, e := range evs {
			if len(e.Values) > 0 {
				steps = append(steps, e.Step)
			}
		}
	}
	return steps
}

// A run writes steps 1..6, is killed mid-record at 7, and resumes from a
// checkpoint at step 4: the directory then reads 1..4 then the new 5..8, in
// two files whose names sort in that order; a fresh start (from 0) empties it.
func TestCreateCutResume(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tb")
	t0 := time.Unix(1800000000, 0)
	w, err := Create(dir, 0, t0)
	if err != nil {
		t.Fatal(err)
	}
	for s := int64(1); s <= 6; s++ {
		if err := w.Write(s, t0, []Value{{Tag: "loss", Scalar: float32(s)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write(7, t0, nil); err != nil { // nothing to write
		t.Fatal(err)
	}
	w.Close()
	torn := AppendRecord(nil, (&Event{Step: 7, Values: []Value{{Tag: "loss", Scalar: 7}}}).Marshal())
	f, _ := os.OpenFile(w.Path(), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(torn[:len(torn)-3])
	f.Close()
	if got := stepsOf(t, dir); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("before resume: %v", got)
	}
	os.WriteFile(filepath.Join(dir, ".events.out.tfevents.1.x.tmp-123"), []byte("junk"), 0o644) // a rewrite cut short

	w2, err := Create(dir, 4, t0) // same second: the name must still sort after
	if err != nil {
		t.Fatal(err)
	}
	for s := int64(5); s <= 8; s++ {
		w2.Write(s, t0.Add(time.Minute), []Value{{Tag: "loss", Scalar: float32(s)}})
	}
	w2.Close()
	files, _ := Files(dir)
	if len(files) != 2 || files[1] != w2.Path() {
		t.Fatalf("files %v, new %s", files, w2.Path())
	}
	if got := stepsOf(t, dir); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("after resume: %v", got)
	}
	evs, err := ReadFile(files[0])
	if err != nil { // the torn tail is gone
		t.Fatal(err)
	}
	if evs[0].FileVersion != FileVersion || !evs[1].SessionStart || evs[1].Step != 1 {
		t.Errorf("head of the first file: %+v", evs[:2])
	}
	evs, _ = ReadFile(files[1])
	if evs[0].FileVersion != FileVersion || !evs[1].SessionStart || evs[1].Step != 5 {
		t.Errorf("head of the resumed file: %+v", evs[:2])
	}
	if evs[2].WallTime != float64(t0.Add(time.Minute).Unix()) || evs[2].Values[0] != (Value{"loss", 5}) {
		t.Errorf("first resumed event: %+v", evs[2])
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}

	// An unchanged file is not rewritten.
	st0, _ := os.Stat(files[0])
	if err := Cut(dir, 100); err != nil {
		t.Fatal(err)
	}
	if st1, _ := os.Stat(files[0]); !os.SameFile(st0, st1) {
		t.Error("an unchanged file was rewritten")
	}

	// Resuming from step 2 drops the whole second file's scalars: it goes.
	if err := Cut(dir, 2); err != nil {
		t.Fatal(err)
	}
	if got := stepsOf(t, dir); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("cut to 2: %v", got)
	}
	if files, _ := Files(dir); len(files) != 1 {
		t.Errorf("files after cut to 2: %v", files)
	}
	if err := Cut(dir, 0); err != nil {
		t.Fatal(err)
	}
	if files, _ := Files(dir); len(files) != 0 {
		t.Errorf("files after a fresh start: %v", files)
	}
	if err := Cut(filepath.Join(dir, "missing"), 3); err != nil {
		t.Errorf("missing dir: %v", err)
	}
}

func TestFileTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    int64
		ok   bool
	}{
		{"events.out.tfevents.1700000000.host.12.mose", 1700000000, true},
		{"events.out.tfevents.1700000000.host", 1700000000, true},
		{"events.out.tfevents.x.host", 0, false},
		{"my.tfevents.17", 0, false},
	} {
		if got, ok := fileTime(tc.name); got != tc.t || ok != tc.ok {
			t.Errorf("fileTime(%q) = %d, %v", tc.name, got, ok)
		}
	}
}
