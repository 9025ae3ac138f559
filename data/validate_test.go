package data

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateReport(t *testing.T) {
	fx := newFixture(t, 9)
	// One bad line and one bad file on top of 9 samples.
	lines := []string{}
	for _, s := range fx.samples {
		lines = append(lines, line(t, s))
	}
	lines = append(lines, `{"id": "broken"`)
	writeLines(t, fx.manifest, lines...)
	os.Remove(filepath.Join(fx.dir, fx.samples[4].Features["audio"]))

	rep, err := Validate(fx.manifest, fx.spec, newWordTok(), ValidateOptions{Options: Options{MaxLen: 41}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Samples != 9 || rep.Valid != 8 || rep.Problems.Len() != 2 {
		t.Fatalf("samples %d valid %d problems %v", rep.Samples, rep.Valid, &rep.Problems)
	}
	if !errors.Is(&rep.Problems, ErrMalformed) || !errors.Is(&rep.Problems, ErrMissingFile) {
		t.Fatalf("problems %v", &rep.Problems)
	}
	if rep.BySubset["consistent"] != 3 || rep.ByLabel["sad"] != 3 || rep.BySubsetLabel["video-aligned"]["angry"] != 3 {
		t.Fatalf("counts %v %v", rep.BySubset, rep.BySubsetLabel)
	}
	if rep.Lengths.Max > 41 || rep.Lengths.Min <= 0 || rep.Truncated == 0 {
		t.Fatalf("lengths %+v truncated %d", rep.Lengths, rep.Truncated)
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"9 parsed, 8 valid; problems: 2", "video-aligned", "token lengths", "train.jsonl:10", `sample "s004"`} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	// Without a tokenizer there are no lengths, everything else works.
	rep, err = Validate(fx.manifest, fx.spec, nil, ValidateOptions{HeadersOnly: true})
	if err != nil || rep.Lengths.Max != 0 || rep.Valid != 8 {
		t.Fatalf("no tokenizer: %+v %v", rep, err)
	}
	if _, err := Validate(filepath.Join(fx.dir, "nope.jsonl"), fx.spec, nil, ValidateOptions{}); !errors.Is(err, ErrMissingFile) {
		t.Fatalf("missing manifest: %v", err)
	}
}
