package main

import (
	"strings"
	"testing"
)

// A log line written while the progress line shows clears it, takes a line
// of its own, and the progress line comes back under it.
func TestTermBar(t *testing.T) {
	var out strings.Builder
	b := &termBar{w: &out}
	b.Write([]byte("before\n"))
	b.Draw("step 1/10")
	b.Draw("step 2/10")
	b.Write([]byte("level=info msg=checkpoint\n"))
	b.Done()
	b.Done()
	b.Write([]byte("after\n"))
	want := "before\n" + clearLine + "step 1/10" + clearLine + "step 2/10" +
		clearLine + "level=info msg=checkpoint\n" + "step 2/10" + "\n" + "after\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}
