package torch

import "unsafe"

// Handle returns t's libtorch handle (an at::Tensor*) for mose's sibling C++
// shims (internal/dist). t keeps ownership: the caller must neither free nor
// keep the pointer past t's lifetime. A freed tensor gives nil.
func (t *Tensor) Handle() unsafe.Pointer {
	if t.Freed() {
		return nil
	}
	return unsafe.Pointer(t.c)
}
