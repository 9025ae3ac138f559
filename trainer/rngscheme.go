package trainer

import (
	"fmt"

	"github.com/sirupsen/logrus"
)

// checkRNGScheme refuses to resume the checkpoint dir (state st) written
// with an earlier version's seeding scheme unless allow
// (--allow-recipe-change): the resumed run would draw other dropout masks
// and gate noise than the interrupted one, so it would not be exact. With
// allow it warns and goes on.
func checkRNGScheme(dir string, st State, allow bool, log logrus.FieldLogger) error {
	if st.RNG.Scheme == rngScheme {
		return nil
	}
	if !allow {
		return fmt.Errorf("%w: %s was written by an earlier mose whose random-number scheme (rng.scheme %q) differs from this version's (%q): "+
			"resuming it draws other dropout masks and gate noise than the interrupted run would have, so the run is no longer exact; "+
			"pass --allow-recipe-change to resume anyway", ErrResume, dir, st.RNG.Scheme, rngScheme)
	}
	log.WithFields(logrus.Fields{"checkpoint": dir, "was": st.RNG.Scheme, "now": rngScheme}).
		Warn("resuming a checkpoint of an earlier random-number scheme: dropout masks and gate noise differ from the interrupted run's, the run is not exact")
	return nil
}
