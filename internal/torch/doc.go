// Package torch is mose's tensor layer: explicit ownership over gotch's libtch
// C API (the lib.Atg* wrappers), without gotch's ts and nn packages.
//
// Ownership. Every op is a method of a [Scope] and returns a *[Tensor] owned by
// that scope; [Scope.Close] frees all of them at once. [Scope.Keep] hands a tensor
// over to the caller, who frees it with [Tensor.Free] or moves it into another
// scope with [Scope.Own]. Free is idempotent, and a freed tensor given to an op is
// an error, never a crash. [Live] counts the handles alive, for leak tests.
//
// Errors. The first failing op records an error naming the op (libtorch's
// message, or a Go-side check) in its scope; later ops on that scope do nothing
// and return nil. Check [Scope.Err] after a block of ops, as with bufio.Scanner.
// Nothing here panics on bad input or exits the process.
//
// Threads. libtorch's grad mode and libtch's last-error slot are thread-local, so
// all tensor work must run on one goroutine locked to its OS thread: wrap it in
// [Run]. Other goroutines work with plain Go slices.
package torch
