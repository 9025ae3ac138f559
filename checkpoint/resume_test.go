package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --resume with something that is not a checkpoint says what it is and what
// to give instead.
func TestFindNotACheckpoint(t *testing.T) {
	run := t.TempDir()
	ck := filepath.Join(run, "checkpoints")
	for _, d := range []string{StepDir(10), StepDir(20)} {
		if err := os.MkdirAll(filepath.Join(ck, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(run, "notes.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ resume, want string }{
		{"atuo", "--resume auto"},
		{run, filepath.Join(ck, StepDir(20))},
		{ck, filepath.Join(ck, StepDir(20))},
		{file, "not a directory"},
		{filepath.Join(ck, StepDir(10)), StateFile}, // a checkpoint dir, damaged: validated
	}
	for _, c := range cases {
		_, err := Find(ck, c.resume)
		if !errors.Is(err, ErrResume) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Find(%q) = %v, want ErrResume mentioning %q", c.resume, err, c.want)
		}
	}
	if got, err := Find(filepath.Join(t.TempDir(), "none"), "auto"); got != "" || err != nil {
		t.Errorf("auto without checkpoints = %q, %v; want a fresh run", got, err)
	}
}
