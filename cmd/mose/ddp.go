package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mose-llm/mose/internal/dist"
	"github.com/mose-llm/mose/memest"
	"github.com/mose-llm/mose/recipes"
)

// exitWith ends mose with code (the launcher's), printing err if set.
type exitWith struct {
	code int
	err  error
}

func (e exitWith) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e exitWith) Unwrap() error { return e.err }

// launchGrace is how long the other ranks get to stop after one failed. A
// rank that has failed has already waited MOSE_DIST_TIMEOUT for its peers at
// the most; a healthy peer stops within a step (its own collective fails at
// once on the lost connection), so the whole launch ends within the timeout
// plus this grace.
const launchGrace = 8 * time.Second

// launchTrain runs `mose train` as nproc data-parallel workers on this
// machine: the same command line without --nproc, under torchrun's
// environment (cmd/mose/launch.go).
func launchTrain(ctx context.Context, nproc int) error {
	if os.Getenv("WORLD_SIZE") != "" || os.Getenv("SLURM_NTASKS") != "" && os.Getenv("SLURM_NTASKS") != "1" {
		return badInput(errors.New("--nproc: this process already runs under a launcher (WORLD_SIZE or SLURM_NTASKS is set); use one or the other"))
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("--nproc: %w", err)
	}
	argv := append([]string{exe}, withoutFlag(os.Args[1:], "--nproc")...)
	env := withoutEnv(os.Environ(), "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")
	code, err := launch(ctx, launchSpec{argv: argv, nproc: nproc, grace: launchGrace, env: env,
		stdout: os.Stdout, stderr: os.Stderr, signal: caughtSignal})
	if code == 0 && err == nil {
		return nil
	}
	return exitWith{code: code, err: err}
}

// checkLaunch refuses a --nproc launch before any worker starts: more
// processes than this machine can run on the CPU (4 per core), a recipe whose
// run.world_size says otherwise, or (when the model and data exist already;
// model.create and data.synth are rank 0's to make) a recipe that fails the
// preflight checks at this world size, such as a global batch larger than
// the training set.
func checkLaunch(cfg *recipes.Config, nproc int) error {
	if dev := cfg.Run.Device; (dev == "cpu" || dev == "") && nproc > 4*runtime.NumCPU() {
		return badInput(fmt.Errorf("--nproc %d: this machine has %d CPU cores; on run.device cpu mose runs at most 4 processes per core", nproc, runtime.NumCPU()))
	}
	if w := cfg.Run.WorldSize; w != 0 && w != nproc {
		return badInput(fmt.Errorf("--nproc %d, but run.world_size is %d (set it to 0 to take the launch's)", nproc, w))
	}
	if _, err := os.Stat(filepath.Join(cfg.Model.Path, "config.json")); err != nil {
		return nil
	}
	if _, err := os.Stat(cfg.Data.Train); err != nil {
		return nil
	}
	c := *cfg
	c.Run.WorldSize = nproc
	return memest.Preflight(&c, memest.PreflightTrain)
}

// withoutFlag drops flag (as "--flag V" or "--flag=V") from args.
func withoutFlag(args []string, flag string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == flag:
			i++ // and its value
		case strings.HasPrefix(a, flag+"="):
		default:
			out = append(out, a)
		}
	}
	return out
}

// withoutEnv drops the named variables from env.
func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// joinGroup joins the data-parallel group the launcher's environment
// describes (torchrun, mose's --nproc, SLURM), or returns nil outside one
// (and for a single SLURM task). On CUDA each rank takes device cuda:LOCAL_RANK
// and NCCL; on the CPU, Gloo. Ranks other than 0 log warnings and errors
// only (rank 0 reports the run).
func joinGroup(ctx context.Context, cfg *recipes.Config, log *logrus.Logger) (*dist.Group, error) {
	dc, ok, err := dist.FromEnv(os.Getenv)
	if err != nil {
		return nil, badInput(err)
	}
	if !ok || dc.World == 1 && os.Getenv("WORLD_SIZE") == "" {
		return nil, nil // a single SLURM task trains alone; WORLD_SIZE=1 (torchrun, --nproc 1) makes a group of one
	}
	dc.Backend = dist.Gloo
	if dev := cfg.Run.Device; dev == "cuda" || strings.HasPrefix(dev, "cuda:") {
		want := "cuda:" + strconv.Itoa(dc.Local)
		if dev != want && dev != "cuda" {
			log.WithFields(logrus.Fields{"recipe": dev, "rank": dc.Rank, "device": want}).
				Warn("run.device: each data-parallel rank uses cuda:LOCAL_RANK (restrict the visible GPUs with CUDA_VISIBLE_DEVICES)")
		}
		cfg.Run.Device = want
		if !dist.NCCLAvailable() {
			return nil, badInput(errors.New("run.device is CUDA but this mose build has no NCCL (nccl.h was not found at setup; see README: GPU boxes)"))
		}
		dc.Backend = dist.NCCL
	}
	g, err := dist.New(ctx, dc)
	if errors.Is(err, dist.ErrEnv) {
		return nil, badInput(err)
	} else if err != nil {
		return nil, err
	}
	log.WithFields(logrus.Fields{"backend": string(dc.Backend), "rank": dc.Rank, "world": dc.World,
		"device": cfg.Run.Device, "master": fmt.Sprintf("%s:%d", dc.Addr, dc.Port)}).Info("data-parallel group")
	if dc.Rank != 0 {
		log.SetLevel(logrus.WarnLevel)
	}
	return g, nil
}
