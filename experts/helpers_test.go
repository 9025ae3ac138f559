package experts_test

import (
	"math/rand/v2"
	"testing"

	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
)

// wire injects a Set into every selected linear of m, as the trainer does.
// Gates are owned by s.
func wire(t testing.TB, s *torch.Scope, m *model.Model, cfg experts.Config, gcfg gating.Config, rec *gating.Tracker) *experts.Set {
	t.Helper()
	var names []string
	byName := map[string]*model.Linear{}
	for _, l := range m.Linears() {
		names = append(names, l.Name)
		byName[l.Name] = l
	}
	sel, err := cfg.Select(names)
	if err != nil {
		t.Fatal(err)
	}
	var targets []experts.Target
	for _, n := range sel {
		targets = append(targets, experts.Target{Name: n, In: byName[n].In(), Out: byName[n].Out()})
	}
	rng := rand.New(rand.NewPCG(9, 9))
	set, err := experts.New(m.Device, targets, cfg, func(name string, in int64, groups []string, K []int) (experts.Gate, error) {
		return gating.NewGate(s, m.Device, name, in, groups, K, gcfg, rng, 0.02, rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range sel {
		byName[n].Adapter = set.Mixture(n)
	}
	return set
}

// randomize fills every adapter parameter (B included) with N(0, std²).
func randomize(t testing.TB, s *torch.Scope, set *experts.Set, seed int64, std float64) {
	t.Helper()
	if err := torch.ManualSeed(seed); err != nil {
		t.Fatal(err)
	}
	err := torch.NoGrad(func() error {
		for _, p := range set.Params() {
			c := s.Child()
			err := p.CopyFrom(c.MulScalar(c.Randn(p.Shape(), torch.Float32, torch.CPU), std))
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func inTorch(t *testing.T, fn func(s *torch.Scope)) {
	t.Helper()
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		fn(s)
		return s.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

func floats(t *testing.T, x *torch.Tensor) []float64 {
	t.Helper()
	v, err := x.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func tinyModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir() + "/m"
	cfg := model.Config{ModelType: "llama", HiddenSize: 32, IntermediateSize: 48, NumLayers: 2, NumHeads: 4, NumKVHeads: 2,
		RMSNormEps: 1e-5, RopeTheta: 10000, VocabSize: 40, MaxPositionEmbeddings: 64, HiddenAct: "silu"}
	if err := model.WriteRandom(dir, cfg, model.RandomOptions{Seed: 4, Std: 0.2}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func nil2() *rand.Rand { return rand.New(rand.NewPCG(2, 2)) }
