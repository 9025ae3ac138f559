package main

import (
	"io"
	"sync"
)

// termBar is the training progress line on a terminal (trainer.Progress) and
// the writer the logs go through while it is shown: a log line clears the
// progress line, is written, and the progress line is drawn again under it,
// so the two never share a line.
type termBar struct {
	mu   sync.Mutex
	w    io.Writer
	line string // the line shown; "" when none
}

// clearLine returns the cursor to the start of the line and erases it.
const clearLine = "\r\x1b[K"

// Draw replaces the progress line.
func (b *termBar) Draw(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.line = line
	io.WriteString(b.w, clearLine+line)
}

// Done ends the progress line: later output starts on a line of its own.
func (b *termBar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.line != "" {
		io.WriteString(b.w, "\n")
		b.line = ""
	}
}

// Write writes a log line above the progress line.
func (b *termBar) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.line == "" {
		return b.w.Write(p)
	}
	io.WriteString(b.w, clearLine)
	n, err := b.w.Write(p)
	io.WriteString(b.w, b.line)
	return n, err
}
