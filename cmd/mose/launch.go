package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// launchSpec is a single-node data-parallel launch (`mose train --nproc N`),
// the equivalent of `torchrun --standalone --nproc-per-node N`: N copies of a
// worker command with torchrun's environment.
type launchSpec struct {
	argv   []string // the worker command (program first)
	nproc  int
	addr   string        // MASTER_ADDR (default 127.0.0.1)
	port   int           // MASTER_PORT (0: a free port)
	grace  time.Duration // after a worker fails, how long the others get to stop before SIGKILL
	env    []string      // base environment (default os.Environ())
	stdout io.Writer
	stderr io.Writer
	// signal returns the signal that cancelled ctx (forwarded to every worker).
	signal func() os.Signal
}

// workerExit is how one worker ended.
type workerExit struct {
	rank     int
	code     int  // exit code, or 128+signal
	signaled bool // killed by a signal (code 128+signal), not an exit of its own
	err      error
}

// launch runs the workers and returns the launch's exit code: 0 when every
// worker succeeded; 130/143 when an interrupt was forwarded, or a worker was
// signalled on its own (the ranks agree to stop at the same step), and every
// worker stopped cleanly; otherwise the code of the first worker that failed (named
// in the error). A failed worker makes the others receive SIGTERM (they
// checkpoint and stop, or their collectives time out), then SIGKILL after
// grace.
func launch(ctx context.Context, sp launchSpec) (int, error) {
	if sp.nproc < 1 || len(sp.argv) == 0 {
		return 2, errors.New("launch: --nproc must be at least 1")
	}
	if sp.addr == "" {
		sp.addr = "127.0.0.1"
	}
	if sp.port == 0 {
		p, err := freePort(sp.addr)
		if err != nil {
			return 1, fmt.Errorf("launch: no free port on %s: %w", sp.addr, err)
		}
		sp.port = p
	}
	if sp.env == nil {
		sp.env = os.Environ()
	}
	var outMu sync.Mutex
	cmds := make([]*exec.Cmd, sp.nproc)
	for r := range cmds {
		c := exec.Command(sp.argv[0], sp.argv[1:]...)
		c.Env = append(append([]string(nil), sp.env...),
			"RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(sp.nproc), "LOCAL_WORLD_SIZE="+strconv.Itoa(sp.nproc),
			"MASTER_ADDR="+sp.addr, "MASTER_PORT="+strconv.Itoa(sp.port))
		// Own process group: a terminal's Ctrl-C reaches the workers once,
		// through the launcher, not twice (a second signal means "quit now").
		// Pdeathsig: a launcher that dies (kill -9 included) takes its
		// workers with it; they get SIGTERM, finish their step, checkpoint
		// and exit, instead of training on unwatched.
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		cmds[r] = c
	}
	exits := make(chan workerExit, sp.nproc)
	errws := make([]*lineWriter, sp.nproc)
	for r, c := range cmds {
		out, errw := &lineWriter{w: sp.stdout, rank: r, mu: &outMu}, &lineWriter{w: sp.stderr, rank: r, mu: &outMu}
		errws[r] = errw
		c.Stdout, c.Stderr = out, errw
		// A worker's children could keep its output pipes open after it exits;
		// its exit is reported regardless after this delay.
		c.WaitDelay = 2 * time.Second
		if err := c.Start(); err != nil {
			for _, s := range cmds[:r] {
				s.Process.Kill()
			}
			return 1, fmt.Errorf("launch: starting rank %d: %w", r, err)
		}
		go func() {
			err := c.Wait()
			out.flush()
			errw.flush()
			exits <- workerExit{rank: r, code: exitStatus(err), signaled: killedBySignal(err), err: err}
		}()
	}
	exited := make([]bool, sp.nproc)
	var (
		first       *workerExit
		interrupted bool
		stopCode    int // a worker's clean stop (130/143) without a forwarded signal
		killTimer   <-chan time.Time
		done        int
		stuck       []int // ranks that did not stop within the grace after a failure
	)
	signalAll := func(sig os.Signal) {
		for r, c := range cmds {
			if exited[r] {
				continue
			}
			if sig == syscall.SIGKILL {
				syscall.Kill(-c.Process.Pid, syscall.SIGKILL) // the worker's whole process group
			} else {
				c.Process.Signal(sig)
			}
		}
	}
	ctxDone := ctx.Done()
	for done < sp.nproc {
		select {
		case <-ctxDone:
			ctxDone = nil
			interrupted = true
			sig := os.Signal(syscall.SIGTERM)
			if sp.signal != nil && sp.signal() != nil {
				sig = sp.signal()
			}
			signalAll(sig)
		case e := <-exits:
			done++
			exited[e.rank] = true
			// A clean stop is a worker's own exit 130/143 after its checkpoint,
			// or any end while the launcher forwards a signal. A worker killed
			// by a signal nobody forwarded (before its handler was set, say)
			// stopped without a checkpoint: a failure of that rank, named as
			// such rather than the peers that then fail waiting for it.
			clean := e.code == 0 || (e.code == 130 || e.code == 143) && (!e.signaled || interrupted)
			if clean && e.code != 0 && stopCode == 0 {
				stopCode = e.code // the others stop at the same step
			}
			if !clean && first == nil {
				first = &e
				fmt.Fprintf(sp.stderr, "mose: launch: rank %d exited with %s; stopping the other ranks\n", e.rank, describe(e))
				signalAll(syscall.SIGTERM)
				killTimer = time.After(sp.grace)
			}
		case <-killTimer:
			for r, c := range cmds {
				// A worker already reaped but whose output pipes are still
				// held (by a child of its own) has stopped: it is not stuck.
				if !exited[r] && syscall.Kill(c.Process.Pid, 0) == nil {
					stuck = append(stuck, r)
				}
			}
			fmt.Fprintf(sp.stderr, "mose: launch: ranks %v still running %s after rank %d failed: killing them\n", stuck, sp.grace, first.rank)
			signalAll(syscall.SIGKILL)
			killTimer = nil
		}
	}
	if first != nil {
		// A rank whose collective timed out failed because a peer stopped
		// answering; a peer that then ignored SIGTERM too is the one that
		// hung (stopped, deadlocked, swapping): name it, not the rank that
		// waited for it.
		if len(stuck) > 0 && errws[first.rank].peerLost.Load() {
			return max(first.code, 1), fmt.Errorf("launch: rank %s of %d hung: rank %d's collective timed out waiting for it, "+
				"and it did not stop within %s of SIGTERM (killed); see its log for the last step it reached", ranksList(stuck), sp.nproc, first.rank, sp.grace)
		}
		return max(first.code, 1), fmt.Errorf("launch: rank %d of %d failed (%s)", first.rank, sp.nproc, describe(*first))
	}
	if interrupted {
		if sp.signal != nil && sp.signal() == syscall.SIGINT {
			return 130, nil
		}
		return 143, nil
	}
	return stopCode, nil
}

