package data_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/synth"
)

// hashTok is a throwaway tokenizer for benchmarks: one id per
// whitespace-separated word, hashed into a 32k vocabulary.
type hashTok struct{}

func (hashTok) Encode(s string) ([]int32, error) {
	f := strings.Fields(s)
	ids := make([]int32, len(f))
	for i, w := range f {
		h := fnv.New32a()
		h.Write([]byte(w))
		ids[i] = int32(h.Sum32() % 32000)
	}
	return ids, nil
}

func (hashTok) Decode([]int32) string { return "" }

var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

// TestMain removes the benchmark's generated set after all tests and benchmarks.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchSet generates the tiny synthetic set once per test binary.
func benchSet(b *testing.B) (string, synth.Preset) {
	p, _ := synth.LookupPreset("tiny")
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "mose-bench-")
		if benchErr == nil {
			_, benchErr = synth.Generate(filepath.Join(benchDir, "synth"), synth.DefaultConfig(p), false)
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return filepath.Join(benchDir, "synth"), p
}

// BenchmarkLoader measures samples/s through the whole loading path (sampler,
// .npy reads and checks, collation) over the synthetic tiny training set,
// one epoch per iteration, batch size 16. "cold" drops each feature file
// from the page cache before every epoch (posix_fadvise DONTNEED, Linux;
// elsewhere it equals "warm").
//
//	go test -run '^$' -bench Loader -benchtime 5x ./data/
func BenchmarkLoader(b *testing.B) {
	dir, p := benchSet(b)
	ds, err := data.Open(filepath.Join(dir, "train.jsonl"), p.Spec(), hashTok{}, data.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var epochBytes int64
	_ = filepath.WalkDir(filepath.Join(dir, "features"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				epochBytes += info.Size()
			}
		}
		return nil
	})
	for _, cold := range []bool{false, true} {
		for _, workers := range []int{1, 4} {
			name := "warm"
			if cold {
				name = "cold"
			}
			b.Run(fmt.Sprintf("%s/workers=%d", name, workers), func(b *testing.B) {
				b.SetBytes(epochBytes)
				var samples int
				var elapsed time.Duration
				for i := range b.N {
					if cold {
						b.StopTimer()
						dropCache(b, filepath.Join(dir, "features"))
						b.StartTimer()
					}
					start := time.Now()
					s, err := data.NewSampler(ds.Lengths(), data.SamplerOptions{BatchSize: 16, Seed: uint64(i), Shuffle: true})
					if err != nil {
						b.Fatal(err)
					}
					l := data.NewLoader(context.Background(), ds, s, data.LoaderOptions{Workers: workers, Epochs: 1})
					for {
						bt, err := l.Next()
						if err != nil {
							break
						}
						samples += bt.B
					}
					if err := l.Close(); err != nil {
						b.Fatal(err)
					}
					elapsed += time.Since(start)
				}
				b.ReportMetric(float64(samples)/elapsed.Seconds(), "samples/s")
			})
		}
	}
}
