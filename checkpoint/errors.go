// Package checkpoint owns a run's state on disk: the checkpoint layout
// (runs/<name>/checkpoints/step-NNNNNNN/ with adapter.safetensors,
// optimizer.safetensors, trainer_state.json and recipe.yaml, and `latest`),
// writing it atomically, validating every byte read back, finding what to
// resume, the seeding scheme that makes a resume exact, rotation, the
// cleanup of a killed run's temporary files, and the run directory's lock.
package checkpoint

import "github.com/mose-llm/mose/internal/inputerr"

// Sentinel errors; each is bad input (the CLI exits 2).
var (
	// ErrCheckpoint: a checkpoint fails validation (a missing or damaged
	// file, a checksum mismatch, a state field out of range, a non-finite
	// tensor).
	ErrCheckpoint = inputerr.New("invalid checkpoint")
	// ErrResume: the checkpoint cannot be resumed exactly with this recipe.
	ErrResume = inputerr.New("cannot resume")
	// ErrBusy: another mose train holds the run directory's lock.
	ErrBusy = inputerr.New("run directory in use")
)
