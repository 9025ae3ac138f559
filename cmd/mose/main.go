// Command mose fine-tunes a frozen multimodal LLM for emotion reasoning with
// Modality-Specific LoRA Experts (MoSE), and evaluates and exports the result.
//
// Exit codes: 0 success, 1 runtime failure (including a run that could not
// make progress: too many non-finite steps, with the last good state saved),
// 2 bad input (flags, recipe, data, a checkpoint that fails validation, a run
// directory another mose train holds), 130/143 interrupted by SIGINT/SIGTERM
// after a clean checkpoint.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/trainer"
)

// caught holds the signal that cancelled the command's context.
var caught *atomic.Value

// caughtSignal is that signal, or nil.
func caughtSignal() os.Signal {
	if caught == nil {
		return nil
	}
	s, _ := caught.Load().(os.Signal)
	return s
}

func main() {
	var ctx context.Context
	ctx, caught = signalContext()
	err := newRootCmd().ExecuteContext(ctx)
	code := exitCode(err)
	if errors.Is(err, trainer.ErrInterrupted) {
		// 143 also when another data-parallel rank was signalled and this
		// one stopped with it (schedulers and launchers send SIGTERM).
		code = 143
		if s, _ := caught.Load().(os.Signal); s == os.Interrupt {
			code = 130
		}
	}
	os.Exit(code)
}

// signalContext is cancelled by the first SIGINT or SIGTERM, which it
// records; a second one exits at once.
func signalContext() (context.Context, *atomic.Value) {
	ctx, cancel := context.WithCancel(context.Background())
	var caught atomic.Value
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		caught.Store(s)
		fmt.Fprintf(os.Stderr, "mose: %v: finishing the current step and checkpointing (again to quit now)\n", s)
		cancel()
		s = <-sigs
		fmt.Fprintf(os.Stderr, "mose: %v again: exiting without a checkpoint\n", s)
		if s == syscall.SIGTERM {
			os.Exit(143)
		}
		os.Exit(130)
	}()
	return ctx, &caught
}

// usageError marks bad input: a wrong flag, recipe, manifest or file. It exits 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// badInput wraps err so that mose exits with code 2.
func badInput(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// exitCode maps err to the exit status by its cause, wherever it was
// raised: 2 for bad input (the user's files, flags or recipe: usageError and
// every package's inputerr sentinel, such as recipes.ErrRecipe,
// checkpoint.ErrResume or a bad manifest line or feature file met
// mid-training), 1 for faults of
// the machine (disk full, out of memory, I/O errors; these win even inside
// a bad-input wrap) and anything else.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ew exitWith
	if errors.As(err, &ew) {
		if ew.err != nil {
			fmt.Fprintln(os.Stderr, "mose: error:", ew.err)
		}
		return ew.code
	}
	if !errors.Is(err, trainer.ErrInterrupted) {
		fmt.Fprintln(os.Stderr, "mose: error:", err)
	}
	switch inputerr.Classify(err) {
	case inputerr.Machine:
		return 1
	case inputerr.Input:
		return 2
	}
	var u usageError
	if errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command") {
		return 2
	}
	return 1
}
