package model

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
)

// BenchmarkForward times one no-grad forward (logits at every position) of
// the model in $MOSE_BENCH_MODEL, or of a random `small`-sized model made on
// the fly, on a (2,256) batch in float32 on the CPU. scripts/bench/bench_forward.sh
// runs it beside transformers on the same dir and prints the ratio.
func BenchmarkForward(b *testing.B) {
	dir := os.Getenv("MOSE_BENCH_MODEL")
	if dir == "" {
		dir = filepath.Join(b.TempDir(), "small")
		cfg := Config{ModelType: "llama", HiddenSize: 512, IntermediateSize: 1376, NumLayers: 8,
			NumHeads: 8, NumKVHeads: 4, RMSNormEps: 1e-5, RopeTheta: 10000, VocabSize: 670,
			MaxPositionEmbeddings: 2048, HiddenAct: "silu"}
		if err := WriteRandom(dir, cfg, RandomOptions{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	const B, T = 2, 256
	err := torch.Run(func() error {
		m, err := Load(dir, Options{})
		if err != nil {
			return err
		}
		defer m.Close()
		ids := make([]int64, B*T)
		for i := range ids {
			ids[i] = int64((i*7919 + 13) % m.Config.VocabSize)
		}
		return torch.NoGrad(func() error {
			in := torch.NewScope()
			defer in.Close()
			inputs := &Inputs{IDs: in.FromInt64(ids, B, T)}
			step := func() error {
				s := torch.NewScope()
				defer s.Close()
				m.Logits(s, m.Forward(s, inputs, false), nil) // CPU ops run synchronously
				return s.Err()
			}
			if err := step(); err != nil { // warm-up: rope tables, allocator
				return err
			}
			b.ResetTimer()
			for b.Loop() {
				if err := step(); err != nil {
					return err
				}
			}
			b.ReportMetric(float64(B*T)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			return nil
		})
	})
	if err != nil {
		b.Fatal(err)
	}
}
