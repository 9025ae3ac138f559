package torch

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
)

// errGoexit reports that fn stopped its goroutine (runtime.Goexit, for
// instance t.FailNow called on the tensor thread) instead of returning.
var errGoexit = errors.New("torch: the function given to Run exited its goroutine without returning")

// Run calls fn on a fresh goroutine locked to its own OS thread and waits for
// it. libtorch's grad mode and libtch's error slot are per thread, so all
// tensor work of a program (or test) belongs inside one Run. A panic in fn is
// returned as an error. The thread is discarded afterwards, taking any
// thread-local state with it.
func Run(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		err := errGoexit
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("torch: panic on the tensor thread: %v\n%s", r, debug.Stack())
			}
			done <- err
		}()
		err = fn()
	}()
	return <-done
}
