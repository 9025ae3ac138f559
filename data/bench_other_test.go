//go:build !linux

package data_test

import "testing"

// dropCache is a no-op where posix_fadvise is not available.
func dropCache(*testing.B, string) {}
