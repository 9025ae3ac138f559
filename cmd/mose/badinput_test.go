package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mose-llm/mose/data/npy"
	"github.com/mose-llm/mose/data/synth"
	"github.com/mose-llm/mose/internal/safetensors"
)

// The bad-input matrix: every case breaks one file, flag or recipe key and
// runs the mose binary on it. Each must exit 2 (or the code given), name the
// culprit, show no Go panic or C++ trace, and leave every byte under its
// directory (the run, its checkpoints, the copies it broke) unchanged; the
// shared base model, data, run and export are hashed before and after the
// whole matrix.

// bad is the shared base: a tiny model, a small dataset, a trained run with
// one checkpoint and a PEFT export of it (MoSE, with sidecar).
var bad struct {
	once                  sync.Once
	err                   error
	dir                   string
	model, data, run, ck  string
	train, eval, exported string
}

func badBase(t *testing.T) {
	t.Helper()
	if e2e.err != nil {
		t.Skipf("mose binary did not build: %v", e2e.err)
	}
	bad.once.Do(func() {
		bad.dir, bad.err = os.MkdirTemp("", "mose-badinput-")
		if bad.err != nil {
			return
		}
		bad.model = filepath.Join(bad.dir, "model")
		if bad.err = os.CopyFS(bad.model, os.DirFS(e2e.model)); bad.err != nil {
			return
		}
		p, _ := synth.LookupPreset("tiny")
		cfg := synth.DefaultConfig(p)
		cfg.Train, cfg.Eval = 24, 9
		bad.data = filepath.Join(bad.dir, "data")
		if _, bad.err = synth.Generate(bad.data, cfg, false); bad.err != nil {
			return
		}
		bad.train, bad.eval = filepath.Join(bad.data, "train.jsonl"), filepath.Join(bad.data, "eval.jsonl")
		bad.run = filepath.Join(bad.dir, "run")
		e := &env{model: bad.model, train: bad.train, eval: bad.eval}
		if out, err := exec.Command(badBin(), e.trainArgs(bad.run, "train.max_steps=2")...).CombinedOutput(); err != nil {
			bad.err = fmt.Errorf("base run: %v: %s", err, out)
			return
		}
		bad.ck = filepath.Join(bad.run, "checkpoints", "step-0000002")
		bad.exported = filepath.Join(bad.dir, "export")
		if out, err := exec.Command(badBin(), "export", "--checkpoint", bad.ck, "--out", bad.exported).CombinedOutput(); err != nil {
			bad.err = fmt.Errorf("base export: %v: %s", err, out)
		}
	})
	if bad.err != nil {
		t.Fatal(bad.err)
	}
}

// env is one case's files: the base's, or copies under dir that it breaks.
type env struct {
	t                                   *testing.T
	dir                                 string
	model, train, eval, run, ck, export string
	environ                             []string // added to the command's environment
}

func (e *env) own(src, name string) string {
	e.t.Helper()
	dst := filepath.Join(e.dir, name)
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		e.t.Fatal(err)
	}
	return dst
}

// ownModel, ownData, ownRun and ownExport copy a base part for the case to break.
func (e *env) ownModel() string { e.model = e.own(bad.model, "model"); return e.model }
func (e *env) ownData() string {
	d := e.own(bad.data, "data")
	e.train, e.eval = filepath.Join(d, "train.jsonl"), filepath.Join(d, "eval.jsonl")
	return d
}
func (e *env) ownRun() string {
	e.run = e.own(bad.run, "run")
	e.ck = filepath.Join(e.run, "checkpoints", "step-0000002")
	return e.ck
}
func (e *env) ownExport() string { e.export = e.own(bad.exported, "export"); return e.export }

// out is a fresh output_dir inside the case's dir (it must stay absent).
func (e *env) out() string { return filepath.Join(e.dir, "out") }

