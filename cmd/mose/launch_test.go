package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuf is a goroutine-safe buffer for the launcher's output.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLaunch runs the single-node launcher on shell workers: environment,
// output prefixes, a failing rank stopping the others (SIGTERM, then SIGKILL
// after the grace period), and a forwarded interrupt.
func TestLaunch(t *testing.T) {
	// A worker that checkpoints on SIGTERM: trap, then exit 143.
	const trapTerm = `trap 'exit 143' TERM; `
	cases := []struct {
		name     string
		script   string
		cancel   os.Signal // cancel the context with this signal after 300 ms
		wantCode int
		wantErr  string
		wantOut  []string
		maxTime  time.Duration
	}{
		{name: "all succeed", script: `echo "rank $RANK of $WORLD_SIZE local $LOCAL_RANK at $MASTER_ADDR:$MASTER_PORT"`,
			wantOut: []string{"rank 0 of 3 local 0 at 127.0.0.1:", "[rank 1] rank 1 of 3 local 1", "[rank 2] rank 2 of 3 local 2"}, maxTime: 10 * time.Second},
		{name: "a rank fails, the others stop", script: trapTerm + `if [ "$RANK" = 1 ]; then exit 3; fi; sleep 30 & wait`,
			wantCode: 3, wantErr: "rank 1 of 3 failed (code 3)", wantOut: []string{"rank 1 exited with code 3; stopping the other ranks"}, maxTime: 10 * time.Second},
		{name: "a rank is killed, a stubborn one is killed after the grace", script: `trap '' TERM; if [ "$RANK" = 2 ]; then sleep 0.5; kill -9 $$; fi; sleep 30 & wait; sleep 30`, // the sleep: the others have ignored TERM before it comes
			wantCode: 137, wantErr: "rank 2 of 3 failed (signal killed (code 137))", wantOut: []string{"killing them"}, maxTime: 15 * time.Second},
		{name: "a hung rank is blamed, not the rank whose collective timed out waiting for it",
			script:   `if [ "$RANK" = 0 ]; then sleep 0.3; echo "mose: error: data-parallel: dist: collective failed: all-reduce (rank 0 of 3, timeout 5s): Operation timed out!" >&2; exit 1; fi; trap 'exit 143' TERM; if [ "$RANK" = 2 ]; then trap '' TERM; fi; sleep 30 & wait; sleep 30`,
			wantCode: 1, wantErr: "rank 2 of 3 hung: rank 0's collective timed out waiting for it", wantOut: []string{"ranks [2] still running"}, maxTime: 10 * time.Second},
		{name: "SIGTERM is forwarded", script: trapTerm + `sleep 30 & wait`, cancel: syscall.SIGTERM, wantCode: 143, maxTime: 10 * time.Second},
		{name: "a rank stops cleanly on its own signal, the others with it", script: `if [ "$RANK" = 1 ]; then exit 143; fi; sleep 1; exit 143`,
			wantCode: 143, maxTime: 10 * time.Second},
		{name: "SIGINT is forwarded", script: `trap 'exit 130' INT; sleep 30 & wait`, cancel: syscall.SIGINT, wantCode: 130, maxTime: 10 * time.Second},
		{name: "a rank killed by SIGTERM before its handler is blamed, not the peer that fails after it",
			script:   trapTerm + `if [ "$RANK" = 1 ]; then trap - TERM; kill -TERM $$; fi; sleep 1; exit 1`,
			wantCode: 143, wantErr: "rank 1 of 3 failed (signal terminated (code 143))", maxTime: 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var caught os.Signal
			if c.cancel != nil {
				go func() {
					time.Sleep(300 * time.Millisecond)
					caught = c.cancel
					cancel()
				}()
			}
			var out syncBuf
			start := time.Now()
			code, err := launch(ctx, launchSpec{argv: []string{"/bin/sh", "-c", c.script}, nproc: 3, grace: time.Second,
				stdout: &out, stderr: &out, signal: func() os.Signal { return caught }})
			took := time.Since(start)
			if code != c.wantCode {
				t.Errorf("code = %d, want %d (err %v)", code, c.wantCode, err)
			}
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Errorf("err = %v, want %q", err, c.wantErr)
			}
			for _, w := range c.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if took > c.maxTime {
				t.Errorf("took %s (max %s)", took, c.maxTime)
			}
		})
	}
}

// TestLaunchHelper is the launcher process of TestLauncherKilled (it runs
// only when that test starts it).
func TestLaunchHelper(t *testing.T) {
	pids := os.Getenv("MOSE_TEST_LAUNCH_PIDS")
	if pids == "" {
		t.Skip("run by TestLauncherKilled")
	}
	script := `trap 'exit 143' TERM; echo $$ >> ` + pids + `; sleep 60 & wait`
	launch(context.Background(), launchSpec{argv: []string{"/bin/sh", "-c", script}, nproc: 2, grace: time.Second,
		stdout: os.Stdout, stderr: os.Stderr, signal: func() os.Signal { return nil }})
}

// Killing the launcher (kill -9) ends its workers within 5 s.
func TestLauncherKilled(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLaunchHelper$")
	cmd.Env = append(os.Environ(), "MOSE_TEST_LAUNCH_PIDS="+pids)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var workers []int
	for deadline := time.Now().Add(20 * time.Second); len(workers) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the workers did not start: %v", workers)
		}
		b, _ := os.ReadFile(pids)
		workers = workers[:0]
		for _, f := range strings.Fields(string(b)) {
			if p, err := strconv.Atoi(f); err == nil {
				workers = append(workers, p)
			}
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	start := time.Now()
	for _, p := range workers {
		for syscall.Kill(p, 0) == nil { // alive (or a zombie of the dead launcher, reaped by init)
			if time.Since(start) > 5*time.Second {
				syscall.Kill(p, syscall.SIGKILL)
				t.Fatalf("worker %d still runs 5 s after its launcher was killed", p)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