// killedBySignal reports whether a finished command was ended by a signal.
func killedBySignal(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws, ok := ee.Sys().(syscall.WaitStatus)
		return ok && ws.Signaled()
	}
	return false
}

// exitStatus is a finished command's exit code, 128+signal when killed.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 1
}

func describe(e workerExit) string {
	if e.code > 128 {
		return fmt.Sprintf("signal %v (code %d)", syscall.Signal(e.code-128), e.code)
	}
	return fmt.Sprintf("code %d", e.code)
}

// freePort asks the kernel for a free TCP port on addr.
func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lineWriter copies a worker's output to w line by line, prefixing ranks
// other than 0 with "[rank N] " (rank 0's lines pass unchanged, so its JSON
// logs stay parseable). A nil w discards.
type lineWriter struct {
	w    io.Writer
	rank int
	mu   *sync.Mutex
	buf  []byte
	// peerLost is set once the worker reports a collective that failed
	// (dist.ErrCollective's message): it waited for a peer that never came.
	peerLost atomic.Bool
}

// collectiveFailed is the start of internal/dist's ErrCollective message.
const collectiveFailed = "dist: collective failed"

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// flush writes a last line that had no newline.
func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		l.emit(append(l.buf, '\n'))
		l.buf = nil
	}
}

func (l *lineWriter) emit(line []byte) {
	if bytes.Contains(line, []byte(collectiveFailed)) {
		l.peerLost.Store(true)
	}
	if l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rank != 0 {
		fmt.Fprintf(l.w, "[rank %d] ", l.rank)
	}
	l.w.Write(line)
}

// ranksList is "1" or "1, 3".
func ranksList(ranks []int) string {
	s := make([]string, len(ranks))
	for i, r := range ranks {
		s[i] = strconv.Itoa(r)
	}
	return strings.Join(s, ", ")
}
