package omni

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/mose-llm/mose/data/cas"
	"github.com/mose-llm/mose/internal/safetensors"
)

// towerRuns counts Encode calls that ran a tower (TowerRuns).
var towerRuns atomic.Int64

// TowerRuns is how many times Encode has run a tower in this process: the
// encoder-output cache's tests read it to prove that a cached epoch runs
// none.
func TowerRuns() int64 { return towerRuns.Load() }

// TowersHash is the hex SHA-256 of the audio and vision towers' weights in
// model directory dir as stored: each tower tensor's name, dtype, shape and
// bytes, in name order, read one tensor at a time. It identifies the
// towers in the encoder-output cache's keys; compute it once per run.
func TowersHash(dir string) (string, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return "", err
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", dir, err)
	}
	defer ck.Close()
	var names []string
	for _, t := range append(cfg.Audio.tensors(), cfg.Vision.tensors()...) {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	h := cas.NewHasher("omni.towers/v1")
	for _, name := range names {
		info, err := ck.Info(cfg.Prefix + name)
		if err != nil {
			return "", fmt.Errorf("model %s: %w", dir, err)
		}
		n, err := safetensors.ByteSize(info.DType, info.Shape)
		if err != nil {
			return "", fmt.Errorf("model %s: %s: %w", dir, name, err)
		}
		buf := make([]byte, n)
		if err := ck.ReadInto(cfg.Prefix+name, buf); err != nil {
			return "", fmt.Errorf("model %s: %w", dir, err)
		}
		h.String("name", strings.TrimPrefix(name, cfg.Prefix))
		h.String("dtype", string(info.DType))
		h.String("shape", fmt.Sprint(info.Shape))
		h.Bytes("data", buf)
	}
	return h.Sum(), nil
}
