// Package stack assembles what a run, an evaluation or an export is made of
// and is the only place where the frozen model, the expert adapters, the
// gates and the tokenizer meet: Build loads the model, injects the adapters
// and opens the datasets; Load does that and loads the adapters of a
// checkpoint or a PEFT export (one place for both); Tensors turns data's
// batches into device tensors; Collective is the interface of the
// data-parallel process group. It also makes the random demo models
// (InitModelDir) and the export sidecar's format types.
package stack
