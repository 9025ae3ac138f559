package trainer

import "errors"

// Sentinel errors of a run. Bad input is classified by the packages that
// find it (recipes.ErrRecipe, checkpoint.ErrResume, inputerr's classes);
// these two are outcomes of a run.
var (
	// ErrInterrupted: the run stopped on a signal after checkpointing.
	ErrInterrupted = errors.New("interrupted")
	// ErrNonFinite: too many consecutive steps had a non-finite loss or
	// gradient; the last good state was checkpointed.
	ErrNonFinite = errors.New("non-finite loss or gradients")
)