func (e *env) recipe(out string, sets ...string) []string {
	args := []string{"--log-level", "error", "--recipe", "demo-tiny"}
	for _, s := range append([]string{
		"model.path=" + e.model, "model.create=", "data.train=" + e.train, "data.eval=" + e.eval,
		"data.synth=", "run.output_dir=" + out, "run.threads=1", "train.batch_size=8", "train.log_every=1",
		"train.eval_every=0", "train.keep_best_by=", "train.warmup_steps=1", "data.workers=1",
	}, sets...) {
		args = append(args, "--set", s)
	}
	return args
}

func (e *env) trainArgs(out string, sets ...string) []string {
	return append([]string{"train", "--no-progress"}, e.recipe(out, sets...)...)
}
func (e *env) validateArgs(sets ...string) []string {
	return append([]string{"validate"}, e.recipe(e.out(), sets...)...)
}
func (e *env) evalArgs(ck string, sets ...string) []string {
	return append(append([]string{"eval"}, e.recipe(e.out(), sets...)...), "--checkpoint", ck)
}
func (e *env) exportArgs(ck, out string, extra ...string) []string {
	return append([]string{"export", "--log-level", "error", "--checkpoint", ck, "--out", out}, extra...)
}

// File surgery.

func (e *env) write(path string, b []byte) {
	e.t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) edit(path string, f func([]byte) []byte) {
	e.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	e.write(path, f(b))
}

func (e *env) replace(path, old, new string) {
	e.t.Helper()
	e.edit(path, func(b []byte) []byte {
		if !bytes.Contains(b, []byte(old)) {
			e.t.Fatalf("%s has no %q", path, old)
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	})
}

func (e *env) editJSON(path string, f func(m map[string]any)) {
	e.t.Helper()
	e.edit(path, func(b []byte) []byte {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			e.t.Fatal(err)
		}
		f(m)
		out, _ := json.MarshalIndent(m, "", "  ")
		return out
	})
}

func (e *env) fifo(path string) {
	e.t.Helper()
	os.RemoveAll(path)
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		e.t.Skip("no mkfifo:", err)
	}
}

// firstFeature is the path of the first sample's feature file of input in.
func (e *env) firstFeature(manifest, in string) string {
	e.t.Helper()
	b, _ := os.ReadFile(manifest)
	var s struct{ Features map[string]string }
	json.Unmarshal(bytes.SplitN(b, []byte("\n"), 2)[0], &s)
	return filepath.Join(filepath.Dir(manifest), s.Features[in])
}

func (e *env) npy(path string, dt npy.DType, shape []int, v []float32) {
	e.t.Helper()
	var b bytes.Buffer
	if err := npy.Write(&b, &npy.Array{DType: dt, Shape: shape, Data: v}); err != nil {
		e.t.Fatal(err)
	}
	e.write(path, b.Bytes())
}

