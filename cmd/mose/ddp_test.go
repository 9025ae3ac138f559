package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mose-llm/mose/plots"
)

// ddpArgs are recipeArgs for data-parallel tests: no dropout and no gate
// noise (each rank draws its own masks, so only then can 2 × b equal 1 × 2b),
// two micro-batches per step, and a final evaluation.
func ddpArgs(out string, sets ...string) []string {
	return recipeArgs(out, append([]string{"adapters.dropout=0", "adapters.gate.noise=0", "train.grad_accum=2"}, sets...)...)
}

// workers starts a data-parallel run as world separate processes under
// torchrun's environment (what torchrun or srun would start).
func workers(t *testing.T, out string, world int, extraEnv []string, args ...string) []*exec.Cmd {
	t.Helper()
	if e2e.err != nil {
		t.Skipf("mose binary did not build: %v", e2e.err)
	}
	port := freeTestPort(t)
	os.MkdirAll(out, 0o755)
	var cmds []*exec.Cmd
	for r := range world {
		logf, err := os.OpenFile(out+".rank"+strconv.Itoa(r)+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(e2e.bin, append([]string{"train", "--no-progress"}, args...)...)
		cmd.Env = append(append(os.Environ(), extraEnv...), "RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(world), "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

func freeTestPort(t *testing.T) int {
	t.Helper()
	p, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// code is a finished command's exit code (128+signal when killed).
func code(err error) int { return exitStatus(err) }

// trainRecords are a run's train records by step.
func trainRecords(t *testing.T, dir string) map[int]plots.Record {
	t.Helper()
	recs, err := plots.ReadRecords(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]plots.Record{}
	for _, r := range recs {
		if !r.IsEval() {
			out[r.Step] = r
		}
	}
	return out
}

func maxAdapterDiff(t *testing.T, a, b string) float64 {
	t.Helper()
	x, y := adapterOf(t, a), adapterOf(t, b)
	if len(x) != len(y) || len(x) == 0 {
		t.Fatalf("%s and %s hold %d and %d tensors", a, b, len(x), len(y))
	}
	var worst float64
	for n, v := range x {
		w, ok := y[n]
		if !ok || len(w) != len(v) {
			t.Fatalf("%s: %s missing or reshaped", b, n)
		}
		for i := range v {
			worst = math.Max(worst, math.Abs(float64(v[i]-w[i])))
		}
	}
	return worst
}

// TestDDPEquivalence: 2 ranks × batch 8 give the adapters, loss lines and
// router statistics of 1 process × batch 16 (up to the order of float
// additions), and the same evaluation.
func TestDDPEquivalence(t *testing.T) {
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	single := startTrain(t, one, ddpArgs(one, "train.max_steps=6", "train.batch_size=16")...)
	if err := single.Wait(); err != nil {
		t.Fatalf("single process: %v\n%s", err, readLog(one))
	}
	launched := startTrain(t, two, append(ddpArgs(two, "train.max_steps=6", "train.batch_size=8"), "--nproc", "2")...)
	if err := launched.Wait(); err != nil {
		t.Fatalf("2 ranks: %v\n%s", err, readLog(two))
	}
	checkDDPMatch(t, one, two, 6)
	// Rank 0 wrote everything; the ranks' shared files are whole.
	for _, f := range []string{"metrics.jsonl", "eval.json", "recipe.yaml", "loss.png", "tensorboard"} {
		if _, err := os.Stat(filepath.Join(two, f)); err != nil {
			t.Errorf("2 ranks: %v", err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(two, "recipe.yaml")); !bytes.Contains(b, []byte("world_size: 2")) {
		t.Errorf("recipe.yaml does not record world_size: 2")
	}
}

// checkDDPMatch checks that the data-parallel run two ended as the
// single-process run one at the same global batch, after steps steps: the
// adapters within 1e-5, the logged losses, grad norm and router statistics
// within 1e-6 (the order of float additions differs), the eval losses
// within 1e-6 relative and every other eval metric equal.
func checkDDPMatch(t *testing.T, one, two string, steps int) {
	t.Helper()
	ck := filepath.Join("checkpoints", fmt.Sprintf("step-%07d", steps))
	d := maxAdapterDiff(t, filepath.Join(one, ck), filepath.Join(two, ck))
	t.Logf("max |adapter(2 ranks) − adapter(1 process)| = %.3g", d)
	if d > 1e-5 {
		t.Errorf("adapters differ by %.3g (> 1e-5)", d)
	}
	a, b := trainRecords(t, one), trainRecords(t, two)
	if len(a) != steps || len(b) != steps {
		t.Fatalf("%d and %d train records, want %d", len(a), len(b), steps)
	}
	var worst float64
	for step, x := range a {
		y := b[step]
		vals := [][2]float64{{x.EmotionLoss, y.EmotionLoss}, {x.LBLoss, y.LBLoss}, {x.ZLoss, y.ZLoss}, {x.GradNorm, y.GradNorm}}
		for g, rx := range x.Router {
			ry := y.Router[g]
			if len(ry.Load) != len(rx.Load) {
				t.Fatalf("step %d: router group %s missing on 2 ranks", step, g)
			}
			vals = append(vals, [2]float64{rx.Balance, ry.Balance}, [2]float64{rx.Tokens, ry.Tokens}, [2]float64{rx.Entropy, ry.Entropy})
			for k := range rx.Load {
				vals = append(vals, [2]float64{rx.Load[k], ry.Load[k]}, [2]float64{rx.Prob[k], ry.Prob[k]})
			}
		}
		if x.ModalityWeights != nil && y.ModalityWeights != nil {
			vals = append(vals, [2]float64{x.ModalityWeights.Visual, y.ModalityWeights.Visual})
		}
		for _, v := range vals { // relative to the value beyond 1 (float32 sums in another order)
			worst = math.Max(worst, math.Abs(v[0]-v[1])/math.Max(1, math.Abs(v[0])))
		}
		if len(x.Router) == 0 {
			t.Fatalf("step %d: no router statistics logged", step)
		}
	}
	t.Logf("max difference of the logged losses, grad norm and router statistics (relative beyond 1): %.3g", worst)
	if worst > 1e-6 {
		t.Errorf("loss lines differ by %.3g (> 1e-6, relative beyond 1)", worst)
	}
	ea, eb := readEval(t, one), readEval(t, two)
	if len(ea.loss) == 0 || len(ea.loss) != len(eb.loss) {
		t.Errorf("eval losses: 1 process %v, 2 ranks %v", ea.loss, eb.loss)
	}
	for sub, x := range ea.loss {
		// A loss is summed over answer tokens in other batches: reduction order.
		if y := eb.loss[sub]; math.Abs(x-y) > 1e-6*math.Max(1, math.Abs(x)) {
			t.Errorf("%s eval loss: 1 process %v, 2 ranks %v", sub, x, y)
		}
	}
	if ea.rest != eb.rest {
		t.Errorf("eval.json differs:\n1 process: %s\n2 ranks:   %s", ea.rest, eb.rest)
	}
}

func readLog(out string) string {
	b, _ := os.ReadFile(out + ".log")
	return tail(b, 3000)
}

// evalFile is an eval.json's metrics: the losses per subset, and the rest
// (every count and metric but the losses) as canonical JSON.
type evalFile struct {
	loss map[string]float64
	rest string
}

// readEval reads dir/eval.json.
func readEval(t *testing.T, dir string) evalFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "eval.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	ef := evalFile{loss: map[string]float64{}}
	subsets, _ := v["subsets"].(map[string]any)
	for name, sub := range subsets {
		if m, ok := sub.(map[string]any); ok {
			if l, ok := m["loss"].(float64); ok {
				ef.loss[name] = l
			}
			delete(m, "loss")
		}
	}
	out, _ := json.Marshal(map[string]any{"subsets": subsets, "gap": v["conflict_gap"]})
	ef.rest = string(out)
	return ef
}

// children are the pids of pid's child processes.
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// rankPid is the pid of the launched worker with RANK=rank.
func rankPid(t *testing.T, launcher, rank int) int {
	t.Helper()
	for _, p := range children(launcher) {
		env, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/environ")
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == "RANK="+strconv.Itoa(rank) {
				return p
			}
		}
	}
	t.Fatalf("no worker with RANK=%d under pid %d (children %v)", rank, launcher, children(launcher))
	return 0
}

// waitSteps waits until out's metrics.jsonl has n train lines.
func waitSteps(t *testing.T, out string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl")); bytes.Count(b, []byte(`"kind":"train"`)) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: fewer than %d steps after %s", out, n, within)
}

// TestDDPFaults: exact resume under data parallelism after SIGTERM to one
// Rank (every rank stops at the same step, one checkpoint, exit 143 on
// every rank) and after SIGKILL of one rank (the others stop within a
// bounded time, the launcher names the lost rank); then a busy port and a
// rendezvous that never completes give clear errors.
func TestDDPFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("several data-parallel runs")
	}
	dir := t.TempDir()
	steps := []string{"train.max_steps=10", "train.save_every=1", "train.keep_last=2"}
	straight := filepath.Join(dir, "straight")
	cmd := startTrain(t, straight, append(ddpArgs(straight, steps...), "--nproc", "2")...)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("straight: %v\n%s", err, readLog(straight))
	}
	final := filepath.Join("checkpoints", "step-0000010")
	env := []string{"MOSE_DIST_TIMEOUT=20s"}

	t.Run("SIGTERM to one rank", func(t *testing.T) {
		out := filepath.Join(dir, "term")
		ws := workers(t, out, 2, env, ddpArgs(out, steps...)...)
		waitSteps(t, out, 3, 90*time.Second)
		start := time.Now()
		ws[1].Process.Signal(syscall.SIGTERM)
		codes := []int{code(ws[0].Wait()), code(ws[1].Wait())}
		took := time.Since(start)
		t.Logf("SIGTERM to rank 1: exit codes %v after %s", codes, took.Round(time.Millisecond))
		if codes[0] != 143 || codes[1] != 143 {
			b0, _ := os.ReadFile(out + ".rank0.log")
			t.Fatalf("exit codes %v, want 143 on every rank\n%s", codes, tail(b0, 2000))
		}
		recs := trainRecords(t, out)
		last := newestStep(filepath.Join(out, "checkpoints"))
		if last != len(recs) || last >= 10 {
			t.Fatalf("stopped at checkpoint %d with %d logged steps (want one checkpoint at the last step, before 10)", last, len(recs))
		}
		resumeAndCompare(t, straight, out, steps, final)
	})

	t.Run("SIGKILL of one rank", func(t *testing.T) {
		out := filepath.Join(dir, "kill")
		t.Setenv("MOSE_DIST_TIMEOUT", "20s")
		cmd := startTrain(t, out, append(ddpArgs(out, steps...), "--nproc", "2")...)
		waitSteps(t, out, 3, 90*time.Second)
		victim := rankPid(t, cmd.Process.Pid, 1)
		start := time.Now()
		syscall.Kill(victim, syscall.SIGKILL)
		err := cmd.Wait()
		took := time.Since(start)
		log := readLog(out)
		t.Logf("SIGKILL of rank 1: the launch exited %d after %s", code(err), took.Round(time.Millisecond))
		if code(err) == 0 || !strings.Contains(log, "rank 1 exited with signal killed") {
			t.Fatalf("launch exit %d; want non-zero, naming rank 1:\n%s", code(err), log)
		}
		if took > 45*time.Second {
			t.Errorf("the other rank took %s to stop (MOSE_DIST_TIMEOUT=20s)", took)
		}
		resumeAndCompare(t, straight, out, steps, final)
	})

	t.Run("a rank that hangs", func(t *testing.T) {
		out := filepath.Join(dir, "hang")
		t.Setenv("MOSE_DIST_TIMEOUT", "5s")
		cmd := startTrain(t, out, append(ddpArgs(out, "train.max_steps=400", "train.save_every=1000"), "--nproc", "2")...)
		waitSteps(t, out, 3, 90*time.Second)
		victim := rankPid(t, cmd.Process.Pid, 1)
		start := time.Now()
		syscall.Kill(victim, syscall.SIGSTOP) // alive, never answering: a deadlock or a swapping host
		err := cmd.Wait()
		took := time.Since(start)
		log := readLog(out)
		t.Logf("SIGSTOP of rank 1: the launch exited %d after %s", code(err), took.Round(time.Millisecond))
		if code(err) == 0 || !strings.Contains(log, "rank 1 of 2 hung") {
			t.Fatalf("launch exit %d; want non-zero, naming rank 1 as hung:\n%s", code(err), log)
		}
		if took > 15*time.Second {
			t.Errorf("the launch took %s to end (MOSE_DIST_TIMEOUT=5s: want within the timeout + 10 s)", took)
		}
		noCTrace(t, []byte(log))
	})

	t.Run("busy port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out := filepath.Join(dir, "busy")
		start := time.Now()
		c := exec.Command(e2e.bin, append([]string{"train", "--no-progress"}, ddpArgs(out, steps...)...)...)
		c.Env = append(os.Environ(), "RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1",
			"MASTER_PORT="+strconv.Itoa(l.Addr().(*net.TCPAddr).Port), "MOSE_DIST_TIMEOUT=5s")
		b, err := c.CombinedOutput()
		t.Logf("busy port: exit %d after %s: %s", code(err), time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(b)))
		if code(err) == 0 || !strings.Contains(string(b), "MASTER_PORT is taken") {
			t.Errorf("want a failure that says the port is taken, got exit %d:\n%s", code(err), b)
		}
		noCTrace(t, b)
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed rendezvous wrote %s", out)
		}
	})

	t.Run("rendezvous never completes", func(t *testing.T) {
		out := filepath.Join(dir, "alone")
		start := time.Now()
		c := exec.Command(e2e.bin, append([]string{"train", "--no-progress"}, ddpArgs(out, steps...)...)...)
		c.Env = append(os.Environ(), "RANK=0", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1",
			"MASTER_PORT="+strconv.Itoa(freeTestPort(t)), "MOSE_DIST_TIMEOUT=3s")
		b, err := c.CombinedOutput()
		took := time.Since(start)
		t.Logf("rank 1 never starts: exit %d after %s: %s", code(err), took.Round(time.Millisecond), strings.TrimSpace(string(b)))
		if code(err) == 0 || !strings.Contains(string(b), "not every rank arrived") || took > 30*time.Second {
			t.Errorf("want a bounded failure that says a rank is missing, got exit %d after %s:\n%s", code(err), took, b)
		}
		noCTrace(t, b)
	})

	// The store's own failures: rank 0 that never comes, a name that does not
	// resolve. Each is one line naming the rank and the address, within the
	// timeout (+10 s), and libtorch's retry logs and C++ traces stay unprinted.
	for _, c := range []struct {
		name, addr, want string
		exit             int
	}{
		{"rank 0 never starts", "127.0.0.1", "rank 0 (the store at MASTER_ADDR:MASTER_PORT) did not answer within 3s", 1},
		{"unresolvable MASTER_ADDR", "no-such-host.invalid", `MASTER_ADDR "no-such-host.invalid" does not resolve`, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			start := time.Now()
			cmd := exec.Command(e2e.bin, append([]string{"train", "--no-progress"}, ddpArgs(out, steps...)...)...)
			cmd.Env = append(os.Environ(), "RANK=1", "WORLD_SIZE=2", "MASTER_ADDR="+c.addr,
				"MASTER_PORT="+strconv.Itoa(freeTestPort(t)), "MOSE_DIST_TIMEOUT=3s")
			b, err := cmd.CombinedOutput()
			took := time.Since(start)
			t.Logf("%s: exit %d after %s: %s", c.name, code(err), took.Round(time.Millisecond), strings.TrimSpace(string(b)))
			if code(err) != c.exit || !strings.Contains(string(b), c.want) || !strings.Contains(string(b), "rank 1 of 2") || took > 13*time.Second {
				t.Errorf("want exit %d within 13 s naming rank 1 and %q, got exit %d after %s:\n%s", c.exit, c.want, code(err), took, b)
			}
			noCTrace(t, b)
		})
	}
}

