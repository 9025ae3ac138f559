package dist

import (
	"errors"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		ok   bool
		err  bool
		want Config
	}{
		{name: "single process", env: map[string]string{}},
		{name: "torchrun", ok: true, env: map[string]string{"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "3", "MASTER_ADDR": "node0", "MASTER_PORT": "29400"},
			want: Config{Addr: "node0", Port: 29400, Rank: 3, World: 8, Local: 3, Timeout: 60 * time.Second}},
		{name: "slurm", ok: true, env: map[string]string{"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1", "MASTER_ADDR": "n1", "MASTER_PORT": "1234"},
			want: Config{Addr: "n1", Port: 1234, Rank: 5, World: 16, Local: 1, Timeout: 60 * time.Second}},
		{name: "world 1 defaults", ok: true, env: map[string]string{"RANK": "0", "WORLD_SIZE": "1"},
			want: Config{Addr: "127.0.0.1", Port: 29500, World: 1, Timeout: 60 * time.Second}},
		{name: "timeout", ok: true, env: map[string]string{"RANK": "0", "WORLD_SIZE": "1", "MOSE_DIST_TIMEOUT": "5s"},
			want: Config{Addr: "127.0.0.1", Port: 29500, World: 1, Timeout: 5 * time.Second}},
		{name: "rank out of range", err: true, env: map[string]string{"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "h"}},
		{name: "rank missing", err: true, env: map[string]string{"WORLD_SIZE": "2", "MASTER_ADDR": "h"}},
		{name: "world zero", err: true, env: map[string]string{"RANK": "0", "WORLD_SIZE": "0"}},
		{name: "world not a number", err: true, env: map[string]string{"RANK": "0", "WORLD_SIZE": "two"}},
		{name: "no master addr", err: true, env: map[string]string{"RANK": "0", "WORLD_SIZE": "2"}},
		{name: "bad port", err: true, env: map[string]string{"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "70000"}},
		{name: "bad timeout", err: true, env: map[string]string{"RANK": "0", "WORLD_SIZE": "1", "MOSE_DIST_TIMEOUT": "-1s"}},
		{name: "timeout beyond a day", err: true, env: map[string]string{"RANK": "0", "WORLD_SIZE": "1", "MOSE_DIST_TIMEOUT": "25h"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, ok, err := FromEnv(func(k string) string { return c.env[k] })
			if c.err {
				if !errors.Is(err, ErrEnv) {
					t.Fatalf("err = %v, want ErrEnv", err)
				}
				return
			}
			if err != nil || ok != c.ok || cfg != c.want {
				t.Fatalf("got %+v, %v, %v; want %+v, %v", cfg, ok, err, c.want, c.ok)
			}
		})
	}
}
