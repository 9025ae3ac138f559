//go:build !linux

package torch

// ReleaseMemory is a no-op where glibc's malloc_trim is not available.
func ReleaseMemory() {}
