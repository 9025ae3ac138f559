// Package dist is mose's data-parallel process group on libtorch's own
// distributed engine, c10d: a TCPStore rendezvous, then ProcessGroupGloo for
// CPU tensors or ProcessGroupNCCL for CUDA tensors, behind a small C++ shim
// (dist.cpp). No collective or transport is written here.
//
// Collectives work in place on internal/torch tensors and wait for completion,
// bounded by the group's timeout: a peer that died makes them fail with an
// error instead of hanging.
package dist

// The paths below are made by scripts/setup/setup.sh: .build/libtorch links to the
// libtorch in use, .build/include/mose_abi.h fixes the C++ ABI (and defines
// MOSE_CUDA on CUDA builds whose CUDA and NCCL headers scripts/setup/setup_nccl.sh
// found: .build/cuda/include and .build/cuda/nccl), .build/gloo/include holds
// gloo's headers.

/*
#cgo CXXFLAGS: -std=c++17 -O2 -g0 -Wno-deprecated-declarations -Wno-interference-size
#cgo CXXFLAGS: -I${SRCDIR}/../../.build/include
#cgo CXXFLAGS: -I${SRCDIR}/../../.build/gloo/include
#cgo CXXFLAGS: -I${SRCDIR}/../../.build/cuda/include -I${SRCDIR}/../../.build/cuda/nccl
#cgo CXXFLAGS: -I${SRCDIR}/../../.build/libtorch/include
#cgo CXXFLAGS: -I${SRCDIR}/../../.build/libtorch/include/torch/csrc/api/include
#include <stdlib.h>
#include "dist.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unsafe"

	"github.com/mose-llm/mose/internal/torch"
)

// Backend names a c10d backend.
type Backend string

// The backends: Gloo for CPU tensors, NCCL for CUDA tensors.
const (
	Gloo Backend = "gloo"
	NCCL Backend = "nccl"
)

// Sentinel errors.
var (
	// ErrRendezvous: the group could not be formed (port in use, peers that
	// never came, a bad address).
	ErrRendezvous = errors.New("dist: rendezvous failed")
	// ErrCollective: a collective failed or timed out (typically a dead peer).
	ErrCollective = errors.New("dist: collective failed")
	// ErrClosed: the group was used after Close.
	ErrClosed = errors.New("dist: group is closed")
)

// Config says how to join a group.
type Config struct {
	Addr    string        // rank 0's address (MASTER_ADDR)
	Port    int           // the TCPStore port (MASTER_PORT)
	Rank    int           // this process, in [0, World)
	World   int           // number of processes
	Local   int           // this process's rank on its node (LOCAL_RANK): its CUDA device
	Backend Backend       // Gloo or NCCL
	Timeout time.Duration // bounds the rendezvous and every collective
}

// Group is a joined c10d process group. Use it from the tensor thread only.
type Group struct {
	p     unsafe.Pointer
	cfg   Config
	close func()
}

// NCCLAvailable reports whether this build can create NCCL groups.
func NCCLAvailable() bool { return C.mose_nccl_available() != 0 }

// rendezvousGrace is how long past cfg.Timeout New waits for libtorch's own
// rendezvous to give up before it gives up itself.
const rendezvousGrace = 5 * time.Second

// New joins the group cfg describes; it returns when every rank has joined,
// or fails: after cfg.Timeout (+ rendezvousGrace at the most, whatever
// libtorch's store does: a peer that accepts the connection and never
// answers included) or when ctx is cancelled (a signal), with one error
// naming this rank, the address and the likely cause. A rendezvous given up
// on this way leaves a thread blocked in libtorch: the caller must end the
// process, as it does on any rendezvous error.
func New(ctx context.Context, cfg Config) (*Group, error) {
	if cfg.World < 1 || cfg.Rank < 0 || cfg.Rank >= cfg.World {
		return nil, fmt.Errorf("%w: rank %d not in [0, %d)", ErrRendezvous, cfg.Rank, cfg.World)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	backend := C.int(0)
	switch cfg.Backend {
	case Gloo, "":
		cfg.Backend = Gloo
	case NCCL:
		backend = 1
	default:
		return nil, fmt.Errorf("%w: unknown backend %q (gloo or nccl)", ErrRendezvous, cfg.Backend)
	}
	where := fmt.Sprintf("%s:%d as rank %d of %d (%s)", cfg.Addr, cfg.Port, cfg.Rank, cfg.World, cfg.Backend)
	if err := resolve(ctx, cfg.Addr, cfg.Timeout); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	// mose names every rendezvous and collective failure itself; libtorch's
	// own retry logs (with C++ stack traces) would only bury that line.
	C.mose_quiet_c10d_logs()
	type joined struct {
		p   unsafe.Pointer
		msg *C.char
	}
	done := make(chan joined, 1)
	go func() {
		host := C.CString(cfg.Addr) // freed here: the call may outlive New
		defer C.free(unsafe.Pointer(host))
		var p unsafe.Pointer
		msg := C.mose_pg_new(&p, host, C.int(cfg.Port), C.int(cfg.Rank), C.int(cfg.World), backend,
			C.int(cfg.Local), C.long(cfg.Timeout.Milliseconds()))
		done <- joined{p, msg}
	}()
	deadline := time.NewTimer(cfg.Timeout + rendezvousGrace)
	defer deadline.Stop()
	var j joined
	select {
	case j = <-done:
	case <-deadline.C:
		who := "rank 0 (the store at MASTER_ADDR:MASTER_PORT)"
		if cfg.Rank == 0 {
			who = "the other ranks"
		}
		// The same words as libtorch's own timeout below gets: which of the
		// two fires first depends on the machine's load.
		return nil, fmt.Errorf("%w: %s: %s did not answer within %s (MOSE_DIST_TIMEOUT): likely causes: "+
			"not every rank was started, MASTER_ADDR does not reach rank 0, or another program holds MASTER_PORT", ErrRendezvous, where, who, cfg.Timeout)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %s: interrupted while waiting for the other ranks: %w", ErrRendezvous, where, context.Cause(ctx))
	}
	if err := shimError(j.msg); err != nil {
		hint := ""
		switch s := err.Error(); {
		case strings.Contains(s, "EADDRINUSE") || strings.Contains(s, "Address already in use"):
			hint = "; fix: MASTER_PORT is taken on this host, choose a free one (mose train --nproc picks one itself)"
		case cfg.Rank != 0 && (strings.Contains(strings.ToLower(s), "timed out") || strings.Contains(s, "Socket Timeout")):
			hint = fmt.Sprintf("; rank 0 (the store at MASTER_ADDR:MASTER_PORT) did not answer within %s (MOSE_DIST_TIMEOUT): "+
				"likely causes: rank 0 was not started or has failed, MASTER_ADDR does not reach it, or a firewall blocks MASTER_PORT", cfg.Timeout)
		case strings.Contains(s, "clients joined") || strings.Contains(strings.ToLower(s), "timed out") || strings.Contains(s, "Socket Timeout"):
			hint = fmt.Sprintf("; not every rank arrived within %s (MOSE_DIST_TIMEOUT): check that WORLD_SIZE ranks were started and reach MASTER_ADDR:MASTER_PORT", cfg.Timeout)
		}
		return nil, fmt.Errorf("%w: %s: %v%s", ErrRendezvous, where, err, hint)
	}
	return &Group{p: j.p, cfg: cfg}, nil
}

// resolve checks that addr (MASTER_ADDR) names a host this machine can find,
// within timeout: libtorch's store retries an unresolvable name until its
// own timeout and then reports only a connect timeout. A name that does not
// exist is ErrEnv (bad input); a resolver that fails otherwise is
// ErrRendezvous.
func resolve(ctx context.Context, addr string, timeout time.Duration) error {
	if net.ParseIP(addr) != nil {
		return nil
	}
	if addr == "" {
		return fmt.Errorf("%w: MASTER_ADDR is empty", ErrEnv)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := net.DefaultResolver.LookupHost(ctx, addr)
	if err == nil {
		return nil
	}
	fix := "fix: set MASTER_ADDR to rank 0's address, or a name this host resolves"
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return fmt.Errorf("%w: MASTER_ADDR %q does not resolve on this host (%v); %s", ErrEnv, addr, err, fix)
	}
	return fmt.Errorf("%w: MASTER_ADDR %q could not be resolved within %s (%v); %s", ErrRendezvous, addr, timeout, err, fix)
}

// Rank is this process's rank; World the number of processes.
func (g *Group) Rank() int  { return g.cfg.Rank }
func (g *Group) World() int { return g.cfg.World }

// Config is the configuration the group was joined with.
func (g *Group) Config() Config { return g.cfg }

// AllReduceSum replaces t, on every rank, by the sum of every rank's t.
// t must be contiguous, on the backend's device, with the same shape and
// dtype everywhere.
func (g *Group) AllReduceSum(t *torch.Tensor) error {
	if err := g.check(t); err != nil {
		return err
	}
	return g.collective("all-reduce", C.mose_pg_allreduce_sum(g.p, t.Handle()))
}

// Broadcast replaces t, on every rank, by root's t.
func (g *Group) Broadcast(t *torch.Tensor, root int) error {
	if err := g.check(t); err != nil {
		return err
	}
	if root < 0 || root >= g.cfg.World {
		return fmt.Errorf("%w: broadcast root %d not in [0, %d)", ErrCollective, root, g.cfg.World)
	}
	return g.collective("broadcast", C.mose_pg_broadcast(g.p, t.Handle(), C.int(root)))
}

// Barrier returns when every rank has reached it.
func (g *Group) Barrier() error {
	if g == nil || g.p == nil {
		return ErrClosed
	}
	return g.collective("barrier", C.mose_pg_barrier(g.p))
}

// Close leaves the group. It is idempotent.
func (g *Group) Close() {
	if g == nil || g.p == nil {
		return
	}
	C.mose_pg_free(g.p)
	g.p = nil
}

func (g *Group) check(t *torch.Tensor) error {
	if g == nil || g.p == nil {
		return ErrClosed
	}
	if t.Freed() {
		return fmt.Errorf("%w: tensor is freed", ErrCollective)
	}
	return nil
}

func (g *Group) collective(op string, msg *C.char) error {
	if err := shimError(msg); err != nil {
		return fmt.Errorf("%w: %s (rank %d of %d, timeout %s): %v (another rank stopped, died or cannot be reached; its own log says why)", ErrCollective, op, g.cfg.Rank, g.cfg.World, g.cfg.Timeout, err)
	}
	return nil
}

// shimError turns the shim's malloc'ed message into an error (nil for NULL),
// keeping libtorch's first line (its backtrace is not for users).
func shimError(msg *C.char) error {
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	s := C.GoString(msg)
	if i := strings.Index(s, "\nException raised from"); i >= 0 {
		s = s[:i]
	}
	return errors.New(strings.TrimSpace(s))
}
