package data

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/strictjson"
)

func TestParseManifestRoundTrip(t *testing.T) {
	in := []Sample{
		{ID: "a", Subset: "consistent", Label: "happy", Subtitle: "hi <there>", Features: map[string]string{"frames": "f/a.npy", "audio": "a/a.npy"}},
		{ID: "b", Subset: "video-aligned", Label: "sad", Subtitle: "", Reason: "because", Features: map[string]string{"frames": "f/b.npy", "audio": "a/b.npy"}, Meta: map[string]any{"valence": -1.5}},
	}
	var buf bytes.Buffer
	if err := EncodeManifest(&buf, in); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("\n  \n") // blank lines are skipped
	got, err := ParseManifest(&buf, "m.jsonl", ManifestOptions{Labels: testSpec().Labels, Inputs: []string{"frames", "audio"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Reason != "because" || got[1].Line != 2 || got[0].Subtitle != "hi <there>" || got[1].Meta["valence"] != -1.5 {
		t.Fatalf("got %+v", got)
	}
}

func TestParseManifestBadInput(t *testing.T) {
	good := `{"id":"x","subset":"consistent","label":"happy","subtitle":"s","features":{"frames":"f.npy","audio":"a.npy"}}`
	tests := []struct {
		name  string
		lines []string
		want  error
		line  string // "file:line" expected in the message
		id    string // sample id expected in the message ("" if none)
	}{
		{"malformed json", []string{good, `{"id": "y", `}, ErrMalformed, "m.jsonl:2", ""},
		{"not an object", []string{`[1,2]`}, ErrMalformed, "m.jsonl:1", ""},
		{"missing id", []string{`{"subset":"consistent","label":"happy","subtitle":"s","features":{"frames":"f","audio":"a"}}`}, ErrMissingField, "m.jsonl:1", ""},
		{"empty id", []string{`{"id":" ","subset":"consistent","label":"happy","subtitle":"s","features":{"frames":"f","audio":"a"}}`}, ErrMissingField, "m.jsonl:1", ""},
		{"missing label", []string{`{"id":"q","subset":"consistent","subtitle":"s","features":{"frames":"f","audio":"a"}}`}, ErrMissingField, "m.jsonl:1", "q"},
		{"missing subtitle", []string{`{"id":"q","subset":"consistent","label":"happy","features":{"frames":"f","audio":"a"}}`}, ErrMissingField, "m.jsonl:1", "q"},
		{"missing features", []string{`{"id":"q","subset":"consistent","label":"happy","subtitle":""}`}, ErrMissingField, "m.jsonl:1", "q"},
		{"missing input", []string{`{"id":"q","subset":"consistent","label":"happy","subtitle":"","features":{"frames":"f"}}`}, ErrMissingField, "m.jsonl:1", "q"},
		{"wrong type", []string{`{"id":"q","subset":"consistent","label":3,"subtitle":"","features":{"frames":"f","audio":"a"}}`}, ErrMalformed, "m.jsonl:1", "q"},
		{"unknown field", []string{`{"id":"q","subset":"consistent","label":"happy","subtitel":"","subtitle":"","features":{"frames":"f","audio":"a"}}`}, ErrUnknownField, "m.jsonl:1", "q"},
		{"unknown label", []string{good, strings.Replace(strings.Replace(good, `"x"`, `"z"`, 1), "happy", "joyful", 1)}, ErrUnknownLabel, "m.jsonl:2", "z"},
		{"unknown subset", []string{strings.Replace(good, "consistent", "mixed", 1)}, ErrUnknownSubset, "m.jsonl:1", "x"},
		{"duplicate id", []string{good, "", good}, ErrDuplicateID, "m.jsonl:3", "x"},
		{"empty", []string{"", "  "}, ErrEmpty, "m.jsonl", ""},
		{"repeated key", []string{good, strings.Replace(good, `"label":"happy"`, `"label":"happy","label":"sad"`, 1)}, strictjson.ErrDuplicateKey, "m.jsonl:2", ""},
		{"repeated feature key", []string{strings.Replace(good, `"frames":"f.npy"`, `"frames":"f.npy","frames":"g.npy"`, 1)}, strictjson.ErrDuplicateKey, "m.jsonl:1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := strings.NewReader(strings.Join(tc.lines, "\n"))
			_, err := ParseManifest(r, "m.jsonl", ManifestOptions{Labels: testSpec().Labels, Inputs: []string{"frames", "audio"}})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.line+":") && !strings.Contains(msg, tc.line+" ") {
				t.Errorf("message %q does not name %s", msg, tc.line)
			}
			if tc.id != "" && !strings.Contains(msg, `sample "`+tc.id+`"`) {
				t.Errorf("message %q does not name sample %q", msg, tc.id)
			}
			var se *SampleError
			if !errors.As(err, &se) {
				t.Errorf("not a *SampleError: %T", err)
			}
		})
	}
}

func TestParseManifestReportsAllProblems(t *testing.T) {
	lines := []string{`{`, `{`, `{"id":"q"}`}
	_, err := ParseManifest(strings.NewReader(strings.Join(lines, "\n")), "m.jsonl", ManifestOptions{})
	var p *Problems
	if !errors.As(err, &p) || p.Len() != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrMissingField) {
		t.Fatalf("sentinels not reachable through Problems: %v", err)
	}
}

func TestReadManifestMissing(t *testing.T) {
	_, err := ReadManifest(filepath.Join(t.TempDir(), "nope.jsonl"), ManifestOptions{})
	if !errors.Is(err, ErrMissingFile) || !strings.Contains(err.Error(), "nope.jsonl") {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"id":"x","subset":"consistent","label":"happy","subtitle":"s","features":{"frames":"f.npy"}}`))
	f.Add([]byte("{\"id\":\"x\"}\n{\"id\":\"x\"}\n"))
	f.Add([]byte(`{"id":"x","subset":"consistent","label":"happy","subtitle":"s","reason":"r","features":{"frames":"f.npy"},"meta":{"a":[1,{"b":null}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		samples, err := ParseManifest(bytes.NewReader(b), "fuzz.jsonl", ManifestOptions{Labels: []string{"happy", "sad"}})
		seen := map[string]bool{}
		for _, s := range samples {
			if s.ID == "" || seen[s.ID] || s.Features == nil || (s.Label != "happy" && s.Label != "sad") {
				t.Fatalf("invalid sample accepted: %+v", s)
			}
			seen[s.ID] = true
		}
		if err == nil && len(samples) == 0 {
			t.Fatal("no samples and no error")
		}
		if err != nil {
			var p *Problems
			if !errors.As(err, &p) || p.Len() == 0 {
				t.Fatalf("error is not a non-empty *Problems: %v", err)
			}
			return
		}
		// What parses must survive a write/parse round trip unchanged.
		var buf bytes.Buffer
		if err := EncodeManifest(&buf, samples); err != nil {
			t.Fatal(err)
		}
		again, err := ParseManifest(&buf, "again.jsonl", ManifestOptions{Labels: []string{"happy", "sad"}})
		if err != nil || len(again) != len(samples) {
			t.Fatalf("round trip: %d samples, %v", len(again), err)
		}
	})
}
