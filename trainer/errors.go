package trainer

import "errors"

// Sentinel errors of a run.
var (
	// ErrRecipe: the recipe, or a file it names, cannot be used. The CLI exits 2.
	ErrRecipe = errors.New("bad recipe")
	// ErrInterrupted: the run stopped on a signal after checkpointing.
	ErrInterrupted = errors.New("interrupted")
	// ErrNonFinite: too many consecutive steps had a non-finite loss or
	// gradient; the last good state was checkpointed.
	ErrNonFinite = errors.New("non-finite loss or gradients")
	// ErrResume: the checkpoint cannot be resumed exactly with this recipe.
	ErrResume = errors.New("cannot resume")
)

// More sentinel errors; the CLI exits 2 for both.
var (
	// ErrCheckpoint: a checkpoint fails validation (a missing or damaged
	// file, a checksum mismatch, a state field out of range, a non-finite
	// tensor).
	ErrCheckpoint = errors.New("invalid checkpoint")
	// ErrBusy: another mose train holds the run directory's lock.
	ErrBusy = errors.New("run directory in use")
)
