package export

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/testfix"
)

// treeHash hashes every path, mode and file content under dir.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			lines = append(lines, p+" "+err.Error())
			return nil
		}
		info, _ := d.Info()
		l := fmt.Sprintf("%s %v", p, info.Mode())
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			l += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, l)
		return nil
	})
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(h, l)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// --force never removes a directory that is, holds or lies inside the
// checkpoint, the run, the model or the data, nor anything that is not a
// previous export; a previous export is replaced.
func TestExportForceNeverRemovesOthers(t *testing.T) {
	cfg, ck := trained(t, "adapters.method=lora")
	run := cfg.Run.OutputDir
	prev := filepath.Join(t.TempDir(), "prev")
	if _, err := Export(context.Background(), Options{Checkpoint: ck, Format: FormatPEFT, Out: prev, Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(prev, exportStampFile)); err != nil {
		t.Fatal("no export stamp:", err)
	}
	extra := filepath.Join(t.TempDir(), "extra")
	os.CopyFS(extra, os.DirFS(prev))
	os.WriteFile(filepath.Join(extra, "notes.txt"), []byte("mine"), 0o644)
	plain := filepath.Join(t.TempDir(), "plain")
	os.MkdirAll(plain, 0o755)
	os.WriteFile(filepath.Join(plain, "adapter_config.json"), []byte("{}"), 0o644)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(run, link)
	badStamp := filepath.Join(t.TempDir(), "badstamp")
	os.CopyFS(badStamp, os.DirFS(prev))
	os.WriteFile(filepath.Join(badStamp, exportStampFile), []byte(`{"format_version": 1, "files": []}`), 0o644)

	cases := []struct{ name, out, mention string }{
		{"out is the run", run, "would overwrite"},
		{"out is the checkpoint", ck, "the checkpoint"},
		{"out holds the checkpoint", filepath.Dir(ck), "the checkpoint"},
		{"out is inside the checkpoint", filepath.Join(ck, "sub"), "the checkpoint"},
		{"out is the model", fixture.Model, "the model"},
		{"out is inside the model", filepath.Join(fixture.Model, "x"), "the model"},
		{"out holds the data", filepath.Dir(filepath.Dir(fixture.Train)), "would overwrite"},
		{"out is the data dir", filepath.Dir(fixture.Train), "data"},
		{"out is a symlink to the run", link, "would overwrite"},
		{"out is not an export", plain, exportStampFile},
		{"out is an export with a user file", extra, "notes.txt"},
		{"out has a malformed stamp", badStamp, "format"},
		{"out is a file", file, "not a directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			watch := []string{run, fixture.Model, filepath.Dir(fixture.Train), c.out}
			before := make([]string, len(watch))
			for i, w := range watch {
				before[i] = treeHash(t, w)
			}
			_, err := Export(context.Background(), Options{Checkpoint: ck, Format: FormatPEFT, Out: c.out, Force: true, Log: testfix.QuietLog()})
			if inputerr.Classify(err) != inputerr.Input || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("want bad input mentioning %q, got %v", c.mention, err)
			}
			for i, w := range watch {
				if treeHash(t, w) != before[i] {
					t.Errorf("%s changed", w)
				}
			}
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(c.out), "."+filepath.Base(c.out)+".tmp-*")); len(m) > 0 {
				t.Errorf("left %v behind", m)
			}
		})
	}
	// A previous export (with an eval.json from mose eval) is replaced.
	os.WriteFile(filepath.Join(prev, "eval.json"), []byte("{}"), 0o644)
	if _, err := Export(context.Background(), Options{Checkpoint: ck, Format: FormatPEFT, Out: prev, Force: true, Log: testfix.QuietLog()}); err != nil {
		t.Fatalf("replacing a previous export: %v", err)
	}
	if _, err := os.Stat(filepath.Join(prev, "eval.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the old export's files survived the replacement")
	}
	// An export inside the run dir (not in checkpoints/) is allowed.
	in := filepath.Join(run, "export")
	if _, err := Export(context.Background(), Options{Checkpoint: ck, Format: FormatPEFT, Out: in, Log: testfix.QuietLog()}); err != nil {
		t.Fatalf("export into the run dir: %v", err)
	}
}