// tensors rewrites a safetensors file through f.
func (e *env) tensors(path string, f func(ts []safetensors.Tensor) []safetensors.Tensor) {
	e.t.Helper()
	sf, err := safetensors.Open(path)
	if err != nil {
		e.t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, in := range sf.Tensors() {
		b, _ := sf.Read(in.Name)
		ts = append(ts, safetensors.Tensor{Name: in.Name, DType: in.DType, Shape: in.Shape, Data: b})
	}
	sf.Close()
	ts = f(ts)
	os.Remove(path)
	if err := safetensors.WriteFile(path, ts, nil); err != nil {
		e.t.Fatal(err)
	}
}

// poison sets element 3 of the first tensor whose name contains sub to v.
func (e *env) poison(path, sub string, v float32) {
	e.tensors(path, func(ts []safetensors.Tensor) []safetensors.Tensor {
		for i := range ts {
			if strings.Contains(ts[i].Name, sub) {
				put(&ts[i], v)
				return ts
			}
		}
		e.t.Fatalf("no tensor %q in %s", sub, path)
		return nil
	})
}

func put(t *safetensors.Tensor, v float32) {
	t.Data = append([]byte(nil), t.Data...)
	switch t.DType {
	case safetensors.F32:
		binary.LittleEndian.PutUint32(t.Data[12:], math.Float32bits(v))
	case safetensors.BF16:
		binary.LittleEndian.PutUint16(t.Data[6:], uint16(math.Float32bits(v)>>16))
	case safetensors.F16:
		binary.LittleEndian.PutUint16(t.Data[6:], safetensors.Float32ToF16(v))
	}
}

// treeHash hashes every path, mode and content under root ("" for none).
func treeHash(root string) string {
	var lines []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			lines = append(lines, p+" "+err.Error())
			return nil
		}
		info, _ := d.Info()
		l := fmt.Sprintf("%s %v %d", p, info.Mode(), info.Size())
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			l += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, l)
		return nil
	})
	sort.Strings(lines)
	h := sha256.New()
	for _, l := range lines {
		fmt.Fprintln(h, l)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// caseTimeout turns a hang (a FIFO read forever) into a failure.
const caseTimeout = 90 * time.Second

// badBin is the binary under test: MOSE_BADINPUT_BIN (to run the matrix
// against another build, e.g. an older commit's) or the one TestMain built.
func badBin() string {
	if b := os.Getenv("MOSE_BADINPUT_BIN"); b != "" {
		return b
	}
	return e2e.bin
}

// traces are what a Go panic or a libtorch exception prints.
var traces = []string{"goroutine ", "panic:", "fatal error", "out of memory", "terminate called", "libc10", "Exception raised from", "SIGSEGV", "Killed"}

// badCase is one row of the matrix: prep breaks something in e and returns
// the command line; the run must exit code (0 means 2) naming mention.
type badCase struct {
	area, name string
	prep       func(e *env) []string
	mention    []string
	code       int
}

func TestBadInputMatrix(t *testing.T) {
	badBase(t)
	defer os.RemoveAll(bad.dir)
	base := map[string]string{}
	for _, d := range []string{bad.model, bad.data, bad.run, bad.exported} {
		base[d] = treeHash(d)
	}
	cases := badInputCases()
	if len(cases) < 60 {
		t.Fatalf("the matrix has %d cases, want at least 60", len(cases))
	}
	t.Run("case", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.area+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				e := &env{t: t, dir: t.TempDir(), model: bad.model, train: bad.train, eval: bad.eval, run: bad.run, ck: bad.ck, export: bad.exported}
				args := c.prep(e)
				before := treeHash(e.dir)
				ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
				defer cancel()
				// Under a 4 GiB address-space limit: no input may make mose
				// allocate its way into a panic, a goroutine dump or the OOM killer.
				cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `ulimit -v 4194304 && exec "$0" "$@"`, badBin()}, args...)...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if e.environ != nil {
					cmd.Env = append(os.Environ(), e.environ...)
				}
				err := cmd.Run()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if ctx.Err() != nil {
					t.Fatalf("no answer in %v: mose hangs on this input", caseTimeout)
				}
				want := c.code
				if want == 0 {
					want = 2
				}
				msg := stderr.String()
				if code != want {
					t.Errorf("exit %d, want %d\nstderr: %s\nstdout: %s", code, want, msg, stdout.String())
				}
				for _, m := range c.mention {
					if !strings.Contains(msg, m) {
						t.Errorf("the message does not name %q:\n%s", m, msg)
					}
				}
				for _, tr := range traces {
					if strings.Contains(msg, tr) {
						t.Errorf("stderr holds a trace (%q):\n%s", tr, msg)
					}
				}
				if after := treeHash(e.dir); after != before {
					t.Errorf("the case's files changed (output dir, checkpoints or inputs)")
				}
			})
		}
	})
	for d, h := range base {
		if treeHash(d) != h {
			t.Errorf("the shared base %s changed", d)
		}
	}
}
