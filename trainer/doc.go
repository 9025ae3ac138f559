// Package trainer is the training run and its loop, read top to bottom in
// run.go: build the stack, restore a checkpoint, then per optimizer step
// (step.go) fetch the micro-batches, forward and backward (with activation
// checkpointing: recompute.go), agree across data-parallel ranks (ddp.go),
// clip, update with AdamW (optim.go) on the LR schedule, log (mlog.go,
// tensorboard.go), checkpoint (persist.go) and evaluate (eval.go); plots
// at the end (plot.go).
package trainer
