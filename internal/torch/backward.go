package torch

/*
#include <stdlib.h>
char *mose_backward(void **roots, void **grads, int n);
*/
import "C"

import "unsafe"

// BackwardWith backpropagates from several roots at once, root i seeded
// with grads[i] (same shape and dtype as roots[i]; nil for a scalar root,
// meaning 1), accumulating into the .grad of every leaf that requires grad,
// as one autograd pass: what Backward does for a scalar loss, for a tensor
// whose upstream gradient is already known (activation checkpointing). The
// graph is freed.
func BackwardWith(roots, grads []*Tensor) error {
	const op = "backward"
	if len(roots) == 0 || len(roots) != len(grads) {
		return goErr(op, "%d roots, %d gradients: %w", len(roots), len(grads), ErrShape)
	}
	n := len(roots)
	arr := (*[1 << 20]unsafe.Pointer)(C.malloc(C.size_t(2*n) * C.size_t(unsafe.Sizeof(unsafe.Pointer(nil)))))[: 2*n : 2*n]
	defer C.free(unsafe.Pointer(&arr[0]))
	for i, r := range roots {
		if r.Freed() {
			return goErr(op, "root %d: %w", i, ErrFreed)
		}
		arr[i] = unsafe.Pointer(r.c)
		arr[n+i] = nil
		if g := grads[i]; g != nil {
			if g.Freed() {
				return goErr(op, "gradient %d: %w", i, ErrFreed)
			}
			arr[n+i] = unsafe.Pointer(g.c)
		}
	}
	return shimError(op, C.mose_backward(&arr[0], &arr[n], C.int(n)))
}
