package data

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data/npy"
)

func TestOpen(t *testing.T) {
	fx := newFixture(t, 9)
	ds, err := Open(fx.manifest, fx.spec, newWordTok(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 9 || len(ds.Lengths()) != 9 || ds.Truncated() != 0 {
		t.Fatalf("len %d", ds.Len())
	}
	dst := make([]float32, 2)
	if err := ds.ReadFeatures(4, 1, dst, nil); err != nil || !slices.Equal(dst, []float32{4, 5}) {
		t.Fatalf("audio of sample 4: %v %v", dst, err)
	}
}

// TestBadInput is the bad-input matrix of Open and Validate: every case is a
// clear error naming the manifest line, the sample and the file.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		// mutate breaks sample 1 of a 3-sample fixture (files and/or sample).
		mutate func(t *testing.T, fx *fixture, s *Sample)
		want   error
		file   string // file name expected in the message
		atLoad bool   // only detected when values are read (Validate / loader)
	}{
		{"missing file", func(t *testing.T, fx *fixture, s *Sample) {
			os.Remove(filepath.Join(fx.dir, s.Features["frames"]))
		}, ErrMissingFile, "s001.npy", false},
		{"wrong dtype", func(t *testing.T, fx *fixture, s *Sample) {
			copyFile(t, "npy/testdata/f8_2.npy", filepath.Join(fx.dir, s.Features["audio"]))
		}, ErrDType, "audio/s001.npy", false},
		{"wrong shape", func(t *testing.T, fx *fixture, s *Sample) {
			writeNpy(t, filepath.Join(fx.dir, s.Features["frames"]), npy.Float32, []int{3, 3}, ramp(9, 0))
		}, ErrShape, "frames/s001.npy", false},
		{"wrong dim", func(t *testing.T, fx *fixture, s *Sample) {
			writeNpy(t, filepath.Join(fx.dir, s.Features["audio"]), npy.Float32, []int{1, 3}, ramp(3, 0))
		}, ErrShape, "audio/s001.npy", false},
		{"not npy", func(t *testing.T, fx *fixture, s *Sample) {
			os.WriteFile(filepath.Join(fx.dir, s.Features["audio"]), []byte("hello"), 0o644)
		}, ErrBadNpy, "audio/s001.npy", false},
		{"nan", func(t *testing.T, fx *fixture, s *Sample) {
			v := ramp(12, 0)
			v[7] = nan32
			writeNpy(t, filepath.Join(fx.dir, s.Features["frames"]), npy.Float32, []int{4, 3}, v)
		}, ErrNonFinite, "frames/s001.npy", true},
		{"inf in float16", func(t *testing.T, fx *fixture, s *Sample) {
			writeNpy(t, filepath.Join(fx.dir, s.Features["audio"]), npy.Float16, []int{2}, []float32{1, 1e6})
		}, ErrNonFinite, "audio/s001.npy", true},
		{"oversized file", func(t *testing.T, fx *fixture, s *Sample) {
			writeNpy(t, filepath.Join(fx.dir, s.Features["frames"]), npy.Float32, []int{4000, 30}, ramp(120000, 0))
		}, ErrShape, "frames/s001.npy", false},
		{"escaping path", func(t *testing.T, fx *fixture, s *Sample) {
			s.Features["frames"] = "../../etc/passwd"
		}, ErrEscapesRoot, "../../etc/passwd", false},
		{"escaping symlink", func(t *testing.T, fx *fixture, s *Sample) {
			outside := filepath.Join(t.TempDir(), "x.npy")
			writeNpy(t, outside, npy.Float32, []int{4, 3}, ramp(12, 0))
			p := filepath.Join(fx.dir, s.Features["frames"])
			os.Remove(p)
			if err := os.Symlink(outside, p); err != nil {
				t.Skip(err)
			}
		}, ErrEscapesRoot, "frames/s001.npy", false},
		{"unknown label", func(t *testing.T, fx *fixture, s *Sample) { s.Label = "joyful" }, ErrUnknownLabel, "train.jsonl:2", false},
		{"unknown subset", func(t *testing.T, fx *fixture, s *Sample) { s.Subset = "conflict" }, ErrUnknownSubset, "train.jsonl:2", false},
		{"duplicate id", func(t *testing.T, fx *fixture, s *Sample) { s.ID = "s000" }, ErrDuplicateID, "train.jsonl:2", false},
		{"missing input", func(t *testing.T, fx *fixture, s *Sample) { delete(s.Features, "audio") }, ErrMissingField, "train.jsonl:2", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, 3)
			s := &fx.samples[1]
			tc.mutate(t, fx, s)
			if err := WriteManifest(fx.manifest, fx.samples); err != nil {
				t.Fatal(err)
			}
			wantID := `sample "` + s.ID + `"`
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, tc.want) {
					t.Fatalf("%s: got %v, want %v", what, err, tc.want)
				}
				msg := err.Error()
				t.Logf("%s: %v", what, msg)
				for _, part := range []string{tc.file, wantID, "train.jsonl:2"} {
					if !strings.Contains(msg, part) {
						t.Errorf("%s: message %q lacks %q", what, msg, part)
					}
				}
			}

			ds, err := Open(fx.manifest, fx.spec, newWordTok(), Options{})
			if tc.atLoad {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				_, err = ds.Batch([]int{0, 1, 2}, ModeTrain, nil)
				check("Batch", err)
			} else {
				check("Open", err)
			}

			rep, err := Validate(fx.manifest, fx.spec, newWordTok(), ValidateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Problems.Len() != 1 || rep.Valid != 2 {
				t.Fatalf("Validate: %d problems, %d valid: %v", rep.Problems.Len(), rep.Valid, &rep.Problems)
			}
			check("Validate", &rep.Problems)
		})
	}
}

func TestOpenEmpty(t *testing.T) {
	fx := newFixture(t, 1)
	writeLines(t, fx.manifest, "")
	_, err := Open(fx.manifest, fx.spec, newWordTok(), Options{})
	if !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), "train.jsonl") {
		t.Fatalf("got %v", err)
	}
}

func TestOpenLazy(t *testing.T) {
	fx := newFixture(t, 3)
	os.Remove(filepath.Join(fx.dir, fx.samples[2].Features["audio"]))
	// Lazy still resolves paths, so a missing file is found at Open.
	if _, err := Open(fx.manifest, fx.spec, newWordTok(), Options{Lazy: true}); !errors.Is(err, ErrMissingFile) {
		t.Fatalf("got %v", err)
	}
	writeNpy(t, filepath.Join(fx.dir, fx.samples[2].Features["audio"]), npy.Float32, []int{5}, ramp(5, 0))
	ds, err := Open(fx.manifest, fx.spec, newWordTok(), Options{Lazy: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Batch([]int{2}, ModeTrain, nil); !errors.Is(err, ErrShape) {
		t.Fatalf("got %v", err)
	}
}

func TestOpenCustomRoot(t *testing.T) {
	fx := newFixture(t, 2)
	other := filepath.Join(t.TempDir(), "m.jsonl")
	copyFile(t, fx.manifest, other)
	if _, err := Open(other, fx.spec, newWordTok(), Options{}); !errors.Is(err, ErrMissingFile) {
		t.Fatalf("relative to the manifest's directory: %v", err)
	}
	if _, err := Open(other, fx.spec, newWordTok(), Options{Root: fx.dir}); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
