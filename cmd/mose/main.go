// Command mose fine-tunes a frozen multimodal LLM for emotion reasoning with
// Modality-Specific LoRA Experts (MoSE), and evaluates and exports the result.
//
// Exit codes: 0 success, 1 runtime failure, 2 bad input (flags, recipe, data),
// 130/143 interrupted by SIGINT/SIGTERM after a clean checkpoint.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
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

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "mose: error:", err)
	var u usageError
	if errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command") {
		return 2
	}
	return 1
}
