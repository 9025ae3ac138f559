// Package memest says, before anything is loaded, whether a recipe can run:
// the memory estimate (frozen weights, adapters, optimizer state,
// activations with and without activation checkpointing) and its report
// against the device's free memory, the preflight checks of a recipe
// against the files it names, and `mose validate`.
package memest
