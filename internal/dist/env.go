package dist

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrEnv reports a launcher environment that cannot be used (bad input).
var ErrEnv = errors.New("dist: bad launcher environment")

// MaxTimeout bounds MOSE_DIST_TIMEOUT: every wait of a data-parallel run
// ends within it, so a typo (60h for 60s) must not mean a silent day.
const MaxTimeout = 24 * time.Hour

// FromEnv reads the launch contract of torchrun (RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT), falling back to SLURM's task variables
// (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID) under srun, where MASTER_ADDR and
// MASTER_PORT come from the job script. ok is false when neither WORLD_SIZE
// nor SLURM_NTASKS is set: a single process. The backend is left to the caller.
func FromEnv(getenv func(string) string) (cfg Config, ok bool, err error) {
	rankKey, worldKey, localKey := "RANK", "WORLD_SIZE", "LOCAL_RANK"
	if getenv("WORLD_SIZE") == "" {
		if getenv("SLURM_NTASKS") == "" {
			return Config{}, false, nil
		}
		rankKey, worldKey, localKey = "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"
	}
	num := func(key string, lo, hi int, def *int) (int, error) {
		v := getenv(key)
		if v == "" {
			if def != nil {
				return *def, nil
			}
			return 0, fmt.Errorf("%w: %s is not set (%s is)", ErrEnv, key, worldKey)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%w: %s=%q is not an integer in [%d, %d]", ErrEnv, key, v, lo, hi)
		}
		return n, nil
	}
	if cfg.World, err = num(worldKey, 1, 1<<20, nil); err != nil {
		return Config{}, false, err
	}
	if cfg.Rank, err = num(rankKey, 0, cfg.World-1, nil); err != nil {
		return Config{}, false, err
	}
	zero := 0
	if cfg.Local, err = num(localKey, 0, cfg.World-1, &zero); err != nil {
		return Config{}, false, err
	}
	cfg.Addr = getenv("MASTER_ADDR")
	if cfg.Addr == "" {
		if cfg.World > 1 {
			return Config{}, false, fmt.Errorf("%w: MASTER_ADDR is not set (rank 0's host name or address)", ErrEnv)
		}
		cfg.Addr = "127.0.0.1"
	}
	def := 29500
	if cfg.Port, err = num("MASTER_PORT", 1, 65535, &def); err != nil {
		return Config{}, false, err
	}
	cfg.Timeout = 60 * time.Second
	if v := getenv("MOSE_DIST_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > MaxTimeout {
			return Config{}, false, fmt.Errorf("%w: MOSE_DIST_TIMEOUT=%q is not a duration in (0, %s] (e.g. 60s)", ErrEnv, v, MaxTimeout)
		}
		cfg.Timeout = d
	}
	return cfg, true, nil
}