// noCTrace fails when out carries libtorch's own logs or a C++ stack trace:
// mose reports data-parallel failures in its own words.
func noCTrace(t *testing.T, out []byte) {
	t.Helper()
	for _, bad := range []string{"frame #", "Exception raised from", "[c10d]", "socket.cpp", "TCPStore.cpp"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("output carries libtorch's %q:\n%s", bad, out)
		}
	}
}

// resumeAndCompare resumes out with --resume auto on 2 ranks to the end and
// checks it ends exactly where straight did: bit-identical adapters and the
// same loss at every step.
func resumeAndCompare(t *testing.T, straight, out string, steps []string, final string) {
	t.Helper()
	cmd := startTrain(t, out, append(ddpArgs(out, steps...), "--nproc", "2", "--resume", "auto")...)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("resume: %v\n%s", err, readLog(out))
	}
	if d := maxAdapterDiff(t, filepath.Join(straight, final), filepath.Join(out, final)); d != 0 {
		t.Errorf("resumed adapters differ from the straight run's by %.3g", d)
	}
	want, got := lossesOf(t, straight), lossesOf(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d loss lines after resume, want %d", len(got), len(want))
	}
	for s, l := range want {
		if got[s] != l {
			t.Errorf("step %d: loss %v after resume, %v straight", s, got[s], l)
		}
	}
}

