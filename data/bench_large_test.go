package data_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/npy"
)

// BenchmarkLoaderEmotionLLaMA measures the loader at Emotion-LLaMA's feature
// sizes: per sample 256×5632 EVA patches (float16, 2.9 MB) and a 1024-d
// HuBERT vector, 96 samples, batch size 8, one epoch per iteration.
//
//	go test -run '^$' -bench LoaderEmotionLLaMA -benchtime 3x ./data/
func BenchmarkLoaderEmotionLLaMA(b *testing.B) {
	const n = 96
	dir := b.TempDir()
	spec := data.Spec{
		Inputs: []data.Input{
			{Name: "eva_patches", Modality: "visual", Dim: 5632, Tokens: 256, Placeholder: "<VideoHere>"},
			{Name: "hubert", Modality: "audio", Dim: 1024, Tokens: 1, Placeholder: "<FeatureHere>"},
		},
		Prompt: data.Prompt{Template: "<s>[INST] <video><VideoHere></video> <feature><FeatureHere></feature> The person in video says: {subtitle}. [/INST]", Answer: "{label}</s>"},
		Labels: []string{"happy", "sad"},
	}
	r := rand.New(rand.NewPCG(1, 2))
	var samples []data.Sample
	var total int64
	for i := range n {
		id := fmt.Sprintf("clip%03d", i)
		s := data.Sample{ID: id, Subset: data.SubsetGeneral, Label: "happy", Subtitle: "a few words here",
			Features: map[string]string{"eva_patches": "eva/" + id + ".npy", "hubert": "hubert/" + id + ".npy"}}
		for _, f := range []struct {
			name  string
			dt    npy.DType
			shape []int
		}{{"eva_patches", npy.Float16, []int{256, 5632}}, {"hubert", npy.Float32, []int{1024}}} {
			size := 1
			for _, d := range f.shape {
				size *= d
			}
			v := make([]float32, size)
			for k := range v {
				v[k] = float32(r.NormFloat64())
			}
			p := filepath.Join(dir, filepath.FromSlash(s.Features[f.name]))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			fh, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			if err := npy.Write(fh, &npy.Array{DType: f.dt, Shape: f.shape, Data: v}); err != nil {
				b.Fatal(err)
			}
			st, _ := fh.Stat()
			total += st.Size()
			fh.Close()
		}
		samples = append(samples, s)
	}
	manifest := filepath.Join(dir, "m.jsonl")
	if err := data.WriteManifest(manifest, samples); err != nil {
		b.Fatal(err)
	}
	ds, err := data.Open(manifest, spec, hashTok{}, data.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, cold := range []bool{false, true} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(total)
			rows := 0
			for i := range b.N {
				if cold {
					b.StopTimer()
					dropCache(b, dir)
					b.StartTimer()
				}
				s, _ := data.NewSampler(ds.Lengths(), data.SamplerOptions{BatchSize: 8, Seed: uint64(i), Shuffle: true})
				l := data.NewLoader(context.Background(), ds, s, data.LoaderOptions{Epochs: 1})
				for {
					bt, err := l.Next()
					if err != nil {
						break
					}
					rows += bt.B
				}
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
