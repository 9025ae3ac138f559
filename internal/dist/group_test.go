package dist

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mose-llm/mose/internal/torch"
)

// The tests start ranks as child processes of the test binary: TestMain runs
// a child's role when MOSE_DIST_CHILD names one.
func TestMain(m *testing.M) {
	if role := os.Getenv("MOSE_DIST_CHILD"); role != "" {
		if err := child(role); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func childConfig() (Config, error) {
	cfg, ok, err := FromEnv(os.Getenv)
	if err != nil || !ok {
		return cfg, fmt.Errorf("env: %v (ok %v)", err, ok)
	}
	cfg.Backend = Gloo
	return cfg, nil
}

// child plays one rank. "sum": all-reduce, broadcast and barrier checks;
// "die": rank 1 exits right after joining, rank 0 must see its collective fail.
func child(role string) error {
	cfg, err := childConfig()
	if err != nil {
		return err
	}
	return torch.Run(func() error {
		g, err := New(context.Background(), cfg)
		if err != nil {
			return err
		}
		defer g.Close()
		s := torch.NewScope()
		defer s.Close()
		r := float32(g.Rank())
		switch role {
		case "sum":
			x := s.FromFloat32([]float32{r + 1, 10 * (r + 1), -r, 0.5}, 4)
			if err := g.AllReduceSum(x); err != nil {
				return err
			}
			got, _ := x.Float32s()
			w := float32(g.World())
			want := []float32{w * (w + 1) / 2, 10 * w * (w + 1) / 2, -w * (w - 1) / 2, 0.5 * w}
			for i := range want {
				if got[i] != want[i] {
					return fmt.Errorf("all-reduce: got %v, want %v", got, want)
				}
			}
			y := s.FromFloat32([]float32{r, r}, 2)
			if err := g.Broadcast(y, g.World()-1); err != nil {
				return err
			}
			if got, _ := y.Float32s(); got[0] != w-1 || got[1] != w-1 {
				return fmt.Errorf("broadcast: got %v, want %v", got, w-1)
			}
			return g.Barrier()
		case "die":
			if err := g.Barrier(); err != nil {
				return err
			}
			if g.Rank() == 1 {
				os.Exit(0) // no goodbye: like a SIGKILL
			}
			time.Sleep(200 * time.Millisecond)
			start := time.Now()
			err := g.AllReduceSum(s.FromFloat32([]float32{1}, 1))
			if !errors.Is(err, ErrCollective) {
				return fmt.Errorf("all-reduce with a dead peer: err = %v, want ErrCollective", err)
			}
			fmt.Printf("dead peer detected after %s: %v\n", time.Since(start).Round(time.Millisecond), err)
			return nil
		}
		return fmt.Errorf("unknown role %q", role)
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// spawn starts world ranks playing role and returns their commands.
func spawn(t *testing.T, role string, world, port int, timeout string) []*exec.Cmd {
	t.Helper()
	var cmds []*exec.Cmd
	for r := range world {
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), "MOSE_DIST_CHILD="+role, "RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(world),
			"LOCAL_RANK="+strconv.Itoa(r), "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port),
			"MOSE_DIST_TIMEOUT="+timeout, "OMP_NUM_THREADS=1")
		var out strings.Builder
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if c.ProcessState == nil {
				c.Process.Kill()
				c.Wait()
			}
			if t.Failed() {
				t.Logf("rank %d output:\n%s", r, out.String())
			}
		})
		cmds = append(cmds, c)
	}
	return cmds
}

func TestCollectives(t *testing.T) {
	for _, world := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("world", world), func(t *testing.T) {
			for r, c := range spawn(t, "sum", world, freePort(t), "30s") {
				if err := c.Wait(); err != nil {
					t.Errorf("rank %d: %v", r, err)
				}
			}
		})
	}
}

// TestDeadPeer: a rank that vanishes makes the survivor's next collective
// fail within the timeout instead of hanging.
func TestDeadPeer(t *testing.T) {
	start := time.Now()
	cmds := spawn(t, "die", 2, freePort(t), "5s")
	for r, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s with a 5 s timeout", d)
	}
}

// TestRendezvousFailures: a port held by another program and peers that never
// come are clear errors, not hangs.
func TestRendezvousFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	// mute accepts connections and never answers (the campaign's case: a
	// port held by a program that is not rank 0's store).
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Close()
	mute := ml.Addr().(*net.TCPAddr).Port
	var (
		mu   sync.Mutex
		held []net.Conn // kept open (and referenced) until the test ends
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ml.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"busy port", Config{Addr: "127.0.0.1", Port: busy, Rank: 0, World: 2, Timeout: 3 * time.Second}, "address already in use"},
		{"peer never comes", Config{Addr: "127.0.0.1", Port: freePort(t), Rank: 0, World: 2, Timeout: 2 * time.Second}, ""},
		{"no server", Config{Addr: "127.0.0.1", Port: freePort(t), Rank: 1, World: 2, Timeout: 2 * time.Second}, ""},
		{"a server that never answers", Config{Addr: "127.0.0.1", Port: mute, Rank: 1, World: 2, Timeout: 2 * time.Second}, "127.0.0.1"},
		{"interrupted", Config{Addr: "127.0.0.1", Port: mute, Rank: 1, World: 2, Timeout: 60 * time.Second}, "interrupted"},
		{"bad rank", Config{Addr: "127.0.0.1", Port: 1, Rank: 2, World: 2}, "rank 2"},
		{"bad backend", Config{Addr: "127.0.0.1", Port: 1, Rank: 0, World: 1, Backend: "mpi"}, "unknown backend"},
		{"unresolvable MASTER_ADDR", Config{Addr: "no-such-host.invalid", Port: freePort(t), Rank: 1, World: 2, Timeout: 20 * time.Second}, "master_addr \"no-such-host.invalid\" does not resolve"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.name == "interrupted" {
				time.AfterFunc(time.Second, cancel)
			}
			err := torch.Run(func() error {
				g, err := New(ctx, c.cfg)
				if err == nil {
					g.Close()
				}
				return err
			})
			want := ErrRendezvous
			if strings.HasPrefix(c.name, "unresolvable") {
				want = ErrEnv // bad input, and found at once: no wait for the store's timeout
			}
			if !errors.Is(err, want) || !strings.Contains(strings.ToLower(err.Error()), c.want) {
				t.Fatalf("err = %v, want %v mentioning %q", err, want, c.want)
			}
			limit := c.cfg.Timeout + 10*time.Second
			if c.name == "interrupted" || want == ErrEnv {
				limit = 5 * time.Second
			}
			if d := time.Since(start); d > limit {
				t.Errorf("took %s with a %s timeout", d, c.cfg.Timeout)
			}
			t.Logf("%s after %s", err, time.Since(start).Round(time.Millisecond))
		})
	}
}