// A run checkpointed mid-epoch on one process resumes on two only with
// --allow-recipe-change: run.world_size is named when refused; allowed, the
// sampler moves to the same fraction of the epoch in the new global
// batches, with a warning that says so, and the run goes on to its end.
func TestDDPWorldSizeChange(t *testing.T) {
	if testing.Short() {
		t.Skip("data-parallel runs")
	}
	if e2e.err != nil {
		t.Skipf("mose binary did not build: %v", e2e.err)
	}
	out := filepath.Join(t.TempDir(), "run")
	run := func(extra ...string) (int, string) {
		cmd := exec.Command(e2e.bin, append([]string{"train", "--no-progress"}, extra...)...)
		b, err := cmd.CombinedOutput()
		return code(err), string(b)
	}
	if c, log := run(ddpArgs(out, "train.max_steps=3", "train.save_every=3")...); c != 0 {
		t.Fatalf("1 process: exit %d\n%s", c, log)
	}
	more := append(ddpArgs(out, "train.max_steps=5", "train.save_every=5"), "--resume", "auto", "--nproc", "2")
	c, log := run(more...)
	if c != 2 || !strings.Contains(log, "run.world_size") {
		t.Fatalf("2 processes without --allow-recipe-change: exit %d, want 2 naming run.world_size\n%s", c, log)
	}
	c, log = run(append(more, "--allow-recipe-change")...)
	if c != 0 || !strings.Contains(log, "changed mid-epoch") || !strings.Contains(log, `"global_batch_was":8`) ||
		!strings.Contains(log, `"global_batch_now":16`) || !strings.Contains(log, `"batch":3`) {
		t.Fatalf("2 processes with --allow-recipe-change: exit %d, want 0 with the mid-epoch warning (48 samples done: batch 3 of 16)\n%s", c, log)
	}
	if got := newestStep(filepath.Join(out, "checkpoints")); got != 5 {
		t.Errorf("newest checkpoint step %d, want 5", got)
	}
}
