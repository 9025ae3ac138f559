package checkpoint

import (
	"fmt"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/sirupsen/logrus"
)

// CheckRNGScheme refuses to resume the checkpoint dir (state st) written
// with an earlier version's seeding scheme unless allow
// (--allow-recipe-change): the resumed run would draw other dropout masks
// and gate noise than the interrupted one, so it would not be exact. With
// allow it warns and goes on.
func CheckRNGScheme(dir string, st State, allow bool, log logrus.FieldLogger) error {
	if st.RNG.Scheme == RNGScheme {
		return nil
	}
	if !allow {
		return fmt.Errorf("%w: %s was written by an earlier mose whose random-number scheme (rng.scheme %q) differs from this version's (%q): "+
			"resuming it draws other dropout masks and gate noise than the interrupted run would have, so the run is no longer exact; "+
			"pass --allow-recipe-change to resume anyway", ErrResume, dir, st.RNG.Scheme, RNGScheme)
	}
	log.WithFields(logrus.Fields{"checkpoint": dir, "was": st.RNG.Scheme, "now": RNGScheme}).
		Warn("resuming a checkpoint of an earlier random-number scheme: dropout masks and gate noise differ from the interrupted run's, the run is not exact")
	return nil
}

// SeedForLayer is the libtorch seed of decoder layer `layer` of the
// micro-batch whose seed is micro (SeedFor): a splitmix64 mix, so that no two
// (micro-batch, layer) pairs of a run share a seed in practice.
func SeedForLayer(micro int64, layer int) int64 {
	z := uint64(micro) + uint64(layer+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return int64(z >> 1) // non-negative
}

// LayerSeeder returns the hook that reseeds libtorch before each decoder
// layer of the micro-batch whose seed is micro.
func LayerSeeder(micro int64) func(layer int) error {
	return func(layer int) error { return torch.ManualSeed(SeedForLayer(micro, layer)) }
}

// SeedFor is the libtorch seed of a micro-batch: a pure function of the run
// seed and the position, so a resumed run draws the same dropout masks.
func SeedFor(seed int64, step, micro int) int64 {
	return seed*1000003 + int64(step)*131 + int64(micro)
}
