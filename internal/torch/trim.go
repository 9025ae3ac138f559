//go:build linux

package torch

/*
#include <malloc.h>
*/
import "C"

// ReleaseMemory returns the heap memory the C allocator holds free to the
// operating system (glibc's malloc_trim). libtorch frees an evaluation's
// working set back to malloc, which keeps it in its arenas: without this,
// RSS steps up at each evaluation of a long run.
func ReleaseMemory() { C.malloc_trim(0) }
